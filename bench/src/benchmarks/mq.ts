/**
 * Message queue throughput and end-to-end latency: Peakware MQ (producer → peak server's
 * broker over HTTP → PostgreSQL → long-poll consumer, acks) beside pg-boss 10 (jobs in the
 * same embedded PostgreSQL, `insert` batches, `work` with batch fetch) and BullMQ 6 (its
 * own `redis-server`, AOF with `appendfsync everysec`; skipped with a note when
 * redis-server is not on PATH) and NATS JetStream, the dedicated-broker anchor (Debian's
 * `nats-server -js` in its own process, installed when missing, a file-storage stream,
 * acked publishes, a durable pull consumer with explicit acks). Peakware and pg-boss commit
 * every batch durably before the producer is told it is stored; Redis acknowledges before
 * its once-a-second fsync, JetStream once written to the OS (synced on its own schedule).
 * 256-byte bodies.
 *
 * Per run and system: a consumer is started first, then `count` messages are produced in
 * batches of 100 from 8 concurrent senders. Reported: send/s (until the last send is
 * acknowledged), end-to-end/s (until the last message is consumed), and end-to-end
 * latency p50/p99 (consume time minus send time, one clock). Everything runs in this one
 * process on loopback, broker included (but for redis-server and nats-server), so the 2
 * cores are shared by all sides.
 *
 * Then delayed delivery: `delayedCount` messages (100 000; 10 000 with --quick) all due at
 * the same instant; lateness of the move into the queue (stored time minus due) and of
 * consumption (consume time minus due), and how many arrived early.
 *
 * PostgreSQL's side: the server is started once more with pg_stat_statements preloaded, so
 * each long-poll run reports statements and WAL bytes per message (every backend, produce
 * to ack) and CPU per message (this process, and PostgreSQL's processes from /proc), and a
 * last phase counts statements/s while one consumer long-polls an empty topic.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Queue as BullQueue, Worker as BullWorker } from 'bullmq';
import { AckPolicy, connect as natsConnect, StorageType } from 'nats';
import { BrokerClient, Consumer, Producer } from 'peakware/mq';
import { PeakServer } from 'peakware/server';
import pg from 'pg';
import PgBoss from 'pg-boss';
import { type Benchmark, median, round } from '../bench.js';
import { postgresCpuUs, processCpuUs } from '../child-server.js';
import { debianTool } from '../debian-tool.js';
import { dataDirWithStatements } from '../pg-stat-statements.js';

const BODY_BYTES = 256;
const BATCH = 100;
const SENDERS = 8;
const now = () => performance.timeOrigin + performance.now();

interface RunResult {
  sendPerSec: number;
  e2ePerSec: number;
  p50: number;
  p99: number;
  /** CPU µs per message produce to ack: this process, and the peer's server process. */
  nodeCpuUsPerMsg?: number;
  serverCpuUsPerMsg?: number;
}

/** What a run cost per message: statements and WAL bytes, and CPU (µs) of Node and PostgreSQL. */
interface DbCost {
  statementsPerMsg: number;
  walBytesPerMsg: number;
  nodeCpuUsPerMsg: number;
  pgCpuUsPerMsg: number;
}

/**
 * PostgreSQL's side of a run: statements executed (every backend, from pg_stat_statements,
 * this probe's own excluded) and WAL written (`pg_current_wal_lsn()` before and after).
 */
