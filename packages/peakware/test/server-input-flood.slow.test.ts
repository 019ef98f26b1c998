/**
 * Issue 21's partial-body flood against a real `peak server` process (slow: it starts its
 * own embedded PostgreSQL): 24 span pushes announce 8 MiB bodies and send 6 MiB each, then
 * stay open (144 MiB offered; before the bounds this took the server from 104 to 472 MB
 * RSS). The server's resident memory (/proc/<pid>/status VmRSS, and its peak VmHWM) must
 * grow less than the bound the server README states (maxInflightBodyBytes + 96 MiB), the
 * bodies past the budget must be refused with 503 PEAK_SERVER_BUSY, the server must keep
 * answering, and the budget must come back once the senders go away.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { bearer, useDataFolderCredential } from './support/credentials.js';
import { killGroup, postgresPidsFor, spawnPeak } from './support/peak-process.js';
import { memoryOf, mib } from './support/process-memory.js';
import { waitFor } from './support/wait.js';

const MiB = 1024 * 1024;
/** The server README's bound on RSS growth from bodies in flight (default budget 64 MiB). */
const RSS_GROWTH_BOUND = 64 * MiB + 96 * MiB;

/** A span push announced as 8 MiB with 6 MiB of it sent; collects the answer. */
async function halfBody(port: number, body: Buffer) {
  const socket = net.connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.on('error', () => undefined);
  let answer = '';
  socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(
    `POST /api/v1/telemetry/spans HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nauthorization: ${bearer().authorization}\r\ncontent-length: ${8 * MiB}\r\n\r\n`,
  );
  socket.write(body);
  return { socket, answer: () => answer, closed };
}

describe('peak server: a flood of half-sent bodies does not pin its memory', {
  timeout: 180_000,
}, () => {
  let dataDir: string | undefined;
  let node: ReturnType<typeof spawnPeak> | undefined;
  after(async () => {
    if (node !== undefined) {
      // SIGTERM stops its PostgreSQL too; SIGKILL if it does not go in time.
      killGroup(node.child, 'SIGTERM');
      const timer = setTimeout(() => node !== undefined && killGroup(node.child), 20_000);
      await node.exited;
      clearTimeout(timer);
    }
    if (dataDir !== undefined) {
      for (const pid of await postgresPidsFor(dataDir)) process.kill(pid, 'SIGKILL');
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('24 half-sent 8 MiB span bodies: RSS under the bound, 503 past the budget, still serving', async (t) => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-input-flood-'));
    node = spawnPeak(['server', '--data', dataDir, '--port', '0', '--json', '--log-level', 'warn']);
    const url = String((await node.waitFor('ready')).url);
    await useDataFolderCredential(dataDir);
    const pushSpans = async () => {
      const res = await fetch(`${url}/api/v1/telemetry/spans`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...bearer() },
        body: JSON.stringify({ spans: [] }),
      });
      await res.arrayBuffer();
      return res.status;
    };
    assert.equal(await pushSpans(), 200);
    const pid = node.child.pid!;
    const before = await memoryOf(pid);

    const body = Buffer.alloc(6 * MiB, 0x20);
    const port = Number(new URL(url).port);
    const floods = await Promise.all(Array.from({ length: 24 }, () => halfBody(port, body)));
    // 24 × 6 MiB against the 64 MiB budget: at least 14 bodies are refused.
    const refused = () => floods.filter((f) => f.answer().startsWith('HTTP/1.1 503'));
    await waitFor(
      () => `14 bodies refused with 503 (${refused().length} so far)`,
      () => refused().length >= 14,
      60_000,
    );
    assert.match(refused()[0]!.answer(), /PEAK_SERVER_BUSY/);
    const after = await memoryOf(pid);
    t.diagnostic(
      `server RSS ${mib(before.rss)} → ${mib(after.rss)} (peak ${mib(after.peak)}, bound +${mib(RSS_GROWTH_BOUND)}); ${refused().length} of 24 refused with 503`,
    );
    assert.ok(
      after.peak - before.rss < RSS_GROWTH_BOUND,
      `peak RSS grew ${mib(after.peak - before.rss)}, over the bound ${mib(RSS_GROWTH_BOUND)}`,
    );
    // Still answering while the bodies that fit the budget are held.
    assert.equal((await fetch(`${url}/health`)).status, 200);
    // The senders go away: their bytes come back and a span push is accepted again.
    for (const f of floods) f.socket.destroy();
    await Promise.all(floods.map((f) => f.closed));
    let status = 0;
    await waitFor(
      () => `a span push accepted once the senders are gone (last answer ${status})`,
      async () => {
        status = await pushSpans();
        return status === 200;
      },
    );
  });
});
