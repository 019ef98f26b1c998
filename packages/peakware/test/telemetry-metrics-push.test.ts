/**
 * Per-second service metrics pushed to the control plane: two instances of a service, each
 * its own process, push guard's per-second metrics and a sliding window's buckets with a
 * MetricsPusher; the live API sums them over instances (QPS, errors, blocked, RT p50/p99,
 * concurrency) and `peak top` shows them. With the control plane unreachable, recording
 * never waits and what cannot be sent is dropped and counted.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { PeakServer } from '../src/server/index.js';
import { MetricsPusher } from '../src/telemetry/index.js';
import {
  type LiveResource,
  TelemetryMetricsStore,
} from '../src/telemetry/server/telemetry-metrics-store.js';
import { bearer, useLocalCredential } from './support/credentials.js';
import { runPeak } from './support/peak-process.js';
import { waitFor } from './support/wait.js';

const fixture = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  'telemetry-metrics-fixture.js',
);

interface Instance {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  exited: Promise<void>;
}

function startInstance(server: string, name: string): Promise<Instance> {
  const child = spawn(process.execPath, [fixture, server, name], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  let buffered = '';
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`instance ${name} not ready: ${stderr}`)),
      15_000,
    );
    child.stdout!.on('data', (d: Buffer) => {
      buffered += d.toString();
      let nl = buffered.indexOf('\n');
      while (nl >= 0) {
        lines.push(JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>);
        buffered = buffered.slice(nl + 1);
        nl = buffered.indexOf('\n');
      }
      if (lines.some((l) => l.event === 'ready')) {
        clearTimeout(timer);
        resolve({ child, lines, exited });
      }
    });
    child.on('close', () => reject(new Error(`instance ${name} exited: ${stderr}`)));
  });
}

describe('per-second metrics pushed to the control plane', { timeout: 120_000 }, () => {
  let dataDir: string;
  let server: PeakServer;
  const instances: Instance[] = [];

  const live = async () => {
    const res = await fetch(
      `${server.info.url}/api/v1/telemetry/metrics/live?service=checkout&seconds=3`,
      {
        headers: bearer(),
        signal: AbortSignal.timeout(10_000),
      },
    );
    assert.equal(res.status, 200);
    return ((await res.json()) as { resources: LiveResource[] }).resources;
  };

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-telemetry-push-'));
    server = await PeakServer.start({ dataDir, port: 0 });
    useLocalCredential(server);
  });

  after(async () => {
    for (const i of instances) {
      i.child.kill('SIGKILL');
      await i.exited;
    }
    await server?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('serves live figures of every instance, summed, to the API and peak top', async () => {
    instances.push(await startInstance(server.info.url, 'checkout-1'));
    instances.push(await startInstance(server.info.url, 'checkout-2'));
    let resources: LiveResource[] = [];
    await waitFor(
      'both instances in the live figures',
      async () => {
        resources = await live();
        return resources.length === 2 && resources.every((r) => r.instances === 2 && r.qps > 0);
      },
      20_000,
    );
    // Let the 3-second view fill with seconds in which both instances ran all along.
    await new Promise((r) => setTimeout(r, 4000));
    resources = await live();
    const pay = resources.find((r) => r.resource === 'checkout.pay')!;
    const quote = resources.find((r) => r.resource === 'checkout.quote')!;
    // Guard admits 20/s per instance: about 40/s in all, the rest blocked.
    assert.ok(pay.qps > 20 && pay.qps <= 45, `pay qps ${pay.qps}`);
    assert.ok(pay.blockQps > 20, `pay blocked ${pay.blockQps}/s`);
    assert.ok(pay.errorQps > 0 && pay.errorQps < pay.qps / 2, `pay errors ${pay.errorQps}/s`);
    assert.ok(quote.qps > 40, `quote qps ${quote.qps}`);
    assert.ok(quote.errorQps > 0);
    // Quote RTs are values the fixture records (2, 3, ..., 12 ms in turn), not timings, so
    // the summed view is known: the mean of whole cycles is 7 (a partial cycle at either
    // end moves a few hundred samples' mean by well under 1), the p99 is the largest value,
    // 12, reported within the histogram's bucket width (11.3-12.3). Averages summed instead
    // of weighted over the two instances would show about 14.
    assert.ok(quote.rtAvgMs >= 6 && quote.rtAvgMs <= 8, `quote rt avg ${quote.rtAvgMs}`);
    assert.ok(
      (quote.rtP99Ms ?? 0) >= 11 && (quote.rtP99Ms ?? 0) <= 13,
      `quote p99 ${quote.rtP99Ms}`,
    );
    assert.ok((quote.rtP50Ms ?? 0) >= 5 && (quote.rtP50Ms ?? 0) <= 9, `p50 ${quote.rtP50Ms}`);

    const json = await runPeak(['top', '--once', '--json', '--server', server.info.url]);
    assert.equal(json.code, 0, json.stderr);
    const top = JSON.parse(json.stdout) as { resources: LiveResource[] };
    assert.ok(top.resources.some((r) => r.service === 'checkout' && r.resource === 'checkout.pay'));
    const human = await runPeak(['top', '--once', '--server', server.info.url]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /checkout\s+checkout\.pay\s+\d+\.\d\d\s+\d+\.\d\d\s+\d+\.\d\d/);
    assert.match(human.stdout, /checkout\s+checkout\.quote\s.*\s2$/m);

    // One instance stops: after its last records age out, only one instance is counted.
    const gone = instances.shift()!;
    gone.child.kill('SIGTERM');
    await gone.exited;
    const stats = gone.lines.find((l) => l.event === 'stats');
    assert.ok(stats !== undefined && (stats.sent as number) > 0, JSON.stringify(stats));
    assert.equal(stats.droppedPush, 0);
    await waitFor(
      'one instance left',
      async () => (await live()).every((r) => r.instances === 1),
      20_000,
    );
  });

  it('keeps pushed metrics for a bounded time: retention deletes older records', async () => {
    const old = Date.now() - 3 * 3600_000;
    const res = await fetch(`${server.info.url}/api/v1/telemetry/metrics`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer() },
      body: JSON.stringify({
        service: 'archive',
        instance: 'a-1',
        metrics: [
          { resource: 'old.call', second: old, pass: 1, block: 0, success: 1, error: 0 },
          { resource: 'new.call', second: Date.now(), pass: 1, block: 0, success: 1, error: 0 },
        ],
      }),
    });
    assert.equal(res.status, 200);
    const bad = await fetch(`${server.info.url}/api/v1/telemetry/metrics`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer() },
      body: JSON.stringify({ service: 'archive', instance: 'a-1', metrics: [{ resource: 'x' }] }),
    });
    assert.equal(bad.status, 400, 'a record without its counts is refused');
    const pool = new pg.Pool({ connectionString: server.postgresUrl(), max: 1 });
    try {
      const store = new TelemetryMetricsStore(pool);
      assert.equal(await store.prune(Date.now() - 3600_000), 1, 'the 3-hour-old record goes');
      const left = await pool.query(
        "SELECT resource FROM peak.telemetry_metrics WHERE service = 'archive'",
      );
      assert.deepEqual(
        left.rows.map((r) => r.resource),
        ['new.call'],
      );
    } finally {
      await pool.end();
    }
  });

  it('drops and counts, never waits, when the control plane is unreachable', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const pusher = new MetricsPusher({
      servers: `http://127.0.0.1:${port}`,
      service: 'lonely',
      maxBuffered: 1000,
      maxPerPush: 100,
      intervalMs: 100,
    });
    try {
      const second = Math.floor(Date.now() / 1000) * 1000;
      const batch = Array.from({ length: 5000 }, (_, i) => ({
        resource: `r${i % 50}`,
        second,
        pass: 1,
        block: 0,
        success: 1,
        error: 0,
        rtAvg: 1,
        concurrency: 0,
      }));
      pusher.record(batch); // synchronous: returns before any network work
      assert.equal(pusher.stats().buffered, 1000);
      assert.equal(pusher.stats().droppedFull, 4000);
      await waitFor('a failed push', () => pusher.stats().failedPushes >= 2, 10_000);
      await pusher.close(); // settles the push in flight, so every record is counted somewhere
      const s = pusher.stats();
      assert.equal(s.sent, 0);
      assert.ok(s.droppedPush >= 200, JSON.stringify(s));
      assert.equal(s.droppedFull + s.droppedPush + s.buffered, 5000, 'every record accounted for');
    } finally {
      await pusher.close();
    }
  });
});
