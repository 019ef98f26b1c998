/**
 * Message queue throughput and end-to-end latency: Peakware MQ (producer → peak server's
 * broker over HTTP → PostgreSQL → long-poll consumer, acks) beside pg-boss 10 (jobs in the
 * same embedded PostgreSQL, `insert` batches, `work` with batch fetch). Both commit every
 * message durably before the producer is told it is stored. 256-byte bodies.
 *
 * Per run and system: a consumer is started first, then `count` messages are produced in
 * batches of 100 from 8 concurrent senders. Reported: send/s (until the last send is
 * acknowledged), end-to-end/s (until the last message is consumed), and end-to-end
 * latency p50/p99 (consume time minus send time, one clock). Everything runs in this one
 * process on loopback, broker included, so the 2 cores are shared by all sides.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BrokerClient, Consumer, Producer } from 'peakware/mq';
import { PeakServer } from 'peakware/server';
import PgBoss from 'pg-boss';
import { type Benchmark, median, round } from '../bench.js';

const BODY_BYTES = 256;
const BATCH = 100;
const SENDERS = 8;
const now = () => performance.timeOrigin + performance.now();

interface RunResult {
  sendPerSec: number;
  e2ePerSec: number;
  p50: number;
  p99: number;
}

function body(seq: number, t: number): string {
  const head = `${seq}:${t.toFixed(3)}:`;
  return head + 'x'.repeat(BODY_BYTES - head.length);
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

async function produceAll(
  count: number,
  sendBatch: (bodies: string[]) => Promise<void>,
): Promise<number> {
  let next = 0;
  const start = now();
  await Promise.all(
    Array.from({ length: SENDERS }, async () => {
      while (next < count) {
        const n = Math.min(BATCH, count - next);
        const first = next;
        next += n;
        const t = now();
        await sendBatch(Array.from({ length: n }, (_, i) => body(first + i, t)));
      }
    }),
  );
  return now() - start;
}

async function waitAll(seen: Set<number>, count: number, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (seen.size < count) {
    if (Date.now() > end)
      throw new Error(`only ${seen.size} of ${count} messages consumed in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function record(text: string, seen: Set<number>, latencies: number[]): void {
  const [seq, t] = text.split(':', 2);
  const n = Number(seq);
  if (seen.has(n)) return;
  seen.add(n);
  latencies.push(now() - Number(t));
}

async function runPeakware(
  url: string,
  token: string,
  topic: string,
  count: number,
): Promise<RunResult> {
  const admin = new BrokerClient({ server: url, token });
  await admin.call('POST', '/api/v1/mq/topics', { name: topic, queues: 8 });
  const seen = new Set<number>();
  const latencies: number[] = [];
  const consumer = new Consumer({
    server: url,
    group: `${topic}-g`,
    topic,
    concurrency: 1000,
    startFrom: 'earliest',
    handler: (m) => record(m.text(), seen, latencies),
  }).start();
  const producer = new Producer({ server: url });
  await new Promise((r) => setTimeout(r, 300));
  const start = now();
  const sendMs = await produceAll(count, async (bodies) => {
    await producer.sendBatch(
      topic,
      bodies.map((b) => ({ body: b })),
    );
  });
  await waitAll(seen, count, 120_000);
  const e2eMs = now() - start;
  await consumer.close();
  await producer.close();
  latencies.sort((a, b) => a - b);
  return {
    sendPerSec: (count / sendMs) * 1000,
    e2ePerSec: (count / e2eMs) * 1000,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
  };
}

async function runPgBoss(boss: PgBoss, queue: string, count: number): Promise<RunResult> {
  await boss.createQueue(queue);
  const seen = new Set<number>();
  const latencies: number[] = [];
  const workers: string[] = [];
  for (let i = 0; i < 4; i++) {
    workers.push(
      await boss.work<{ b: string }>(
        queue,
        { batchSize: BATCH, pollingIntervalSeconds: 0.5 },
        async (jobs) => {
          for (const j of jobs) record(j.data.b, seen, latencies);
        },
      ),
    );
  }
  await new Promise((r) => setTimeout(r, 300));
  const start = now();
  const sendMs = await produceAll(count, (bodies) =>
    boss.insert(bodies.map((b) => ({ name: queue, data: { b } }))),
  );
  await waitAll(seen, count, 120_000);
  const e2eMs = now() - start;
  for (const w of workers) await boss.offWork(w);
  latencies.sort((a, b) => a - b);
  return {
    sendPerSec: (count / sendMs) * 1000,
    e2ePerSec: (count / e2eMs) * 1000,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
  };
}

/**
 * Delayed-delivery lateness: `count` messages all due at the same moment (after the
 * sends finish); lateness = consume time minus due time. One run.
 */
