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
import { MetricsHistoryStore } from '../src/console/server/metrics-history.js';
import { histogramIndex, sparseQuantile } from '../src/core/latency-histogram.js';
import { silentLogger } from '../src/core/logger.js';
import {
  decodeHistogram,
  encodeHistogram,
  histogramCountAboveSql,
  histogramFromArraysSql,
} from '../src/core/pg-histograms.js';
import { PeakServer } from '../src/server/index.js';
import { collectMigrations } from '../src/server/migrations/index.js';
import { migrate } from '../src/server/migrator.js';
import { builtinModules } from '../src/server/modules.js';
import { MetricsPusher } from '../src/telemetry/index.js';
import { openMetricBuckets } from '../src/telemetry/server/metric-buckets.js';
import { AlertMeasures } from '../src/telemetry/server/telemetry-alert-measures.js';
import type { AlertRule } from '../src/telemetry/server/telemetry-alert-rules.js';
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

  it("merges RT histograms over instances and seconds: the p99 of every call, not the highest instance's", async () => {
    // Instance a: 2 000 calls a second at 2 ms; instance b: 10 a second at 100 ms. b's own
    // p99 is 100 ms, but of all 2 010 calls a second it is 2 ms (p99.9 is 100 ms).
    const at = (ms: number) => [histogramIndex(ms), 0];
    const [fastIndex] = at(2);
    const [slowIndex] = at(100);
    const now = Date.now();
    // A minute ahead of the node's own background rollup (it rolls minutes as they end),
    // so the rollup below is the one that takes it.
    const minute = Math.floor(now / 60_000) * 60_000 + 5 * 60_000;
    const seconds = [
      ...[0, 1, 2].map((k) => minute + k * 1000),
      ...[3, 4, 5].map((k) => Math.floor(now / 1000) * 1000 - k * 1000),
    ];
    const push = (instance: string, calls: number, index: number, rtAvg: number, rtP99: number) =>
      fetch(`${server.info.url}/api/v1/telemetry/metrics`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...bearer() },
        body: JSON.stringify({
          service: 'ledger',
          instance,
          metrics: seconds.map((second) => ({
            // The recent seconds (live view, alert) and the minute ahead (buckets, rollups)
            // as two resources, so each check sees only its own.
            resource: second >= minute ? 'ledger.close' : 'ledger.post',
            second,
            pass: calls,
            block: 0,
            success: calls,
            error: 0,
            rtAvg,
            rtP99,
            rtHist: [index, calls],
          })),
        }),
      });
    assert.equal((await push('ledger-a', 2000, fastIndex!, 2, 2)).status, 200);
    assert.equal((await push('ledger-b', 10, slowIndex!, 100, 100)).status, 200);

    // A malformed histogram is refused whole, naming the record and what is wrong.
    const bad = await fetch(`${server.info.url}/api/v1/telemetry/metrics`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer() },
      body: JSON.stringify({
        service: 'ledger',
        instance: 'ledger-c',
        metrics: [
          { resource: 'ledger.post', second: seconds[3], pass: 1, block: 0, success: 1, error: 0 },
          {
            resource: 'ledger.post',
            second: seconds[3],
            pass: 1,
            block: 0,
            success: 1,
            error: 0,
            rtHist: [9, 1, 4, 1],
          },
        ],
      }),
    });
    assert.equal(bad.status, 400);
    const badBody = (await bad.json()) as { error: { message: string } };
    assert.match(badBody.error.message, /metrics\[1\]\.rtHist .*index 4 at position 2/);

    const near = (got: number | null | undefined, want: number, what: string) =>
      assert.ok(
        got !== null && got !== undefined && Math.abs(got - want) / want < 0.07,
        `${what}: ${got} (want about ${want})`,
      );
    const pool = new pg.Pool({ connectionString: server.postgresUrl(), max: 2 });
    try {
      const rows = await pool.query(
        "SELECT count(*)::int AS n FROM peak.telemetry_metrics WHERE instance = 'ledger-c'",
      );
      assert.equal(rows.rows[0].n, 0, 'nothing of the refused push was stored');

      // peak top's live view over the last seconds.
      const store = new TelemetryMetricsStore(pool);
      const liveRows = await store.live(5, Math.floor(now / 1000) * 1000 - 1000, 'ledger');
      const post = liveRows.find((r) => r.resource === 'ledger.post');
      assert.equal(post?.instances, 2);
      near(post?.rtP99Ms, 2, 'live p99');
      near(post?.rtP50Ms, 2, 'live p50');
      // What the busiest (here: slowest) single instance saw, for a capacity probe.
      near(post?.rtP99HighestInstanceMs, 100, "the highest one instance's p99");

      // Buckets (console charts, releases, autoscaling), per second and per minute.
      const reader = openMetricBuckets(pool);
      const perSecond = await reader.buckets({
        fromMs: minute,
        toMs: minute + 60_000,
        bucketSeconds: 1,
        by: 'service',
        service: 'ledger',
      });
      assert.equal(perSecond.length, 3);
      for (const b of perSecond) {
        near(b.p99, 2, "a second's p99");
        assert.deepEqual(b.rtHist, [fastIndex, 2000, slowIndex, 10]);
      }
      const [perMinute] = await reader.buckets({
        fromMs: minute,
        toMs: minute + 60_000,
        bucketSeconds: 60,
        by: 'resource',
        service: 'ledger',
      });
      assert.deepEqual(perMinute?.rtHist, [fastIndex, 6000, slowIndex, 30]);
      near(perMinute!.p99, 2, "the minute's p99");
      near(sparseQuantile(perMinute!.rtHist!, 0.999), 100, "the minute's p99.9");

      // The console's rollups keep the histogram: the minute, then the hour it is in.
      const history = new MetricsHistoryStore(pool, reader, silentLogger());
      const nextHour = Math.floor(minute / 3_600_000) * 3_600_000 + 3_600_000;
      await history.rollUp(nextHour + 20_000);
      const rolled = await pool.query(
        `SELECT step_seconds, rt_p99, rt_hist FROM peak.console_metrics
          WHERE service = 'ledger' AND resource = 'ledger.close' ORDER BY step_seconds`,
      );
      assert.deepEqual(
        rolled.rows.map((r) => [r.step_seconds, r.rt_hist.length, decodeHistogram(r.rt_hist)]),
        [
          [60, 10, [fastIndex, 6000, slowIndex, 30]],
          [3600, 10, [fastIndex, 6000, slowIndex, 30]],
        ],
      );
      const hourly = await history.query(
        { from: nextHour - 3_600_000, to: nextHour, step: 3600, by: 'service', service: 'ledger' },
        nextHour + 20_000,
      );
      near(hourly.series[0]?.p99Ms[0], 2, "the hour's p99");

      // An alert rule on the resource's p99 reads the merged histograms too.
      // (no mq here: backlog rules are not what this measures)
      const measures = new AlertMeasures(pool, {
        backlog: async () => [],
        subscriptions: async () => [],
      });
      const m = await measures.measure(
        {
          name: 'ledger-p99',
          kind: 'p99',
          service: 'ledger',
          resource: 'ledger.post',
          threshold: 50,
          windowSeconds: 5,
          minQps: 0,
        } as AlertRule,
        now,
      );
      near(m.value, 2, "the alert's p99");
      assert.equal(m.breach, false, 'the slow instance alone does not breach a 50 ms p99');
      assert.equal(m.details.source, 'metrics');

      // A latency SLO over the same pushed metrics: calls over `latencyMs` are bad.
      const burn = (latencyMs: number) =>
        measures.measure(
          {
            name: 'ledger-slo',
            kind: 'burn-rate',
            service: 'ledger',
            resource: 'ledger.post',
            objective: 0.99,
            latencyMs,
            threshold: 5,
            windowSeconds: 5,
            shortWindowSeconds: 2,
            minQps: 0,
          } as AlertRule,
          now,
        );
      // Within 50 ms: only the 10 slow calls a second of 2 010 are bad, a burn of 0.5.
      const within50 = await burn(50);
      assert.ok(Math.abs(within50.value - 10 / 2010 / 0.01) < 0.01, `burn ${within50.value}`);
      assert.equal(within50.breach, false);
      // Within 1 ms: every call is bad, a burn of 100.
      const within1 = await burn(1);
      assert.ok(Math.abs(within1.value - 100) < 0.01, `burn ${within1.value}`);
      assert.equal(within1.breach, true);
    } finally {
      await pool.end();
    }
  });

  it('converts array histograms (migrations 30, 31) to rt_hist bytes and counts slow calls in SQL', async () => {
    const pool = new pg.Pool({ connectionString: server.postgresUrl(), max: 1 });
    try {
      const big = 5_000_000_000;
      const converted = await pool.query(
        `SELECT ${histogramFromArraysSql("'{3,7,9}'::smallint[]", "'{5,0,5000000000}'::bigint[]", true)} AS b,
                ${histogramFromArraysSql("'{3,7,9}'::smallint[]", "'{5,0,2000000000}'::int[]")} AS narrow,
                ${histogramFromArraysSql("'{}'::smallint[]", "'{}'::int[]")} AS empty`,
      );
      // A zero count is dropped; a count above 2^32 - 1 becomes two entries of its index.
      assert.equal(converted.rows[0].b.length, 15);
      assert.deepEqual(decodeHistogram(converted.rows[0].b), [3, 5, 9, big]);
      assert.equal(converted.rows[0].empty, null);
      assert.deepEqual(decodeHistogram(converted.rows[0].narrow), [3, 5, 9, 2_000_000_000]);
      // What the latency SLO counts per row: calls in buckets above an index.
      const above = await pool.query(
        `SELECT ${histogramCountAboveSql('h', '$2::int')} AS n, ${histogramCountAboveSql('NULL::bytea', '0')} AS none
           FROM (SELECT $1::bytea AS h) AS t`,
        [encodeHistogram([3, 5, 9, 7, 40, 3_000_000_000]), 8],
      );
      assert.equal(Number(above.rows[0].n), 3_000_000_007);
      assert.equal(Number(above.rows[0].none), 0);
    } finally {
      await pool.end();
    }
  });

  it('upgrades a database whose histograms are arrays (migrations 30, 31) in place', async () => {
    const admin = new pg.Pool({ connectionString: server.postgresUrl(), max: 1 });
    await admin.query('CREATE DATABASE hist_upgrade');
    const url = new URL(server.postgresUrl());
    url.pathname = '/hist_upgrade';
    const pool = new pg.Pool({ connectionString: url.toString(), max: 2 });
    try {
      const list = collectMigrations(builtinModules);
      await migrate(
        pool,
        list.filter((m) => m.version <= 31),
        silentLogger(),
      );
      await pool.query(
        `INSERT INTO peak.telemetry_metrics (service, instance, resource, second, pass, block,
           success, error, rt_avg, concurrency, rt_hist_i, rt_hist_c)
         VALUES ('s', 'i1', 'r', now(), 12, 0, 12, 0, 1, 0, '{40,41}', '{10,2}'),
                ('s', 'i2', 'r', now(), 1, 0, 1, 0, 1, 0, NULL, NULL)`,
      );
      await pool.query(
        `INSERT INTO peak.console_metrics (step_seconds, bucket, service, resource, pass, block,
           success, error, rt_sum, instances, rt_hist_i, rt_hist_c)
         VALUES (3600, now(), 's', 'r', 9, 0, 9, 0, 9, 1, '{50}', '{9}')`,
      );
      const done = await migrate(pool, list, silentLogger());
      assert.ok(done.applied.includes(32) && done.applied.includes(33), `${done.applied}`);
      const t = await pool.query(
        'SELECT instance, rt_hist FROM peak.telemetry_metrics ORDER BY instance',
      );
      assert.deepEqual(
        t.rows.map((r) => [r.instance, decodeHistogram(r.rt_hist)]),
        [
          ['i1', [40, 10, 41, 2]],
          ['i2', undefined],
        ],
      );
      const c = await pool.query('SELECT rt_hist FROM peak.console_metrics');
      assert.deepEqual(decodeHistogram(c.rows[0].rt_hist), [50, 9]);
    } finally {
      await pool.end();
      await admin.query('DROP DATABASE hist_upgrade');
      await admin.end();
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