class DbProbe {
  readonly #pool: pg.Pool;
  #lsn = '0/0';
  #postmaster = 0;
  #pgCpu = 0;
  #nodeCpu: NodeJS.CpuUsage = { user: 0, system: 0 };

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  /** Zeroes the statement counts, notes the WAL position and the CPU used so far. */
  async start(): Promise<void> {
    await this.#pool.query('SELECT pg_stat_statements_reset()');
    const { rows } = await this.#pool.query<{ lsn: string; pid: number }>(
      'SELECT pg_current_wal_lsn()::text AS lsn, pg_backend_pid() AS pid',
    );
    this.#lsn = rows[0]!.lsn;
    try {
      // This session's backend was started by the postmaster.
      const stat = readFileSync(`/proc/${rows[0]!.pid}/stat`, 'utf8');
      this.#postmaster = Number(stat.split(') ')[1]!.split(' ')[1]);
    } catch {
      this.#postmaster = 0;
    }
    this.#pgCpu = postgresCpuUs(this.#postmaster);
    this.#nodeCpu = process.cpuUsage();
  }

  /**
   * Statements since start (total, and the top ones by calls), WAL bytes, and CPU µs of
   * this Node process and of PostgreSQL since start.
   */
  async stop(): Promise<{
    statements: number;
    walBytes: number;
    top: string[];
    nodeCpuUs: number;
    pgCpuUs: number;
  }> {
    const node = process.cpuUsage(this.#nodeCpu);
    const pgCpuUs = postgresCpuUs(this.#postmaster) - this.#pgCpu;
    const { rows: wal } = await this.#pool.query<{ bytes: string }>(
      'SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::text AS bytes',
      [this.#lsn],
    );
    // pg-boss's own polling (its workers keep fetching after offWork) is not the server's.
    const { rows } = await this.#pool.query<{ calls: string; query: string }>(
      `SELECT s.calls::text AS calls, s.query FROM pg_stat_statements s
        WHERE s.query NOT LIKE '%pg_stat_statements%' AND s.query NOT LIKE '%pg_current_wal_lsn%'
          AND s.query NOT LIKE '%pgboss%'
        ORDER BY s.calls DESC`,
    );
    return {
      nodeCpuUs: node.user + node.system,
      pgCpuUs,
      statements: rows.reduce((n, r) => n + Number(r.calls), 0),
      walBytes: Number(wal[0]!.bytes),
      top: rows.slice(0, 8).map((r) => `${r.calls}x ${r.query.replace(/\s+/g, ' ').slice(0, 110)}`),
    };
  }
}

export function body(seq: number, t: number): string {
  const head = `${seq}:${t.toFixed(3)}:`;
  return head + 'x'.repeat(BODY_BYTES - head.length);
}

export function quantile(sorted: number[], q: number): number {
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
  push = false,
  probe?: DbProbe,
  costs?: DbCost[],
  transport: 'binary' | 'http' = 'binary',
): Promise<RunResult> {
  const admin = new BrokerClient({ servers: url, token });
  await admin.call('POST', '/api/v1/mq/topics', { name: topic, queues: 8 });
  const seen = new Set<number>();
  const latencies: number[] = [];
  const consumer = new Consumer({
    servers: url,
    token,
    group: `${topic}-g`,
    topic,
    concurrency: 1000,
    push,
    // The push row is the broker-run NDJSON stream: a push consumer on the binary path is
    // a long poll with prefetch, which the long-poll row measures.
    transport: push ? 'http' : transport,
    startFrom: 'earliest',
    handler: (m) => record(m.text(), seen, latencies),
  }).start();
  const producer = new Producer({ servers: url, token, transport });
  await new Promise((r) => setTimeout(r, 300));
  await probe?.start();
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
  if (probe !== undefined) {
    // Acks and trace rows are written in batches a few ms behind the last delivery.
    await new Promise((r) => setTimeout(r, 300));
    const cost = await probe.stop();
    costs?.push({
      statementsPerMsg: cost.statements / count,
      walBytesPerMsg: cost.walBytes / count,
      nodeCpuUsPerMsg: cost.nodeCpuUs / count,
      pgCpuUsPerMsg: cost.pgCpuUs / count,
    });
  }
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

/** A private redis-server for the BullMQ peer, or why there is none. */
export interface RedisProcess {
  port: number;
  pid: number | undefined;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** A peer's server process started by {@link startDaemon}. */
interface Daemon {
  pid: number | undefined;
  /** SIGTERM (SIGKILL after 5 s), then its temp dir removed. */
  stop(): Promise<void>;
}

/**
 * Starts a peer's server (`bin args`) and waits up to 10 s for `ready` in its output (stdout
 * or stderr); `dir` is its temp dir, removed when it is stopped.
 */
async function startDaemon(
  bin: string,
  args: string[],
  ready: string,
  dir: string,
): Promise<Daemon> {
  const child: ChildProcess = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const name = path.basename(bin);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start in 10 s`)), 10_000);
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes(ready)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code}: ${out.slice(-500)}`));
    });
  });
  child.stdout?.removeAllListeners('data').resume();
  child.stderr?.removeAllListeners('data').resume();
  return {
    pid: child.pid,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts `redis-server` on a free loopback port in a temp dir: AOF on with
 * `appendfsync everysec` (Redis's usual durable setting: at most ~1 s of acknowledged
 * writes lost on a crash), no RDB snapshots. Undefined when redis-server is not on PATH.
 */
export async function startRedis(): Promise<RedisProcess | undefined> {
  if (spawnSync('redis-server', ['--version']).status !== 0) return undefined;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'peak-bench-redis-'));
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', ''];
  const daemon = await startDaemon(
    'redis-server',
    [...args, '--appendonly', 'yes', '--appendfsync', 'everysec'],
    'Ready to accept connections',
    dir,
  );
  return { port, ...daemon };
}

