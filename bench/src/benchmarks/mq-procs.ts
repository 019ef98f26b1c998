/**
 * The MQ with its producers and consumers as separate processes (issue 13): 8 producer and
 * 8 consumer processes per system, the broker in its own, so no side shares a process (and
 * an event loop) with another. Peakware (`peak server` on its embedded PostgreSQL, the
 * services with the local app's credential, as deployed services send theirs) against NATS
 * JetStream (Debian's `nats-server -js`, installed when missing: a file-storage stream,
 * acked publishes, one durable pull consumer shared by the 8 consumer processes), pg-boss
 * (its jobs in the same PostgreSQL) and BullMQ (its own `redis-server`); a peer whose
 * server cannot be had is left out with a note.
 *
 * Per run and system: the consumers start first (one group of 8; 8 queues for Peakware,
 * one durable for JetStream, 125 in flight each), then each producer sends its eighth of
 * `count` 256-byte messages in batches of 100, one batch after the other (8 senders in all,
 * as `bench mq` has in one process). Reported: send/s (until the last producer's last batch
 * is acknowledged), end-to-end/s (until the consumers have taken every message),
 * end-to-end latency p50/p99 (consume time minus the batch's send time, one host clock),
 * and CPU per message: the producers' and consumers' processes (from their start signal)
 * and the broker's (`peak server` and every process of its PostgreSQL, or `nats-server`).
 *
 * Run as `--serve <peak|producer|consumer> ...`, this file is one of those processes.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue as BullQueue, Worker as BullWorker } from 'bullmq';
import { AckPolicy, connect as natsConnect, StorageType } from 'nats';
import { BrokerClient, Consumer, Producer } from 'peakware/mq';
import { PeakServer } from 'peakware/server';
import pg from 'pg';
import PgBoss from 'pg-boss';
import { type Benchmark, median, round } from '../bench.js';
import { postgresCpuUs, postmasterOf, processCpuUs } from '../child-server.js';
import { body, quantile, startNats, startRedis } from './mq.js';

const PROCESSES = 8;
const BODY_BYTES = 256;
const BATCH = 100;
const IN_FLIGHT = 125;
const now = () => performance.timeOrigin + performance.now();

type System = 'peakware' | 'jetstream' | 'pgboss' | 'bullmq';
const SYSTEMS: readonly System[] = ['peakware', 'jetstream', 'pgboss', 'bullmq'];
const LABELS: Record<System, string> = {
  peakware: 'peakware mq (peak server + PostgreSQL)',
  jetstream: 'nats jetstream (file)',
  pgboss: 'pg-boss 10 (PostgreSQL)',
  bullmq: 'bullmq 6 (redis, AOF everysec)',
};

/** Where the processes of one run send and take: a broker and a topic (a stream). */
interface Target {
  system: System;
  /** Peakware: the server's URL; JetStream: host:port; pg-boss: a PostgreSQL URL; BullMQ: Redis's port. */
  servers: string;
  topic: string;
}

/** What a child tells the runner over IPC. */
type ChildMessage =
  | { kind: 'ready' }
  | { kind: 'consumed'; n: number }
  | { kind: 'sent'; cpuUs: number }
  | { kind: 'done'; cpuUs: number; latencies: number[] };

function cpuUs(since: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return u.user + u.system;
}

function send(m: ChildMessage): void {
  process.send?.(m);
}

/** Waits for the runner's next message of `kind`. */
function next(kind: string): Promise<void> {
  return new Promise((resolve) => {
    const on = (m: { kind?: string }) => {
      if (m?.kind !== kind) return;
      process.off('message', on);
      resolve();
    };
    process.on('message', on);
  });
}

