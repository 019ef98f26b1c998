/**
 * Hot-stock peak shaving: one SKU, 2 000 buyers in flight, each buying one unit after
 * another under a new order id, on one real PostgreSQL (a `peak server`'s embedded one, or
 * PEAK_BENCH_POSTGRES_URL) and one private redis-server. Three ways to take the units off
 * (the first also with its calls traced), in one run, the order rotating from run to run:
 *
 * - **Redis engine** (`RedisStockEngine`): a Lua deduction (stock check, idempotency by
 *   order id, stream record) per order, redis-server with `durability: 'always'` (AOF,
 *   fsync before each reply batch: what the engine's docs ask for so an acknowledged
 *   deduction survives kill -9), a `StockWriter` in this process draining the stream into
 *   PostgreSQL during the sale. Deductions/s counts Redis's answers; the time PostgreSQL
 *   needed after the last one to hold every deduction is reported beside it.
 * - **PostgreSQL engine** (`PgStockEngine`): same-SKU deductions queued in the process and
 *   applied as one `deduct_batch` statement per batch (default maxBatch 1 000).
 * - **Plain row update**, what a shop without either runs: per order, its own transaction
 *   `BEGIN; UPDATE stock SET stock = stock - $2 WHERE sku = $1 AND stock >= $2;
 *   INSERT INTO orders (order_id, sku, qty) …; COMMIT` (ROLLBACK when the UPDATE matched
 *   nothing: sold out), on a `stock` table keyed by sku and an `orders` table keyed by
 *   order id (the idempotency row).
 *
 * Each run puts `units` on sale and lets the buyers ask for `units + 2 000` (the last ones
 * meet the sell-out), bounded by that count and by time; one short unmeasured sale per
 * contender warms up first. Every run is checked: units sold
 * never exceed units loaded, the engine's books balance (left + sold = initial, sold = the
 * buyers' successful answers), and for the Redis engine PostgreSQL's books match once the
 * writer has caught up. Any oversold unit fails the benchmark.
 *
 * - **Redis engine, spans on**: the same engine with `collector: cacheSpanCollector(tracer)`
 *   (5 % sampling), its own keys and writer: what tracing the Redis calls costs (CPU µs an
 *   order in this process beside each contender's figures).
 *
 * Every contender has a pg.Pool of 16 connections; PostgreSQL runs with its defaults
 * (synchronous_commit on).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  PgStockEngine,
  RedisStockEngine,
  redisServerAvailable,
  StockWriter,
  startRedisServer,
} from 'peakware/cache';
import { createContext, runWithContext } from 'peakware/core';
import { PeakServer } from 'peakware/server';
import { cacheSpanCollector, Tracer } from 'peakware/telemetry';
import pg from 'pg';
import { type Benchmark, median, round } from '../bench.js';

const BUYERS = 2000;
const POOL = 16;
const SKU = 'flash-1';

interface Sale {
  /** Successful deductions per second over the run. */
  perSec: number;
  /** This process's CPU (user + system) per order asked, µs: the engine, its writer and the buyers. */
  cpuUs: number;
  /** p99 of one deduction's answer, ms. */
  p99: number;
  ok: number;
  refused: number;
  /** The run ended on its time bound before every buyer had asked. */
  timedOut: boolean;
}

/** What a contender must offer: one buyer's deduction and its books after the run. */
interface Contender {
  label: string;
  /** Puts `units` on sale, forgetting the last run. */
  load(units: number): Promise<void>;
  deduct(orderId: string): Promise<boolean>;
  /** Throws when the books do not balance or a unit was oversold; returns notes. */
  check(units: number, ok: number): Promise<string | undefined>;
}

/** `BUYERS` buyers in flight until `attempts` orders or `maxMs`; one unit each; this process's CPU a deduction. */
async function sale(c: Contender, run: number, attempts: number, maxMs: number): Promise<Sale> {
  const lat: number[] = [];
  let issued = 0;
  let ok = 0;
  let refused = 0;
  const start = performance.now();
  const cpu = process.cpuUsage();
  const deadline = start + maxMs;
  const buyer = async () => {
    while (issued < attempts && performance.now() < deadline) {
      const id = `r${run}-${issued++}`;
      const t = performance.now();
      if (await c.deduct(id)) ok++;
      else refused++;
      lat.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: BUYERS }, buyer));
  const used = process.cpuUsage(cpu);
  const secs = (performance.now() - start) / 1000;
  lat.sort((a, b) => a - b);
  return {
    perSec: ok / secs,
    cpuUs: (used.user + used.system) / Math.max(1, ok + refused),
    p99: lat[Math.floor(lat.length * 0.99)] ?? Number.NaN,
    ok,
    refused,
    timedOut: issued < attempts,
  };
}