async function runBullMq(port: number, name: string, count: number): Promise<RunResult> {
  const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
  const queue = new BullQueue(name, { connection });
  const seen = new Set<number>();
  const latencies: number[] = [];
  const worker = new BullWorker<{ b: string }>(
    name,
    async (job) => record(job.data.b, seen, latencies),
    { connection, concurrency: 100, removeOnComplete: { count: 0 }, removeOnFail: { count: 0 } },
  );
  await worker.waitUntilReady();
  await queue.waitUntilReady();
  await new Promise((r) => setTimeout(r, 300));
  const start = now();
  const sendMs = await produceAll(count, async (bodies) => {
    await queue.addBulk(
      bodies.map((b) => ({ name: 'm', data: { b }, opts: { removeOnComplete: true } })),
    );
  });
  await waitAll(seen, count, 120_000);
  const e2eMs = now() - start;
  await worker.close();
  await queue.obliterate({ force: true }).catch(() => undefined);
  await queue.close();
  latencies.sort((a, b) => a - b);
  return {
    sendPerSec: (count / sendMs) * 1000,
    e2ePerSec: (count / e2eMs) * 1000,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
  };
}

/** A private nats-server with JetStream (file storage) for the dedicated-broker peer. */
export interface NatsProcess {
  port: number;
  pid: number | undefined;
  version: string;
  stop(): Promise<void>;
}

/**
 * Starts `nats-server -js` on a free loopback port, its store in a temp dir (file storage:
 * each acked publish is written to the OS before its ack and synced to disk on the server's
 * own schedule, not per publish). Installed from Debian when missing; undefined when it
 * cannot be.
 */
export async function startNats(progress: (m: string) => void): Promise<NatsProcess | undefined> {
  const bin = debianTool('nats-server', 'nats-server', progress);
  if (bin === undefined) return undefined;
  const version = spawnSync(bin, ['--version']).stdout.toString().trim();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'peak-bench-nats-'));
  const port = await freePort();
  const daemon = await startDaemon(
    bin,
    ['-js', '-sd', dir, '-a', '127.0.0.1', '-p', String(port), '--http_port', '0'],
    'Server is ready',
    dir,
  );
  return { port, version, ...daemon };
}

/**
 * JetStream as the dedicated broker: a file-storage stream, acked publishes (each batch's
 * 100 in flight at once, awaited like the other systems' batch sends), a durable pull
 * consumer with explicit acks taking up to 1 000 at a time; its own connections for the
 * producers and the consumer.
 */