async function producer(target: Target, first: number, count: number): Promise<void> {
  let sendBatch: (bodies: string[]) => Promise<void>;
  let close: () => Promise<void>;
  if (target.system === 'peakware') {
    const p = new Producer({ servers: target.servers });
    sendBatch = async (bodies) => {
      await p.sendBatch(
        target.topic,
        bodies.map((b) => ({ body: b })),
      );
    };
    close = () => p.close();
  } else if (target.system === 'jetstream') {
    const nc = await natsConnect({ servers: target.servers });
    const js = nc.jetstream();
    const encoder = new TextEncoder();
    sendBatch = async (bodies) => {
      await Promise.all(bodies.map((b) => js.publish(target.topic, encoder.encode(b))));
    };
    close = () => nc.close();
  } else if (target.system === 'pgboss') {
    const boss = await pgBossAt(target.servers);
    sendBatch = async (bodies) => {
      await boss.insert(bodies.map((b) => ({ name: target.topic, data: { b } })));
    };
    close = () => boss.stop({ graceful: false, wait: true });
  } else {
    const queue = new BullQueue(target.topic, { connection: redisAt(target.servers) });
    await queue.waitUntilReady();
    sendBatch = async (bodies) => {
      await queue.addBulk(
        bodies.map((b) => ({ name: 'm', data: { b }, opts: { removeOnComplete: true } })),
      );
    };
    close = () => queue.close();
  }
  send({ kind: 'ready' });
  await next('go');
  const cpu = process.cpuUsage();
  for (let at = first; at < first + count; at += BATCH) {
    const n = Math.min(BATCH, first + count - at);
    const t = now();
    await sendBatch(Array.from({ length: n }, (_, i) => body(at + i, t)));
  }
  send({ kind: 'sent', cpuUs: cpuUs(cpu) });
  await close();
}

async function consumer(target: Target): Promise<void> {
  const latencies: number[] = [];
  const seen = new Set<number>();
  const take = (text: string) => {
    const [seq, t] = text.split(':', 2);
    const n = Number(seq);
    if (seen.has(n)) return;
    seen.add(n);
    latencies.push(now() - Number(t));
  };
  let close: () => Promise<void>;
  if (target.system === 'peakware') {
    const c = new Consumer({
      servers: target.servers,
      group: `${target.topic}-g`,
      topic: target.topic,
      concurrency: IN_FLIGHT,
      startFrom: 'earliest',
      handler: (m) => take(m.text()),
    }).start();
    close = () => c.close();
  } else if (target.system === 'pgboss') {
    const boss = await pgBossAt(target.servers);
    const worker = await boss.work<{ b: string }>(
      target.topic,
      { batchSize: BATCH, pollingIntervalSeconds: 0.5 },
      async (jobs) => {
        for (const j of jobs) take(j.data.b);
      },
    );
    close = async () => {
      await boss.offWork(worker);
      await boss.stop({ graceful: false, wait: true });
    };
  } else if (target.system === 'bullmq') {
    const worker = new BullWorker<{ b: string }>(target.topic, async (job) => take(job.data.b), {
      connection: redisAt(target.servers),
      concurrency: IN_FLIGHT,
      removeOnComplete: { count: 0 },
      removeOnFail: { count: 0 },
    });
    await worker.waitUntilReady();
    close = () => worker.close();
  } else {
    const nc = await natsConnect({ servers: target.servers });
    const c = await nc.jetstream().consumers.get(target.topic, 'bench');
    const messages = await c.consume({ max_messages: IN_FLIGHT });
    const loop = (async () => {
      for await (const m of messages) {
        take(m.string());
        m.ack();
      }
    })();
    close = async () => {
      await messages.close();
      await loop;
      await nc.close();
    };
  }
  const cpu = process.cpuUsage();
  let told = 0;
  const tick = setInterval(() => {
    if (seen.size === told) return;
    told = seen.size;
    send({ kind: 'consumed', n: told });
  }, 20);
  send({ kind: 'ready' });
  await next('stop');
  clearInterval(tick);
  await close();
  send({ kind: 'done', cpuUs: cpuUs(cpu), latencies });
}

/** A started pg-boss on `url` with a small pool, no maintenance of its own. */
async function pgBossAt(url: string): Promise<PgBoss> {
  const boss = new PgBoss({ connectionString: url, max: 2, supervise: false, schedule: false });
  await boss.start();
  return boss;
}