async function runDelayed(
  url: string,
  token: string,
  count: number,
): Promise<{ p50: number; p99: number; max: number }> {
  const topic = 'bench-delayed';
  const admin = new BrokerClient({ server: url, token });
  await admin.call('POST', '/api/v1/mq/topics', { name: topic, queues: 8 });
  const producer = new Producer({ server: url });
  // Leave time to send everything before they fall due (about 10k/s here).
  const due = Date.now() + 3000 + count / 5;
  let next = 0;
  await Promise.all(
    Array.from({ length: SENDERS }, async () => {
      while (next < count) {
        const n = Math.min(BATCH, count - next);
        next += n;
        await producer.sendBatch(
          topic,
          Array.from({ length: n }, () => ({ body: 'd'.repeat(BODY_BYTES), deliverAt: due })),
        );
      }
    }),
  );
  if (Date.now() >= due) throw new Error('sending took longer than the delay; raise the margin');
  const lateness: number[] = [];
  const consumer = new Consumer({
    server: url,
    group: `${topic}-g`,
    topic,
    concurrency: 1000,
    handler: () => void lateness.push(Date.now() - due),
  }).start();
  const end = Date.now() + 180_000;
  while (lateness.length < count && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  await consumer.close();
  await producer.close();
  if (lateness.length < count)
    throw new Error(`only ${lateness.length} of ${count} delayed messages arrived`);
  lateness.sort((a, b) => a - b);
  if (lateness[0]! < 0) throw new Error(`a delayed message arrived ${-lateness[0]!} ms early`);
  return {
    p50: quantile(lateness, 0.5),
    p99: quantile(lateness, 0.99),
    max: lateness[lateness.length - 1]!,
  };
}

/** `npm run bench -- mq`. */
export const benchmark: Benchmark = {
  name: 'mq',
  description:
    'MQ produce/consume throughput and end-to-end latency, 256-byte messages: Peakware MQ vs pg-boss on the same PostgreSQL',
  async run(options) {
    const count = options.quick ? 3000 : 20_000;
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-bench-mq-'));
    const server = await PeakServer.start({ dataDir, port: 0 });
    const info = server.info.postgres;
    if (info.mode !== 'embedded') throw new Error('expected the embedded PostgreSQL');
    const password = (await readFile(path.join(dataDir, 'postgres-password'), 'utf8')).trim();
    const boss = new PgBoss({
      host: info.host,
      port: info.port,
      user: 'peak',
      password,
      database: 'postgres',
      max: 10,
      supervise: false,
      schedule: false,
    });
    boss.on('error', (err) => options.progress(`pg-boss error: ${err.message}`));
    await boss.start();
    const peak: RunResult[] = [];
    const pgb: RunResult[] = [];
    const delayedCount = options.quick ? 5000 : 100_000;
    let delayed = { p50: Number.NaN, p99: Number.NaN, max: Number.NaN };
    try {
      for (let run = 0; run < options.runs; run++) {
        options.progress(`run ${run + 1}/${options.runs}: peakware, ${count} messages`);
        peak.push(
          await runPeakware(server.info.url, server.info.adminToken!, `bench-${run}`, count),
        );
        options.progress(`run ${run + 1}/${options.runs}: pg-boss, ${count} messages`);
        pgb.push(await runPgBoss(boss, `bench-${run}`, count));
      }
      options.progress(`delayed: ${delayedCount} messages due in the same instant`);
      delayed = await runDelayed(server.info.url, server.info.adminToken!, delayedCount);
    } finally {
      await boss.stop({ graceful: false, wait: true }).catch(() => undefined);
      await server.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
    const m = (list: RunResult[], k: keyof RunResult) => median(list.map((r) => r[k]));
    const figures: Record<string, number> = {};
    for (const [name, list] of [
      ['peakware', peak],
      ['pgboss', pgb],
    ] as const) {
      for (const k of ['sendPerSec', 'e2ePerSec', 'p50', 'p99'] as const)
        figures[`${name}.${k}`] = round(m(list, k));
    }
    figures['peakware.delayedLatenessP50'] = round(delayed.p50);
    figures['peakware.delayedLatenessP99'] = round(delayed.p99);
    figures['peakware.delayedLatenessMax'] = round(delayed.max);
    const ratios = {
      'peakware/pgboss.sendPerSec': round(m(peak, 'sendPerSec') / m(pgb, 'sendPerSec')),
      'peakware/pgboss.e2ePerSec': round(m(peak, 'e2ePerSec') / m(pgb, 'e2ePerSec')),
      'pgboss/peakware.p99': round(m(pgb, 'p99') / m(peak, 'p99')),
    };
    return {
      figures,
      ratios,
      table: [
        ['system', 'send/s', 'end-to-end/s', 'e2e p50 ms', 'e2e p99 ms'],
        [
          'peakware mq',
          round(m(peak, 'sendPerSec')),
          round(m(peak, 'e2ePerSec')),
          round(m(peak, 'p50')),
          round(m(peak, 'p99')),
        ],
        [
          'pg-boss 10',
          round(m(pgb, 'sendPerSec')),
          round(m(pgb, 'e2ePerSec')),
          round(m(pgb, 'p50')),
          round(m(pgb, 'p99')),
        ],
      ],
      notes: [
        `${count} messages of ${BODY_BYTES} bytes per run, ${SENDERS} senders x batches of ${BATCH}; medians of ${options.runs} runs`,
        'one process: broker, PostgreSQL clients, producers and consumers share the 2 cores; PostgreSQL is the embedded one',
        'pg-boss polls every 0.5 s (its minimum) with 4 workers of batch 100; Peakware consumers long-poll',
        `delayed: ${delayedCount} messages due at one instant, lateness p50 ${round(delayed.p50)} ms, p99 ${round(delayed.p99)} ms, max ${round(delayed.max)} ms (none early)`,
      ],
    };
  },
};