async function runJetStream(nats: NatsProcess, name: string, count: number): Promise<RunResult> {
  const servers = `127.0.0.1:${nats.port}`;
  const pub = await natsConnect({ servers });
  const sub = await natsConnect({ servers });
  const stream = name.replace(/[^A-Za-z0-9_-]/g, '_');
  const subject = `bench.${stream}`;
  try {
    const jsm = await pub.jetstreamManager();
    await jsm.streams.add({ name: stream, subjects: [subject], storage: StorageType.File });
    await jsm.consumers.add(stream, {
      durable_name: 'bench',
      ack_policy: AckPolicy.Explicit,
      max_ack_pending: 10_000,
    });
    const consumer = await sub.jetstream().consumers.get(stream, 'bench');
    const messages = await consumer.consume({ max_messages: 1000 });
    const seen = new Set<number>();
    const latencies: number[] = [];
    const consuming = (async () => {
      for await (const m of messages) {
        record(m.string(), seen, latencies);
        m.ack();
      }
    })();
    const js = pub.jetstream();
    const encoder = new TextEncoder();
    const cpu = process.cpuUsage();
    const serverCpu = processCpuUs(nats.pid);
    const start = now();
    const sendMs = await produceAll(count, async (bodies) => {
      await Promise.all(bodies.map((b) => js.publish(subject, encoder.encode(b))));
    });
    await waitAll(seen, count, 120_000);
    const e2eMs = now() - start;
    const used = process.cpuUsage(cpu);
    const serverUs = processCpuUs(nats.pid) - serverCpu;
    await messages.close();
    await consuming;
    await jsm.streams.delete(stream);
    latencies.sort((a, b) => a - b);
    return {
      sendPerSec: (count / sendMs) * 1000,
      e2ePerSec: (count / e2eMs) * 1000,
      p50: quantile(latencies, 0.5),
      p99: quantile(latencies, 0.99),
      nodeCpuUsPerMsg: (used.user + used.system) / count,
      serverCpuUsPerMsg: serverUs / count,
    };
  } finally {
    await pub.close();
    await sub.close();
  }
}

interface DelayedResult {
  p50: number;
  p99: number;
  max: number;
  /** Lateness of the move into the queue (stored time minus due time). */
  storedP50: number;
  storedP99: number;
  storedMax: number;
  early: number;
}

/**
 * Delayed-delivery lateness: `count` messages all due at the same moment (after the
 * sends finish); lateness = consume time minus due time. One run.
 */