function redisAt(port: string) {
  return { host: '127.0.0.1', port: Number(port), maxRetriesPerRequest: null };
}

async function serve(role: string, args: string[]): Promise<void> {
  if (role === 'peak') {
    const server = await PeakServer.start({ dataDir: args[0]!, port: 0 });
    process.stdout.write(
      `${JSON.stringify({
        url: server.info.url,
        token: server.info.adminToken,
        credential: server.credential(),
        db: server.postgresUrl(),
      })}\n`,
    );
    process.once('SIGTERM', () => void server.stop().then(() => process.exit(0)));
    return;
  }
  const target = JSON.parse(args[0]!) as Target;
  if (role === 'producer') await producer(target, Number(args[1]), Number(args[2]));
  else await consumer(target);
  process.disconnect?.();
}

/** Waits for a child's line of stdout holding `marker`, or its first JSON line. */
function firstLine(child: ChildProcess, stream: 'stdout' | 'stderr', marker: string, what: string) {
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start in 120 s`)), 120_000);
    let out = '';
    child[stream]?.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.includes(marker));
      if (line === undefined) return;
      clearTimeout(timer);
      resolve(line);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code}: ${out.slice(-500)}`));
    });
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

/**
 * A child's next message that `pick` takes; rejects, naming `what`, if the child exits
 * first or takes over two minutes (a crashed producer must not hang the run).
 */
