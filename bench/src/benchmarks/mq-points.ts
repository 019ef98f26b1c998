/**
 * The shop's points path at a fixed rate, piece by piece: what each "order placed" event
 * costs in CPU, statements and WAL on its way from an order shard's outbox to the points
 * consumer (issues 12 and 13). Shaped like `examples/shop`: two order shards (databases
 * `shard0`, `shard1` of the broker's embedded PostgreSQL, as the shop's ds0 shares
 * PostgreSQL #1), each order row written with its outbox row in one statement
 * (`Outbox.sendWith`), small JSON bodies with a tag and two keys, a topic of 4 queues, a
 * relay per shard (`idleMs` 200, as the shop's `kickMs`), one consumer group with the
 * points service's settings (concurrency 64, `lingerMs` 50, `batchSize` 64, one unnest
 * INSERT per batch into `points.points`).
 *
 * Each side runs in its own process so its CPU can be read apart: this process holds the
 * broker (`PeakServer`), children the order writer, the two relays and the consumer. After
 * a warm-up, one measured window: CPU µs per consumed message of the broker, the relays,
 * the consumer, the writer, and PostgreSQL (per backend from /proc, attributed to the
 * database it serves through pg_stat_activity; what no backend of both snapshots covers,
 * walwriter, checkpointer, new backends, as `pg other`), and pg_stat_statements' calls,
 * WAL bytes and execution time per message, by database and by statement.
 *
 * `npm run bench -- mq-points [--quick]`; `MQP_RATE` (default 1000 messages/s) and
 * `MQP_SECONDS` (default 20, 8 with --quick) change the rate and the window.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { BrokerClient, Consumer, Outbox } from 'peakware/mq';
import { PeakServer } from 'peakware/server';
import pg from 'pg';
import { type Benchmark, median, round } from '../bench.js';
import { processCpuUs } from '../child-server.js';
import { dataDirWithStatements } from '../pg-stat-statements.js';

const TOPIC = 'shop.order-placed';
const GROUP = 'shop.points';
const SHARDS = ['shard0', 'shard1'];

interface Endpoint {
  host: string;
  port: number;
  password: string;
  url: string;
  /** The admin token (topic set-up only). */
  token: string;
  orderToken: string;
  pointsToken: string;
}

function pool(ep: Endpoint, database: string, max = 10): pg.Pool {
  return new pg.Pool({
    host: ep.host,
    port: ep.port,
    user: 'peak',
    password: ep.password,
    database,
    max,
  });
}

/** CPU µs used so far by each process of the PostgreSQL instance under `postmaster`. */
function postgresCpuByPid(postmaster: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(entry) === postmaster || Number(fields[1]) === postmaster)
        out.set(Number(entry), (Number(fields[11]) + Number(fields[12])) * 10_000);
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

interface Snapshot {
  at: number;
  http: Map<string, number>;
  consumed: number;
  /** Messages the broker stored on the topic so far. */
  stored: number;
  broker: number;
  children: Record<string, number>;
  pgByPid: Map<number, number>;
  dbOfPid: Map<number, string>;
}

/** One measured window: per-message figures by piece. */
interface WindowResult {
  messages: number;
  rate: number;
  cpu: Record<string, number>;
  statements: Record<string, number>;
  walBytes: Record<string, number>;
  /** HTTP requests per message, by MQ route. */
  http: Record<string, number>;
  top: string[];
}

function post(session: Session, method: string): Promise<unknown> {
  return new Promise((resolve, reject) =>
    session.post(method, (err, result) => (err === null ? resolve(result) : reject(err))),
  );
}