async function postgresUrl(): Promise<{ url: (db: string) => string; stop: () => Promise<void> }> {
  const external = process.env.PEAK_BENCH_POSTGRES_URL;
  if (external !== undefined && external !== '') {
    return {
      url: (db) => {
        const u = new URL(external);
        u.pathname = `/${db}`;
        return u.toString();
      },
      stop: async () => {},
    };
  }
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-bench-stock-'));
  const server = await PeakServer.start({ dataDir, port: 0 });
  const info = server.info.postgres;
  if (info.mode !== 'embedded') throw new Error('expected the embedded PostgreSQL');
  const password = (await readFile(path.join(dataDir, 'postgres-password'), 'utf8')).trim();
  return {
    url: (db) => `postgres://peak:${encodeURIComponent(password)}@${info.host}:${info.port}/${db}`,
    stop: async () => {
      await server.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

function oversold(label: string, why: string): never {
  throw new Error(`${label}: ${why}`);
}

async function until(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return check();
}

/**
 * A Redis engine as a contender: each buyer's deduction in a call context of its own, as an
 * RPC handler's is (since 2026-12-07, so the spans-on contender differs by the spans alone);
 * its check also waits for the writer and answers how long PostgreSQL took to catch up, ms.
 */
function redisContender(label: string, engine: RedisStockEngine): Contender {
  return {
    label,
    load: (n) => engine.load(SKU, n),
    deduct: async (id) =>
      (await runWithContext(createContext(), () => engine.deduct(SKU, id, 1))).ok,
    async check(n, ok) {
      const books = await engine.books(SKU);
      if (books.sold > n || books.left < 0) oversold(label, `sold ${books.sold} of ${n}`);
      if (books.left + books.sold !== n || books.sold !== ok)
        oversold(label, `books ${JSON.stringify(books)} vs ${ok} sold to buyers`);
      const t = performance.now();
      const caught = await until(async () => {
        const p = await engine.postgresBooks(SKU);
        return p.sold === ok;
      }, 60_000);
      const p = await engine.postgresBooks(SKU);
      if (!caught || p.left + p.sold !== n || p.sold !== ok)
        oversold(label, `PostgreSQL books ${JSON.stringify(p)} vs ${ok} sold`);
      return `${Math.round(performance.now() - t)}`;
    },
  };
}

export const benchmark: Benchmark = {
  name: 'stock',
  description:
    'hot-stock peak shaving, one SKU and 2 000 buyers in flight: deductions/s and CPU an order of the Redis engine (+ its writer to PostgreSQL; also with its deductions traced as spans), the PostgreSQL engine and the plain row update; oversold checked every run',
  async run({ runs, quick, progress }) {
    if (!redisServerAvailable())
      throw new Error('redis-server is not on PATH (apt-get install redis-server)');
    const units = quick ? 15_000 : 60_000;
    const maxMs = quick ? 8_000 : 20_000;
    const pgHost = await postgresUrl();
    const redisServer = await startRedisServer({ durability: 'always' });
    const admin = new pg.Client({ connectionString: pgHost.url('postgres') });
    await admin.connect();
    await admin.query('DROP DATABASE IF EXISTS bench_stock');
    await admin.query('CREATE DATABASE bench_stock');
    await admin.end();
    const pool = new pg.Pool({ connectionString: pgHost.url('bench_stock'), max: POOL });
    const poolRedis = new pg.Pool({ connectionString: pgHost.url('bench_stock'), max: POOL });
    const poolPlain = new pg.Pool({ connectionString: pgHost.url('bench_stock'), max: POOL });
    const redisEngine = new RedisStockEngine({
      redis: redisServer.url,
      pool: poolRedis,
      schema: 'bench_redis',
      name: 'bench',
    });
    const writer = new StockWriter({
      redis: redisServer.url,
      pool: poolRedis,
      schema: 'bench_redis',
      name: 'bench',
    });
    // The same engine with its deductions reported as spans (the shop's inventory runs so),
    // sampled at 5 % as the shop's capacity run samples: what tracing the Redis calls costs.
    const spans = { kept: 0, reported: 0 };
    const tracer = new Tracer({
      service: 'bench.inventory',
      sampleRatio: 0.05,
      sink: {
        add: () => {
          spans.kept++;
        },
      },
    });
    const traceCollector = cacheSpanCollector(tracer);
    const tracedEngine = new RedisStockEngine({
      redis: redisServer.url,
      pool: poolRedis,
      schema: 'bench_redis',
      name: 'bench-traced',
      collector: {
        record(e) {
          spans.reported++;
          traceCollector.record(e);
        },
      },
    });
    const tracedWriter = new StockWriter({
      redis: redisServer.url,
      pool: poolRedis,
      schema: 'bench_redis',
      name: 'bench-traced',
    });
    const pgEngine = new PgStockEngine({ pool, schema: 'bench_pg' });
    const notes: string[] = [];
    try {
      await redisEngine.install();
      await tracedEngine.install();
      await pgEngine.install();
      await poolPlain.query(`
        CREATE TABLE stock (sku text PRIMARY KEY, stock integer NOT NULL CHECK (stock >= 0));
        CREATE TABLE orders (order_id text PRIMARY KEY, sku text NOT NULL, qty integer NOT NULL,
                             created_at timestamptz NOT NULL DEFAULT now());`);
      writer.start();
      tracedWriter.start();

      const redis = redisContender('Redis engine', redisEngine);
      const traced = redisContender('Redis engine, spans on', tracedEngine);
      const pgc: Contender = {
        label: 'PostgreSQL engine',
        load: (n) => pgEngine.load(SKU, n),
        deduct: async (id) => (await pgEngine.deduct(SKU, id, 1)).ok,
        async check(n, ok) {
          const books = await pgEngine.books(SKU);
          if (books.sold > n || books.left < 0) oversold(this.label, `sold ${books.sold} of ${n}`);
          if (books.left + books.sold !== n || books.sold !== ok)
            oversold(this.label, `books ${JSON.stringify(books)} vs ${ok} sold to buyers`);
          return undefined;
        },
      };
      const plain: Contender = {
        label: 'plain row update',
        async load(n) {
          await poolPlain.query('TRUNCATE orders');
          await poolPlain.query(
            'INSERT INTO stock (sku, stock) VALUES ($1, $2) ON CONFLICT (sku) DO UPDATE SET stock = $2',
            [SKU, n],
          );
          await poolPlain.query('VACUUM ANALYZE stock');
        },
        async deduct(id) {
          const client = await poolPlain.connect();
          try {
            await client.query('BEGIN');
            const up = await client.query(
              'UPDATE stock SET stock = stock - $2 WHERE sku = $1 AND stock >= $2',
              [SKU, 1],
            );
            if (up.rowCount !== 1) {
              await client.query('ROLLBACK');
              return false;
            }
            await client.query('INSERT INTO orders (order_id, sku, qty) VALUES ($1, $2, $3)', [
              id,
              SKU,
              1,
            ]);
            await client.query('COMMIT');
            return true;
          } catch (err) {
            await client.query('ROLLBACK').catch(() => undefined);
            throw err;
          } finally {
            client.release();
          }
        },
        async check(n, ok) {
          const { rows } = await poolPlain.query<{ stock: number; sold: string }>(
            'SELECT stock, (SELECT count(*) FROM orders WHERE sku = $1) AS sold FROM stock WHERE sku = $1',
            [SKU],
          );
          const left = rows[0]!.stock;
          const sold = Number(rows[0]!.sold);
          if (sold > n || left < 0) oversold(this.label, `sold ${sold} of ${n}`);
          if (left + sold !== n || sold !== ok)
            oversold(
              this.label,
              `left ${left} + sold ${sold} vs ${n} loaded, ${ok} sold to buyers`,
            );
          return undefined;
        },
      };

      const contenders = [redis, traced, pgc, plain];
      const results = new Map<string, Sale[]>(contenders.map((c) => [c.label, []]));
      const catchUp: number[] = [];
      // Warm-up, not measured: JIT, pools and the scripts' first load.
      for (const c of contenders) {
        progress(`warm-up: ${c.label}`);
        await c.load(BUYERS);
        const s = await sale(c, -1, BUYERS * 2, 2_000);
        await c.check(BUYERS, s.ok);
      }
      for (let run = 0; run < runs; run++) {
        for (let i = 0; i < contenders.length; i++) {
          const c = contenders[(run + i) % contenders.length]!;
          progress(`run ${run + 1}/${runs}: ${c.label}`);
          await c.load(units);
          const s = await sale(c, run, units + BUYERS, maxMs);
          if (s.ok > units) oversold(c.label, `${s.ok} buyers were told yes for ${units} units`);
          if (!s.timedOut && (s.ok !== units || s.refused !== BUYERS))
            oversold(c.label, `${s.ok} sold and ${s.refused} refused of ${units} + ${BUYERS}`);
          const note = await c.check(units, s.ok);
          if (c === redis && note !== undefined) catchUp.push(Number(note));
          results.get(c.label)!.push(s);
          notes.push(
            `run ${run + 1} ${c.label}: ${s.ok} sold, ${s.refused} refused${s.timedOut ? ` (time bound ${maxMs} ms reached first)` : ''}, oversold 0`,
          );
        }
      }

      const figures: Record<string, number> = {};
      const ratios: Record<string, number> = {};
      const table: (string | number)[][] = [
        ['contender', 'deductions/s', 'p99 ms', 'CPU µs/order', 'vs plain row update', 'goal'],
      ];
      const med = (label: string, f: 'perSec' | 'p99' | 'cpuUs') =>
        median(results.get(label)!.map((s) => s[f]));
      const plainRate = med(plain.label, 'perSec');
      for (const [c, key, goal] of [
        [redis, 'redis', '≥ 20 000/s'],
        [traced, 'redisSpans', ''],
        [pgc, 'postgres', '≥ 5 000/s'],
        [plain, 'plainUpdate', ''],
      ] as const) {
        figures[`${key}.deductionsPerSec`] = round(med(c.label, 'perSec'));
        figures[`${key}.p99Ms`] = round(med(c.label, 'p99'));
        figures[`${key}.cpuUsPerOrder`] = round(med(c.label, 'cpuUs'));
        if (c !== plain)
          ratios[`${key}/plainUpdate.deductionsPerSec`] = round(med(c.label, 'perSec') / plainRate);
        table.push([
          c.label,
          round(med(c.label, 'perSec')),
          round(med(c.label, 'p99')),
          round(med(c.label, 'cpuUs')),
          c === plain ? '1' : round(med(c.label, 'perSec') / plainRate),
          goal,
        ]);
      }
      figures['redis.writerCatchUpMs'] = round(median(catchUp));
      ratios['redisSpans/redis.cpuUsPerOrder'] = round(
        med(traced.label, 'cpuUs') / med(redis.label, 'cpuUs'),
      );
      figures['redisSpans.spansReported'] = spans.reported;
      figures['redisSpans.spansKept'] = spans.kept;
      figures.oversold = 0;
      notes.unshift(
        `${units} units on sale per run, ${units + BUYERS} orders asked by ${BUYERS} buyers in flight, time bound ${maxMs} ms; oversold 0 in every run of every contender.`,
        `Redis engine: redis-server durability 'always' (appendfsync always); the StockWriter ran in this process during the sale, and PostgreSQL held every deduction ${round(median(catchUp))} ms (median) after the check began.`,
        `Redis engine, spans on: the same engine (its own keys and writer) with collector cacheSpanCollector(tracer), sampled at 5 %, each deduction in a call context of its own: ${spans.reported} deductions reported, ${spans.kept} kept as spans (sampled, slow or failed); CPU a deduction ${round(med(traced.label, 'cpuUs') / med(redis.label, 'cpuUs'))}× the engine without.`,
      );
      return { figures, ratios, table, notes };
    } finally {
      await writer.close().catch(() => undefined);
      await tracedWriter.close().catch(() => undefined);
      await tracedEngine.close().catch(() => undefined);
      await redisEngine.close().catch(() => undefined);
      await pgEngine.close().catch(() => undefined);
      await Promise.all([pool.end(), poolRedis.end(), poolPlain.end()]).catch(() => undefined);
      await redisServer.stop();
      await pgHost.stop();
    }
  },
};
