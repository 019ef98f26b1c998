/**
 * Input cannot pin the control plane's memory. A body without a credential is refused
 * (401) before it is read; bodies of callers with one still arriving count against one
 * process-wide budget (maxInflightBodyBytes, 64 MiB by default), so 24 half-sent 8 MiB
 * span bodies (which took the server from 104 to 472 MB RSS before) get 503
 * PEAK_SERVER_BUSY once the budget is held, while normal requests keep working and the
 * budget comes back when the senders go away.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PeakServer } from '../src/server/index.js';
import { bearer, useLocalCredential } from './support/credentials.js';

/** POSTs a body announced as `announced` bytes and sends `sent` of them; collects the answer. */
async function halfBody(url: string, announced: number, sent: number, credential = true) {
  const { hostname, port } = new URL(url);
  const socket = net.connect({ host: hostname, port: Number(port) });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let answer = '';
  socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
  socket.on('error', () => undefined);
  socket.write(
    `POST /api/v1/telemetry/spans HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n${credential ? `authorization: ${bearer().authorization}\r\n` : ''}content-length: ${announced}\r\n\r\n`,
  );
  // Written at once, not awaited: a refused body is no longer read by the server, so its
  // socket never drains (the bytes wait in this process).
  socket.write(Buffer.alloc(sent, 0x20));
  return { socket, answer: () => answer };
}

describe('peak server: a budget for request bodies in flight', { timeout: 120_000 }, () => {
  let dataDir: string;
  let server: PeakServer;

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-body-budget-'));
    server = await PeakServer.start({ dataDir, port: 0 });
    useLocalCredential(server);
  });

  after(async () => {
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('refuses a body without a credential before reading it', async () => {
    const sender = await halfBody(server.info.url, 8 * 1024 * 1024, 64 * 1024, false);
    for (let i = 0; i < 400 && sender.answer() === ''; i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    sender.socket.destroy();
    assert.match(sender.answer(), /^HTTP\/1\.1 401/);
    assert.match(sender.answer(), /PEAK_UNAUTHENTICATED/);
  });

  it('refuses bodies past the budget with 503 and keeps serving', async () => {
    const senders: Awaited<ReturnType<typeof halfBody>>[] = [];
    for (let i = 0; i < 24; i++) {
      senders.push(await halfBody(server.info.url, 8 * 1024 * 1024, 4 * 1024 * 1024));
    }
    // 24 × 4 MiB = 96 MiB sent against a 64 MiB budget: at least 8 must have been refused.
    let busy = 0;
    for (let i = 0; i < 1200; i++) {
      busy = senders.filter((s) => s.answer().startsWith('HTTP/1.1 503')).length;
      if (busy >= 8) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.ok(busy >= 8, `only ${busy} of 24 half-sent bodies were refused`);
    const refused = senders.find((s) => s.answer().startsWith('HTTP/1.1 503'))!.answer();
    assert.match(refused, /PEAK_SERVER_BUSY/);
    assert.match(refused, /maxInflightBodyBytes/);

    const health = await fetch(`${server.info.url}/health`);
    assert.equal(health.status, 200);

    for (const s of senders) s.socket.destroy();
    // Once the senders are gone their bytes are released: a normal span push is accepted.
    let status = 0;
    for (let i = 0; i < 1200 && status !== 200; i++) {
      const res = await fetch(`${server.info.url}/api/v1/telemetry/spans`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...bearer() },
        body: JSON.stringify({ spans: [] }),
      });
      status = res.status;
      await res.arrayBuffer();
      if (status !== 200) await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(status, 200);
  });
});