/** HTTP requests the broker answered so far, by MQ route (from its /metrics page). */
async function httpCounts(ep: Endpoint): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const res = await fetch(`${ep.url}/metrics`, {
    headers: { authorization: `Bearer ${ep.token}` },
  });
  for (const line of (await res.text()).split('\n')) {
    if (!line.startsWith('peak_http_request_duration_seconds_count{')) continue;
    const route = /route="([^"]*)"/.exec(line)?.[1];
    if (route === undefined || !route.includes('/mq/')) continue;
    const short = route.replace('/api/v1/mq/', '');
    out.set(short, (out.get(short) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return out;
}

async function snapshot(
  ep: Endpoint,
  stats: pg.Pool,
  points: pg.Pool,
  postmaster: number,
  children: Record<string, ChildProcess>,
): Promise<Snapshot> {
  const { rows: acts } = await stats.query<{ pid: number; datname: string | null }>(
    'SELECT pid, datname FROM pg_stat_activity',
  );
  const { rows } = await points.query<{ n: string }>('SELECT count(*)::text AS n FROM points');
  const { rows: stored } = await stats.query<{ n: string }>(
    'SELECT coalesce(sum(next_offset), 0)::text AS n FROM peak.mq_queues WHERE topic = $1',
    [TOPIC],
  );
  const http = await httpCounts(ep);
  const cpu = process.cpuUsage();
  return {
    http,
    at: performance.now(),
    consumed: Number(rows[0]!.n),
    stored: Number(stored[0]!.n),
    broker: cpu.user + cpu.system,
    children: Object.fromEntries(
      Object.entries(children).map(([k, c]) => [k, processCpuUs(c.pid)]),
    ),
    pgByPid: postgresCpuByPid(postmaster),
    dbOfPid: new Map(acts.map((a) => [a.pid, a.datname ?? '(background)'])),
  };
}

function spawnRole(role: string, cfg: unknown): ChildProcess {
  return spawn(
    process.execPath,
    [
      // MQP_CHILD_PROF=<dir>: a CPU profile of each child (node --cpu-prof) in that folder.
      ...(process.env.MQP_CHILD_PROF === undefined
        ? []
        : [
            '--cpu-prof',
            `--cpu-prof-dir=${process.env.MQP_CHILD_PROF}`,
            `--cpu-prof-name=${role}.cpuprofile`,
          ]),
      fileURLToPath(import.meta.url),
      `--${role}`,
      JSON.stringify(cfg),
    ],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
}

async function measure(
  ep: Endpoint,
  stats: pg.Pool,
  postmaster: number,
  rate: number,
  seconds: number,
  progress: (m: string) => void,
): Promise<WindowResult> {
  const points = pool(ep, 'points', 2);
  const children: Record<string, ChildProcess> = {
    relays: spawnRole('relay', ep),
    consumer: spawnRole('consumer', ep),
    writer: spawnRole('writer', { ...ep, rate, seconds: seconds + 6 }),
  };
  try {
    await new Promise((r) => setTimeout(r, 4000));
    await stats.query('SELECT pg_stat_statements_reset()');
    const { rows: lsn0 } = await stats.query<{ lsn: string }>(
      'SELECT pg_current_wal_lsn()::text AS lsn',
    );
    const a = await snapshot(ep, stats, points, postmaster, children);
    const profiler = process.env.MQP_PROF === undefined ? undefined : new Session();
    if (profiler !== undefined) {
      profiler.connect();
      await post(profiler, 'Profiler.enable');
      await post(profiler, 'Profiler.start');
    }
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const b = await snapshot(ep, stats, points, postmaster, children);
    if (profiler !== undefined) {
      const { profile } = (await post(profiler, 'Profiler.stop')) as { profile: unknown };
      await writeFile(process.env.MQP_PROF!, JSON.stringify(profile));
      profiler.disconnect();
    }
    const { rows: wal } = await stats.query<{ bytes: string }>(
      'SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::text AS bytes',
      [lsn0[0]!.lsn],
    );
    const { rows: st } = await stats.query<{
      datname: string;
      calls: string;
      wal: string;
      ms: number;
      query: string;
    }>(
      `SELECT d.datname, s.calls::text AS calls, s.wal_bytes::text AS wal,
              s.total_exec_time AS ms, s.query
         FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
        WHERE s.query NOT LIKE '%pg_stat%' AND s.query NOT LIKE '%pg_current_wal_lsn%'
          AND s.query NOT LIKE '%count(*)::text AS n FROM points%'
        ORDER BY s.calls DESC`,
    );
    // Per message: over what went through, the mean of stored and consumed (the same when
    // the consumer keeps up; a backlog that grows or shrinks moves them apart).
    const consumed = b.consumed - a.consumed;
    const storedN = b.stored - a.stored;
    const n = (consumed + storedN) / 2;
    progress(`window: ${storedN} messages stored, ${consumed} consumed in ${seconds} s`);
    const cpu: Record<string, number> = { broker: (b.broker - a.broker) / n };
    for (const k of Object.keys(children)) cpu[k] = (b.children[k]! - a.children[k]!) / n;
    let pgOther = 0;
    for (const [pid, us] of b.pgByPid) {
      const before = a.pgByPid.get(pid);
      const db = a.dbOfPid.get(pid) ?? b.dbOfPid.get(pid);
      // A backend started during the window (a pool reconnecting) counts whole.
      const delta = us - (before ?? 0);
      if (db === undefined || db === '(background)') pgOther += delta;
      else {
        const key = `pg ${db === 'postgres' ? 'broker db' : db}`;
        cpu[key] = (cpu[key] ?? 0) + delta / n;
      }
    }
    cpu['pg other'] = pgOther / n;
    const statements: Record<string, number> = {};
    const walBytes: Record<string, number> = { 'all (lsn)': Number(wal[0]!.bytes) / n };
    for (const s of st) {
      const key = s.datname === 'postgres' ? 'broker db' : s.datname;
      statements[key] = (statements[key] ?? 0) + Number(s.calls) / n;
      walBytes[key] = (walBytes[key] ?? 0) + Number(s.wal) / n;
    }
    const top = st
      .filter((s) => s.datname === 'postgres')
      .slice(0, 14)
      .map(
        (s) =>
          `${round(Number(s.calls) / n, 3)}/msg ${round(Number(s.wal) / n, 3)} WAL B/msg ${round((s.ms * 1000) / n, 3)} µs/msg: ${s.query.replace(/\s+/g, ' ').slice(0, 120)}`,
      );
    const http: Record<string, number> = {};
    for (const [route, count] of b.http) http[route] = (count - (a.http.get(route) ?? 0)) / n;
    return {
      messages: n,
      rate: (n / (b.at - a.at)) * 1000,
      cpu,
      statements,
      walBytes,
      http,
      top,
    };
  } finally {
    for (const c of Object.values(children)) c.kill('SIGTERM');
    await Promise.all(
      Object.values(children).map(
        (c) => new Promise((r) => (c.exitCode !== null ? r(undefined) : c.once('exit', r))),
      ),
    );
    await points.end();
  }
}

/** `npm run bench -- mq-points`. */
export const benchmark: Benchmark = {
  name: 'mq-points',
  description:
    "The shop's points path at a fixed rate (outbox relays → broker → consumer): CPU µs, statements and WAL bytes per message by piece",
  async run(options) {
    const rate = Number(process.env.MQP_RATE ?? 1000);
    const seconds = Number(process.env.MQP_SECONDS ?? (options.quick ? 8 : 20));
    const runs = options.quick ? 1 : Math.max(1, Math.min(options.runs, 3));
    // pg_stat_statements needs shared_preload_libraries: set in the data folder first.
    const { dataDir, password } = await dataDirWithStatements('peak-bench-mqp-');
    // Services call with app credentials, as the shop's do (an operator token's calls are
    // audited, one console_audit row each).
    const server = await PeakServer.start({
      dataDir,
      port: 0,
      localApps: {
        'bench.order': [`produce:${TOPIC}`],
        'bench.points': [`consume:${TOPIC}/${GROUP}`],
      },
    });
    const info = server.info.postgres;
    if (info.mode !== 'embedded') throw new Error('expected the embedded PostgreSQL');
    const ep: Endpoint = {
      host: info.host,
      port: info.port,
      password,
      url: server.info.url,
      token: (await readFile(server.info.adminTokenFile, 'utf8')).trim(),
      orderToken: (await readFile(server.info.appCredentialFiles['bench.order']!, 'utf8')).trim(),
      pointsToken: (await readFile(server.info.appCredentialFiles['bench.points']!, 'utf8')).trim(),
    };
    const stats = pool(ep, 'postgres', 1);
    try {
      await stats.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
      for (const db of [...SHARDS, 'points']) await stats.query(`CREATE DATABASE ${db}`);
      for (const db of SHARDS) {
        const p = pool(ep, db, 1);
        await Outbox.install(p);
        await p.query(
          'CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint NOT NULL, sku text NOT NULL, qty int NOT NULL)',
        );
        await p.end();
      }
      const pp = pool(ep, 'points', 1);
      await pp.query(
        'CREATE TABLE points (order_id bigint PRIMARY KEY, user_id bigint NOT NULL, sku text NOT NULL, points int NOT NULL)',
      );
      await pp.end();
      await new BrokerClient({ servers: ep.url, token: ep.token }).call(
        'POST',
        '/api/v1/mq/topics',
        { name: TOPIC, queues: 4 },
      );
      const { rows } = await stats.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      const stat = readFileSync(`/proc/${rows[0]!.pid}/stat`, 'utf8');
      const postmaster = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      // What the control plane and PostgreSQL use with no traffic (other modules' upkeep).
      const idle0 = process.cpuUsage();
      const idlePg0 = [...postgresCpuByPid(postmaster).values()].reduce((x, y) => x + y, 0);
      await new Promise((r) => setTimeout(r, 5000));
      const idle1 = process.cpuUsage(idle0);
      const idlePg =
        [...postgresCpuByPid(postmaster).values()].reduce((x, y) => x + y, 0) - idlePg0;
      const results: WindowResult[] = [];
      for (let i = 0; i < runs; i++) {
        options.progress(`run ${i + 1}/${runs}: ${rate}/s for ${seconds} s`);
        results.push(await measure(ep, stats, postmaster, rate, seconds, options.progress));
      }
      const figures: Record<string, number> = {};
      const keys = (pick: (r: WindowResult) => Record<string, number>) => [
        ...new Set(results.flatMap((r) => Object.keys(pick(r)))),
      ];
      const table: (string | number)[][] = [
        ['per message', 'median', ...results.map((_, i) => `run ${i + 1}`)],
      ];
      const row = (label: string, values: number[]) => {
        figures[label] = round(median(values));
        table.push([label, round(median(values)), ...values.map((v) => round(v))]);
      };
      figures['idle broker µs/s'] = round((idle1.user + idle1.system) / 5);
      figures['idle pg µs/s'] = round(idlePg / 5);
      row(
        'consumed/s',
        results.map((r) => r.rate),
      );
      for (const k of keys((r) => r.cpu))
        row(
          `cpu µs ${k}`,
          results.map((r) => r.cpu[k] ?? 0),
        );
      row(
        'cpu µs node (broker+relays+consumer)',
        results.map((r) => r.cpu.broker! + r.cpu.relays! + r.cpu.consumer!),
      );
      row(
        'cpu µs pg (all)',
        results.map((r) =>
          Object.entries(r.cpu)
            .filter(([k]) => k.startsWith('pg '))
            .reduce((s, [, v]) => s + v, 0),
        ),
      );
      for (const k of keys((r) => r.statements))
        row(
          `statements ${k}`,
          results.map((r) => r.statements[k] ?? 0),
        );
      for (const k of keys((r) => r.walBytes))
        row(
          `WAL bytes ${k}`,
          results.map((r) => r.walBytes[k] ?? 0),
        );
      for (const k of keys((r) => r.http))
        row(
          `http requests ${k}`,
          results.map((r) => r.http[k] ?? 0),
        );
      return {
        figures,
        ratios: {},
        table,
        notes: [
          `idle (5 s, no traffic): broker ${figures['idle broker µs/s']} µs/s, PostgreSQL ${figures['idle pg µs/s']} µs/s`,
          `rate ${rate}/s, window ${seconds} s, load average ${os
            .loadavg()
            .map((l) => l.toFixed(1))
            .join(' ')}`,
          'broker-db statements, last run:',
          ...results.at(-1)!.top,
        ],
      };
    } finally {
      await stats.end();
      await server.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  },
};

// Children: `mq-points.js --writer|--relay|--consumer <endpoint JSON>`.
const role = process.argv[2];
if (role === '--writer' || role === '--relay' || role === '--consumer') {
  const cfg = JSON.parse(process.argv[3]!) as Endpoint & { rate?: number; seconds?: number };
  const stop: (() => Promise<void>)[] = [];
  process.once('SIGTERM', () => {
    void Promise.all(stop.map((s) => s().catch(() => undefined))).then(() => process.exit(0));
  });
  if (role === '--relay') {
    for (const db of SHARDS) {
      const p = pool(cfg, db, 2);
      const o = new Outbox({
        pool: p,
        servers: cfg.url,
        token: cfg.orderToken,
        name: db,
        idleMs: 200,
      }).start();
      stop.push(async () => {
        await o.close();
        await p.end();
      });
    }
  } else if (role === '--consumer') {
    const p = pool(cfg, 'points', 4);
    const consumer = new Consumer({
      servers: cfg.url,
      token: cfg.pointsToken,
      group: GROUP,
      topic: TOPIC,
      concurrency: 64,
      waitMs: 2000,
      lingerMs: 50,
      batchSize: 64,
      batchHandler: async (messages) => {
        const events = messages.map((m) =>
          m.json<{ orderId: string; userId: number; sku: string; qty: number }>(),
        );
        await p.query(
          `INSERT INTO points (order_id, user_id, sku, points)
           SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::int[])
           ON CONFLICT DO NOTHING`,
          [
            events.map((e) => e.orderId),
            events.map((e) => e.userId),
            events.map((e) => e.sku),
            events.map((e) => 10 * e.qty),
          ],
        );
      },
    }).start();
    stop.push(async () => {
      await consumer.close();
      await p.end();
    });
  } else {
    const pools = SHARDS.map((db) => pool(cfg, db, 8));
    const outboxes = pools.map(
      (p, i) => new Outbox({ pool: p, servers: cfg.url, token: cfg.orderToken, name: SHARDS[i]! }),
    );
    stop.push(async () => {
      await Promise.all(pools.map((p) => p.end()));
    });
    const rate = cfg.rate ?? 1000;
    const until = Date.now() + (cfg.seconds ?? 20) * 1000;
    const t0 = Date.now();
    let sent = 0;
    let id = BigInt(Date.now()) * 1000n;
    while (Date.now() < until) {
      const due = Math.floor(((Date.now() - t0) * rate) / 1000);
      const sends: Promise<unknown>[] = [];
      while (sent < due) {
        sent++;
        const orderId = (id++).toString();
        const userId = 1 + (sent % 5000);
        const shard = userId % 2;
        sends.push(
          outboxes[shard]!.sendWith(
            pools[shard]!,
            'INSERT INTO orders (id, user_id, sku, qty) VALUES ($1, $2, $3, $4)',
            [orderId, userId, 'sku-1', 1],
            TOPIC,
            {
              body: JSON.stringify({ orderId, userId, sku: 'sku-1', qty: 1 }),
              tag: 'placed',
              // MQP_NO_KEYS=1: no keys (what the keys' GIN index costs).
              ...(process.env.MQP_NO_KEYS === '1' ? {} : { keys: [orderId, String(userId)] }),
            },
          ),
        );
      }
      await Promise.all(sends);
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}