async function runDelayed(url: string, token: string, count: number): Promise<DelayedResult> {
  const topic = 'bench-delayed';
  const admin = new BrokerClient({ servers: url, token });
  await admin.call('POST', '/api/v1/mq/topics', { name: topic, queues: 8 });
  const producer = new Producer({ servers: url, token });
  // Leave time to send everything before they fall due (3-10k/s here).
  const due = Date.now() + 3000 + count / 3;
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
  const stored: number[] = [];
  const consumer = new Consumer({
    servers: url,
    token,
    group: `${topic}-g`,
    topic,
    concurrency: 1000,
    handler: (m) => {
      lateness.push(Date.now() - due);
      stored.push(m.storedAt - due);
    },
  }).start();
  const end = Date.now() + 180_000;
  while (lateness.length < count && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  await consumer.close();
  await producer.close();
  if (lateness.length < count)
    throw new Error(`only ${lateness.length} of ${count} delayed messages arrived`);
  lateness.sort((a, b) => a - b);
  stored.sort((a, b) => a - b);
  return {
    p50: quantile(lateness, 0.5),
    p99: quantile(lateness, 0.99),
    max: lateness[lateness.length - 1]!,
    storedP50: quantile(stored, 0.5),
    storedP99: quantile(stored, 0.99),
    storedMax: stored[stored.length - 1]!,
    // storedAt is the database clock, the due time this process's: both are this machine's.
    early: lateness.filter((l) => l < 0).length,
  };
}

/**
 * Idle cost: one long-poll consumer on an empty topic (and the broker's own upkeep: the
 * delayed-message relay, half-message checks, heartbeats) for `seconds`; statements/s of
 * the whole server, of the MQ (statements naming `peak.mq_`), and the top statements.
 */
async function runIdle(
  url: string,
  token: string,
  probe: DbProbe,
  pool: pg.Pool,
  seconds: number,
): Promise<{ total: number; mq: number; top: string[] }> {
  const topic = 'bench-idle';
  const admin = new BrokerClient({ servers: url, token });
  await admin.call('POST', '/api/v1/mq/topics', { name: topic, queues: 8 });
  const consumer = new Consumer({
    servers: url,
    token,
    group: `${topic}-g`,
    topic,
    handler: () => undefined,
  }).start();
  await new Promise((r) => setTimeout(r, 2000));
  await probe.start();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const cost = await probe.stop();
  const { rows } = await pool.query<{ calls: string }>(
    `SELECT coalesce(sum(calls), 0)::text AS calls FROM pg_stat_statements WHERE query LIKE '%peak.mq_%'`,
  );
  await consumer.close();
  return { total: cost.statements / seconds, mq: Number(rows[0]!.calls) / seconds, top: cost.top };
}

/** `npm run bench -- mq`. */
export const benchmark: Benchmark = {
  name: 'mq',
  description:
    'MQ produce/consume throughput and end-to-end latency, 256-byte messages: Peakware MQ vs pg-boss on the same PostgreSQL, BullMQ on redis-server and NATS JetStream; delayed-delivery lateness',
  async run(options) {
    const count = options.quick ? 3000 : 20_000;
    // pg_stat_statements needs shared_preload_libraries: set in the data folder first.
    const { dataDir, password } = await dataDirWithStatements('peak-bench-mq-');
    const server = await PeakServer.start({ dataDir, port: 0 });
    const info = server.info.postgres;
    if (info.mode !== 'embedded') throw new Error('expected the embedded PostgreSQL');
    // The token is shown by the first start only; later starts read it from the data folder.
    const token = (await readFile(server.info.adminTokenFile, 'utf8')).trim();
    const statsPool = new pg.Pool({
      host: info.host,
      port: info.port,
      user: 'peak',
      password,
      database: 'postgres',
      max: 1,
    });
    await statsPool.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    const probe = new DbProbe(statsPool);
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
    const redis = await startRedis();
    if (redis === undefined)
      options.progress('redis-server is not on PATH: running without the BullMQ peer');
    const nats = await startNats(options.progress).catch((err: unknown) => {
      options.progress(`nats-server did not start (${String(err)}): running without JetStream`);
      return undefined;
    });
    if (nats === undefined)
      options.progress('nats-server is not installed and could not be: running without JetStream');
    const peak: RunResult[] = [];
    const peakPush: RunResult[] = [];
    const peakHttp: RunResult[] = [];
    const pgb: RunResult[] = [];
    const bull: RunResult[] = [];
    const jet: RunResult[] = [];
    const delayedCount = options.quick ? 10_000 : 100_000;
    let delayed: DelayedResult | undefined;
    const costs: DbCost[] = [];
    let idle: { total: number; mq: number; top: string[] } | undefined;
    try {
      for (let run = 0; run < options.runs; run++) {
        options.progress(`run ${run + 1}/${options.runs}: peakware, ${count} messages`);
        peak.push(
          await runPeakware(server.info.url, token, `bench-${run}`, count, false, probe, costs),
        );
        options.progress(`run ${run + 1}/${options.runs}: peakware push, ${count} messages`);
        peakPush.push(await runPeakware(server.info.url, token, `bench-push-${run}`, count, true));
        options.progress(`run ${run + 1}/${options.runs}: peakware over HTTP, ${count} messages`);
        peakHttp.push(
          await runPeakware(
            server.info.url,
            token,
            `bench-http-${run}`,
            count,
            false,
            undefined,
            undefined,
            'http',
          ),
        );
        options.progress(`run ${run + 1}/${options.runs}: pg-boss, ${count} messages`);
        pgb.push(await runPgBoss(boss, `bench-${run}`, count));
        if (redis !== undefined) {
          options.progress(`run ${run + 1}/${options.runs}: bullmq, ${count} messages`);
          bull.push(await runBullMq(redis.port, `bench-${run}`, count));
        }
        if (nats !== undefined) {
          options.progress(`run ${run + 1}/${options.runs}: jetstream, ${count} messages`);
          jet.push(await runJetStream(nats, `bench-${run}`, count));
        }
      }
      options.progress(`delayed: ${delayedCount} messages due in the same instant`);
      delayed = await runDelayed(server.info.url, token, delayedCount);
      options.progress('idle: one long-poll consumer on an empty topic, 10 s');
      idle = await runIdle(server.info.url, token, probe, statsPool, 10);
    } finally {
      await statsPool.end();
      await boss.stop({ graceful: false, wait: true }).catch(() => undefined);
      await server.stop();
      await redis?.stop();
      await nats?.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
    const m = (list: RunResult[], k: 'sendPerSec' | 'e2ePerSec' | 'p50' | 'p99') =>
      median(list.map((r) => r[k]));
    const systems = [
      ['peakware', 'peakware mq (long poll)', peak],
      ['peakwarePush', 'peakware mq (push stream, HTTP)', peakPush],
      ['peakwareHttp', 'peakware mq (long poll, all HTTP)', peakHttp],
      ['pgboss', 'pg-boss 10', pgb],
      ...(bull.length > 0 ? [['bullmq', 'bullmq 6 (redis)', bull] as const] : []),
      ...(jet.length > 0 ? [['jetstream', 'nats jetstream (file)', jet] as const] : []),
    ] as const;
    const figures: Record<string, number> = {};
    for (const [name, , list] of systems) {
      for (const k of ['sendPerSec', 'e2ePerSec', 'p50', 'p99'] as const)
        figures[`${name}.${k}`] = round(m(list, k));
    }
    figures['peakware.delayedLatenessP50'] = round(delayed.p50);
    figures['peakware.delayedLatenessP99'] = round(delayed.p99);
    figures['peakware.delayedLatenessMax'] = round(delayed.max);
    figures['peakware.delayedStoredLatenessP50'] = round(delayed.storedP50);
    figures['peakware.delayedStoredLatenessP99'] = round(delayed.storedP99);
    figures['peakware.delayedStoredLatenessMax'] = round(delayed.storedMax);
    figures['peakware.delayedEarly'] = delayed.early;
    figures['peakware.statementsPerMsg'] = round(median(costs.map((c) => c.statementsPerMsg)));
    figures['peakware.walBytesPerMsg'] = round(median(costs.map((c) => c.walBytesPerMsg)));
    figures['peakware.nodeCpuUsPerMsg'] = round(median(costs.map((c) => c.nodeCpuUsPerMsg)));
    figures['peakware.pgCpuUsPerMsg'] = round(median(costs.map((c) => c.pgCpuUsPerMsg)));
    if (jet.length > 0) {
      figures['jetstream.nodeCpuUsPerMsg'] = round(median(jet.map((r) => r.nodeCpuUsPerMsg!)));
      figures['jetstream.serverCpuUsPerMsg'] = round(median(jet.map((r) => r.serverCpuUsPerMsg!)));
    }
    figures['idle.statementsPerSec'] = round(idle.total);
    figures['idle.mqStatementsPerSec'] = round(idle.mq);
    const ratios: Record<string, number> = {};
    ratios['peakware/peakwareHttp.sendPerSec'] = round(
      m(peak, 'sendPerSec') / m(peakHttp, 'sendPerSec'),
    );
    ratios['peakware/peakwareHttp.e2ePerSec'] = round(
      m(peak, 'e2ePerSec') / m(peakHttp, 'e2ePerSec'),
    );
    for (const [name, , list] of systems.slice(3)) {
      ratios[`peakware/${name}.sendPerSec`] = round(m(peak, 'sendPerSec') / m(list, 'sendPerSec'));
      ratios[`peakware/${name}.e2ePerSec`] = round(m(peak, 'e2ePerSec') / m(list, 'e2ePerSec'));
      ratios[`${name}/peakware.p99`] = round(m(list, 'p99') / m(peak, 'p99'));
    }
    return {
      figures,
      ratios,
      table: [
        ['system', 'send/s', 'end-to-end/s', 'e2e p50 ms', 'e2e p99 ms'],
        ...systems.map(([, label, list]) => [
          label,
          round(m(list, 'sendPerSec')),
          round(m(list, 'e2ePerSec')),
          round(m(list, 'p50')),
          round(m(list, 'p99')),
        ]),
      ],
      notes: [
        `${count} messages of ${BODY_BYTES} bytes per run, ${SENDERS} senders x batches of ${BATCH}; medians of ${options.runs} runs`,
        'one process: broker, PostgreSQL clients, producers and consumers share the 2 cores; PostgreSQL is the embedded one',
        'pg-boss polls every 0.5 s (its minimum) with 4 workers of batch 100; Peakware consumers long-poll (ratios) or take a push stream (its own row), in-flight limit 1000',
        "Peakware's producer and long-poll consumer send, receive and ack over the broker's binary data path (RPC framing, one connection each); the 'all HTTP' row is the same run with transport 'http' (an HTTP request per call, as before 2026-12-06); the push row is the HTTP push stream (a push consumer on the binary path long-polls with prefetch: the long-poll row)",
        redis === undefined
          ? 'bullmq: not run (redis-server is not on PATH)'
          : 'bullmq: its own redis-server (AOF, appendfsync everysec: up to ~1 s of acked sends can be lost on a crash, where Peakware and pg-boss commit each batch to disk), addBulk batches of 100, one Worker of concurrency 100',
        nats === undefined
          ? 'jetstream: not run (nats-server is not installed and could not be)'
          : `jetstream: ${nats.version} in its own process, a file-storage stream (written to the OS before each ack, synced to disk on the server's schedule, not per publish), acked publishes (a batch's 100 at once), a durable pull consumer with explicit acks; CPU per message ${round(median(jet.map((r) => r.serverCpuUsPerMsg!)))} µs in nats-server and ${round(median(jet.map((r) => r.nodeCpuUsPerMsg!)))} µs in this Node process (producers and consumer)`,
        `PostgreSQL per message (long poll, produce to ack, every backend): ${round(median(costs.map((c) => c.statementsPerMsg)))} statements, ${round(median(costs.map((c) => c.walBytesPerMsg)))} WAL bytes; CPU ${round(median(costs.map((c) => c.nodeCpuUsPerMsg)))} µs in this Node process (broker, producers and consumers), ${round(median(costs.map((c) => c.pgCpuUsPerMsg)))} µs in PostgreSQL (every process of the instance, /proc, 10 ms ticks) (medians of ${costs.length} runs)`,
        `idle (one long-poll consumer, empty topic): ${round(idle.total)} statements/s, of which MQ ${round(idle.mq)}/s; top: ${idle.top.join(' | ')}`,
        `delayed: ${delayedCount} messages due at one instant; consumed lateness p50 ${round(delayed.p50)} ms, p99 ${round(delayed.p99)} ms, max ${round(delayed.max)} ms; moved into the queue (stored - due) p50 ${round(delayed.storedP50)} ms, p99 ${round(delayed.storedP99)} ms, max ${round(delayed.storedMax)} ms; early: ${delayed.early}`,
      ],
    };
  },
};