function answer<T>(
  child: ChildProcess,
  what: string,
  pick: (m: ChildMessage) => T | undefined,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no '${what}' from a child in 120 s`)),
      120_000,
    );
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`a child exited with ${code} before '${what}'`));
    });
    child.on('message', (m: ChildMessage) => {
      const v = pick(m);
      if (v === undefined) return;
      clearTimeout(timer);
      resolve(v);
    });
  });
}

interface RunResult {
  sendPerSec: number;
  e2ePerSec: number;
  p50: number;
  p99: number;
  clientCpuUsPerMsg: number;
  brokerCpuUsPerMsg: number;
}

/** One run: 8 consumer processes, then 8 producer processes, all on `target`. */
async function runProcesses(
  target: Target,
  count: number,
  env: NodeJS.ProcessEnv,
  brokerCpuUs: () => number,
): Promise<RunResult> {
  const file = fileURLToPath(import.meta.url);
  const spawnRole = (role: string, extra: string[]) =>
    fork(file, ['--serve', role, JSON.stringify(target), ...extra], {
      env,
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
  const children: ChildProcess[] = [];
  const consumed = new Map<ChildProcess, number>();
  try {
    const ready = (c: ChildProcess) =>
      new Promise<void>((resolve, reject) => {
        c.once('exit', (code) =>
          reject(new Error(`a child exited with ${code} before it was ready`)),
        );
        c.on('message', (m: ChildMessage) => {
          if (m.kind === 'ready') resolve();
          if (m.kind === 'consumed') consumed.set(c, m.n);
        });
      });
    const consumers = Array.from({ length: PROCESSES }, () => spawnRole('consumer', []));
    children.push(...consumers);
    await Promise.all(consumers.map(ready));
    const share = Math.ceil(count / PROCESSES);
    const producers = Array.from({ length: PROCESSES }, (_, i) =>
      spawnRole('producer', [
        String(i * share),
        String(Math.max(0, Math.min(share, count - i * share))),
      ]),
    );
    children.push(...producers);
    await Promise.all(producers.map(ready));
    await new Promise((r) => setTimeout(r, 300));
    const brokerBefore = brokerCpuUs();
    const sent = producers.map((p) =>
      answer(p, 'sent', (m) => (m.kind === 'sent' ? { at: now(), cpuUs: m.cpuUs } : undefined)),
    );
    const start = now();
    for (const p of producers) p.send({ kind: 'go' });
    const sends = await Promise.all(sent);
    const sendMs = Math.max(...sends.map((s) => s.at)) - start;
    const deadline = Date.now() + 120_000;
    const total = () => [...consumed.values()].reduce((a, b) => a + b, 0);
    while (total() < count) {
      if (Date.now() > deadline)
        throw new Error(`only ${total()} of ${count} messages consumed in 120 s`);
      await new Promise((r) => setTimeout(r, 5));
    }
    const e2eMs = now() - start;
    const brokerUs = brokerCpuUs() - brokerBefore;
    const dones = consumers.map((c) =>
      answer(c, 'done', (m) => (m.kind === 'done' ? m : undefined)),
    );
    for (const c of consumers) c.send({ kind: 'stop' });
    const done = await Promise.all(dones);
    const latencies = done.flatMap((d) => d.latencies).sort((a, b) => a - b);
    const clientUs = sends.reduce((a, s) => a + s.cpuUs, 0) + done.reduce((a, d) => a + d.cpuUs, 0);
    return {
      sendPerSec: (count / sendMs) * 1000,
      e2ePerSec: (count / e2eMs) * 1000,
      p50: quantile(latencies, 0.5),
      p99: quantile(latencies, 0.99),
      clientCpuUsPerMsg: clientUs / count,
      brokerCpuUsPerMsg: brokerUs / count,
    };
  } finally {
    await Promise.all(children.map(stopChild));
  }
}

export const benchmark: Benchmark = {
  name: 'mq-procs',
  description:
    'MQ with 8 producer and 8 consumer processes and the broker in its own: Peakware MQ (peak server, embedded PostgreSQL) vs NATS JetStream (file storage), pg-boss and BullMQ, 256-byte messages',
  async run({ runs, quick, progress }) {
    const count = quick ? 4000 : 20_000;
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-bench-mq-procs-'));
    let peak: ChildProcess | undefined;
    let db: pg.Client | undefined;
    let boss: PgBoss | undefined;
    const nats = await startNats(progress);
    const redis = await startRedis();
    const skipped: string[] = [];
    if (nats === undefined)
      skipped.push('jetstream (nats-server is not installed and could not be)');
    if (redis === undefined) skipped.push('bullmq (redis-server is not on PATH)');
    try {
      progress('starting peak server (its own process)');
      peak = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve', 'peak', dataDir], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const info = JSON.parse(await firstLine(peak, 'stdout', '{', 'peak server')) as {
        url: string;
        token: string;
        credential: string;
        db: string;
      };
      db = new pg.Client({ connectionString: info.db });
      await db.connect();
      const backend = await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      const postmaster = postmasterOf(backend.rows[0]!.pid);
      const peakPid = peak.pid;
      const admin = new BrokerClient({ servers: info.url, token: info.token });
      boss = new PgBoss({ connectionString: info.db, max: 2, supervise: false, schedule: false });
      await boss.start();
      const env = { ...process.env, PEAK_CREDENTIAL: info.credential };
      const results: Record<System, RunResult[]> = {
        peakware: [],
        jetstream: [],
        pgboss: [],
        bullmq: [],
      };
      const nc =
        nats === undefined ? undefined : await natsConnect({ servers: `127.0.0.1:${nats.port}` });
      const jsm = await nc?.jetstreamManager();
      try {
        for (let r = 0; r < runs; r++) {
          const topic = `procs-${r}`;
          const each = `${PROCESSES}+${PROCESSES} processes`;
          await admin.call('POST', '/api/v1/mq/topics', { name: topic, queues: PROCESSES });
          progress(`run ${r + 1}/${runs}: peakware, ${count} messages, ${each}`);
          results.peakware.push(
            await runProcesses(
              { system: 'peakware', servers: info.url, topic },
              count,
              env,
              () => processCpuUs(peakPid) + postgresCpuUs(postmaster),
            ),
          );
          if (nats !== undefined && jsm !== undefined) {
            await jsm.streams.add({ name: topic, subjects: [topic], storage: StorageType.File });
            await jsm.consumers.add(topic, {
              durable_name: 'bench',
              ack_policy: AckPolicy.Explicit,
              max_ack_pending: 10_000,
            });
            progress(`run ${r + 1}/${runs}: jetstream, ${count} messages, ${each}`);
            results.jetstream.push(
              await runProcesses(
                { system: 'jetstream', servers: `127.0.0.1:${nats.port}`, topic },
                count,
                env,
                () => processCpuUs(nats.pid),
              ),
            );
            await jsm.streams.delete(topic);
          }
          await boss.createQueue(topic);
          progress(`run ${r + 1}/${runs}: pg-boss, ${count} messages, ${each}`);
          results.pgboss.push(
            await runProcesses({ system: 'pgboss', servers: info.db, topic }, count, env, () =>
              postgresCpuUs(postmaster),
            ),
          );
          if (redis !== undefined) {
            progress(`run ${r + 1}/${runs}: bullmq, ${count} messages, ${each}`);
            results.bullmq.push(
              await runProcesses(
                { system: 'bullmq', servers: String(redis.port), topic },
                count,
                env,
                () => processCpuUs(redis.pid),
              ),
            );
          }
        }
      } finally {
        await nc?.close();
      }
      const ran = SYSTEMS.filter((s) => results[s].length > 0);
      const m = (s: System, k: keyof RunResult) => round(median(results[s].map((x) => x[k])));
      const figures: Record<string, number> = {};
      for (const s of ran)
        for (const k of [
          'sendPerSec',
          'e2ePerSec',
          'p50',
          'p99',
          'clientCpuUsPerMsg',
          'brokerCpuUsPerMsg',
        ] as const)
          figures[`${s}.${k}`] = m(s, k);
      const ratios: Record<string, number> = {};
      for (const s of ran.filter((x) => x !== 'peakware')) {
        ratios[`peakware/${s}.sendPerSec`] = round(
          m('peakware', 'sendPerSec') / m(s, 'sendPerSec'),
        );
        ratios[`peakware/${s}.e2ePerSec`] = round(m('peakware', 'e2ePerSec') / m(s, 'e2ePerSec'));
        ratios[`${s}/peakware.p99`] = round(m(s, 'p99') / m('peakware', 'p99'));
      }
      return {
        figures,
        ratios,
        table: [
          [
            'system',
            'send/s',
            'end-to-end/s',
            'e2e p50 ms',
            'e2e p99 ms',
            'CPU µs/msg clients',
            'CPU µs/msg broker',
          ],
          ...ran.map((s) => [
            s === 'jetstream' && nats !== undefined
              ? `nats jetstream ${nats.version.replace(/^nats-server: /, '')} (file)`
              : LABELS[s],
            m(s, 'sendPerSec'),
            m(s, 'e2ePerSec'),
            m(s, 'p50'),
            m(s, 'p99'),
            m(s, 'clientCpuUsPerMsg'),
            m(s, 'brokerCpuUsPerMsg'),
          ]),
        ],
        notes: [
          `${count} messages of ${BODY_BYTES} bytes per run; ${PROCESSES} producer processes (each its share in batches of ${BATCH}, one after the other) and ${PROCESSES} consumer processes (${IN_FLIGHT} in flight each; pg-boss: one worker of batch ${BATCH} polling every 0.5 s) per system; medians of ${runs} runs`,
          'the broker: peak server in its own process (CPU: it and every process of its embedded PostgreSQL, which commits every batch to disk before its ack); nats-server (file storage: written to the OS before each ack, synced to disk on its own schedule); for pg-boss, the same PostgreSQL (every process of it); for BullMQ, redis-server (AOF, fsync once a second)',
          'clients: the CPU of the producer processes from their start signal to their last ack, and of the consumer processes while they ran',
          ...(skipped.length === 0 ? [] : [`not run: ${skipped.join('; ')}`]),
        ],
      };
    } finally {
      await boss?.stop({ graceful: false, wait: true }).catch(() => undefined);
      await db?.end().catch(() => undefined);
      if (peak !== undefined) await stopChild(peak);
      await nats?.stop();
      await redis?.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  },
};

if (process.argv[2] === '--serve') await serve(process.argv[3]!, process.argv.slice(4));
