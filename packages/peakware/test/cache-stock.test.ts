/**
 * The hot-stock engines against real processes: a PostgreSQL (the peak server's embedded
 * one, a database of its own) and a redis-server with an append-only file. For each
 * engine: 500 buyers in flight on 200 units sell exactly 200 and never more, a repeated
 * order id deducts once, a release gives units back once. For the Redis engine, the stock
 * writer runs in a child process that is killed with SIGKILL mid-sale; a second one takes
 * over its pending records, and reconciliation shows `left + sold = initial` in Redis and
 * in PostgreSQL with nothing oversold. And with redis-server itself killed with SIGKILL
 * mid-sale (AOF written before each reply, with and without an fsync), every acknowledged
 * deduction is there after its restart.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { PgStockEngine } from '../src/cache/pg-stock-engine.js';
import {
  type RedisServerProcess,
  redisServerAvailable,
  startRedisServer,
} from '../src/cache/redis-server-process.js';
import { RedisStockEngine } from '../src/cache/redis-stock-engine.js';
import type { StockEngine } from '../src/cache/stock-shaver.js';
import { StockWriter } from '../src/cache/stock-writer.js';
import { runWithContext } from '../src/core/context.js';
import { isPeakError } from '../src/core/errors.js';
import { PeakServer } from '../src/server/peak-server.js';
import { cacheSpanCollector } from '../src/telemetry/cache-tracing.js';
import type { SpanRecord } from '../src/telemetry/span-types.js';
import { Tracer } from '../src/telemetry/tracer.js';
import { useLocalCredential } from './support/credentials.js';
import { quietAtShutdown } from './support/pg-pool.js';
import { waitFor } from './support/wait.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = path.join(here, 'cache-stock-writer-fixture.js');

let server: PeakServer;
let dataDir: string;
let dbUrl: string;
let pool: pg.Pool;
let redisServer: RedisServerProcess | undefined;
const children: ChildProcess[] = [];

const count = async (sql: string, args: unknown[]) =>
  Number((await pool.query<{ n: string }>(sql, args)).rows[0]!.n);

/** Rows of the deduction log holding units for `sku`. */
const logRows = (schema: string, sku: string) =>
  count(`SELECT count(*) AS n FROM ${schema}.deductions WHERE sku = $1 AND NOT released`, [sku]);

const pgStock = (schema: string, sku: string) =>
  count(`SELECT stock AS n FROM ${schema}.stock WHERE sku = $1`, [sku]);

/** `buyers` concurrent deductions of 1 unit, all in flight at once. */
async function rush(engine: StockEngine, sku: string, buyers: number, prefix: string) {
  const results = await Promise.all(
    Array.from({ length: buyers }, (_, i) => engine.deduct(sku, `${prefix}-${i}`, 1)),
  );
  return results;
}

/** The assertions every engine must pass for 500 buyers on 200 units. */
async function sellsExactly(engine: StockEngine, sku: string) {
  await engine.load(sku, 200);
  const results = await rush(engine, sku, 500, `${sku}-o`);
  const ok = results.filter((r) => r.ok);
  assert.equal(ok.length, 200, 'exactly the units on sale are sold');
  assert.equal(results.filter((r) => !r.ok && r.left === 0).length, 300, 'the rest sold out');
  assert.ok(results.every((r) => r.duplicate !== true));
  // As if one after the other: each sale saw a different figure left, 199 down to 0.
  assert.deepEqual(
    ok.map((r) => r.left).sort((a, b) => a - b),
    Array.from({ length: 200 }, (_, i) => i),
  );
  assert.equal(await engine.stock(sku), 0);
  const books = await engine.books(sku);
  assert.deepEqual(books, { sku, initial: 200, left: 0, sold: 200 });
}

/** A repeated order id deducts once, sequentially and in one burst; release once. */
async function idempotent(engine: StockEngine, sku: string) {
  await engine.load(sku, 10);
  const first = await engine.deduct(sku, 'dup-1', 2);
  assert.deepEqual(first, { ok: true, left: 8 });
  assert.deepEqual(await engine.deduct(sku, 'dup-1', 2), { ok: true, left: 8, duplicate: true });
  const burst = await Promise.all(Array.from({ length: 5 }, () => engine.deduct(sku, 'dup-2', 3)));
  assert.equal(burst.filter((r) => r.duplicate !== true).length, 1, 'one of the burst deducts');
  assert.ok(burst.every((r) => r.ok));
  assert.equal(await engine.stock(sku), 5);

  assert.deepEqual(await engine.release(sku, 'dup-1'), { released: true, left: 7 });
  assert.deepEqual(await engine.release(sku, 'dup-1'), { released: false, left: 7 });
  assert.deepEqual(await engine.release(sku, 'never-deducted'), { released: false, left: 7 });
  // A retry of the released order's deduction does not take the units again.
  assert.deepEqual(await engine.deduct(sku, 'dup-1', 2), { ok: false, left: 7, duplicate: true });
  assert.deepEqual(await engine.books(sku), { sku, initial: 10, left: 7, sold: 3 });

  // A load resets: earlier orders are forgotten.
  await engine.load(sku, 4);
  assert.deepEqual(await engine.deduct(sku, 'dup-1', 2), { ok: true, left: 2 });
}

async function refusesBadInput(engine: StockEngine) {
  const bad = (input: string) => (e: unknown) =>
    isPeakError(e, 'PEAK_INVALID_ARGUMENT') &&
    e.details.input === input &&
    e.message.includes(input);
  await assert.rejects(engine.deduct('', 'o1', 1), bad('sku'));
  await assert.rejects(engine.deduct('sku 1', 'o1', 1), bad('sku'));
  await assert.rejects(engine.deduct('s1', 'o 1', 1), bad('orderId'));
  await assert.rejects(engine.deduct('s1', 'o1', 0), bad('qty'));
  await assert.rejects(engine.deduct('s1', 'o1', 1.5), bad('qty'));
  await assert.rejects(engine.load('s1', -1), bad('units'));
  await assert.rejects(engine.deduct('never-loaded', 'o1', 1), (e) =>
    isPeakError(e, 'PEAK_STOCK_UNKNOWN_SKU'),
  );
  await assert.rejects(engine.release('never-loaded', 'o1'), (e) =>
    isPeakError(e, 'PEAK_STOCK_UNKNOWN_SKU'),
  );
}

describe('hot-stock engines', { timeout: 240_000 }, () => {
  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-stock-'));
    server = await PeakServer.start({ dataDir, port: 0 });
    useLocalCredential(server);
    const boot = new pg.Client({ connectionString: server.postgresUrl() });
    await boot.connect();
    await boot.query('CREATE DATABASE stock_test');
    await boot.end();
    dbUrl = server.postgresUrl('stock_test');
    pool = quietAtShutdown(new pg.Pool({ connectionString: dbUrl, max: 8 }));
    if (redisServerAvailable()) redisServer = await startRedisServer({ durability: 'always' });
  });

  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await redisServer?.stop();
    await pool?.end();
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  describe('PgStockEngine (PostgreSQL, batched)', () => {
    let engine: PgStockEngine;
    before(async () => {
      engine = new PgStockEngine({ pool, maxBatch: 128 });
      await engine.install();
      await engine.install(); // idempotent
    });
    after(() => engine.close());

    it('sells exactly 200 of 200 to 500 buyers in flight, logging 200 rows', async () => {
      await sellsExactly(engine, 'pg-hot');
      assert.equal(await logRows('peak_stock', 'pg-hot'), 200);
      assert.equal(await pgStock('peak_stock', 'pg-hot'), 0);
    });

    it('deducts a repeated order id once and releases an order once', async () => {
      await idempotent(engine, 'pg-dup');
      assert.equal(await logRows('peak_stock', 'pg-dup'), 1, 'the reload forgot the old orders');
    });

    it('refuses bad input and unknown SKUs, naming the input', () => refusesBadInput(engine));

    it('says to install when the tables are missing', async () => {
      const bare = new PgStockEngine({ pool, schema: 'not_installed' });
      await assert.rejects(
        bare.deduct('x', 'o1', 1),
        (e) => isPeakError(e, 'PEAK_USAGE') && /install\(\)/.test(e.message),
      );
    });
  });

  describe('RedisStockEngine (Lua + stream, written by StockWriter)', {
    skip: !redisServerAvailable() && 'redis-server is not on PATH',
  }, () => {
    const schema = 'redis_stock';
    let engine: RedisStockEngine;
    let redis: Redis;
    before(async () => {
      redis = new Redis(redisServer!.url);
      engine = new RedisStockEngine({ redis: redisServer!.url, pool, schema, name: 'test' });
      await engine.install();
    });
    after(async () => {
      await engine.close();
      redis.disconnect();
    });

    it('sells exactly 200 of 200 to 500 buyers; the writer logs 200 rows; reconcile agrees', async () => {
      const writer = new StockWriter({
        redis: redisServer!.url,
        pool,
        schema,
        name: 'test',
        blockMs: 50,
      }).start();
      try {
        await sellsExactly(engine, 'r-hot');
        await waitFor(
          'the writer to log 200 rows',
          async () => (await logRows(schema, 'r-hot')) === 200,
        );
        await waitFor(
          'the writer to set the stock row',
          async () => (await pgStock(schema, 'r-hot')) === 0,
        );
        assert.deepEqual(await engine.postgresBooks('r-hot'), {
          sku: 'r-hot',
          initial: 200,
          left: 0,
          sold: 200,
        });
        const report = await engine.reconcile('r-hot');
        assert.equal(report.consistent, true, JSON.stringify(report));
        assert.equal(report.written, 0);
        assert.deepEqual(report.redis, { left: 0, sold: 200, orders: 200, balanced: true });
      } finally {
        await writer.close();
      }
    });

    it('a lingering writer carries what arrived meanwhile in its next transaction', async () => {
      await engine.load('r-linger', 100);
      const writer = new StockWriter({
        redis: redisServer!.url,
        pool,
        schema,
        name: 'test',
        blockMs: 50,
        lingerMs: 400,
      }).start();
      try {
        assert.equal((await engine.deduct('r-linger', 'first', 1)).ok, true);
        await waitFor(
          'the first record applied',
          async () => (await logRows(schema, 'r-linger')) === 1,
        );
        const before = writer.stats().batches;
        // One at a time, each awaited: a writer reading at once would take them one a batch.
        for (let i = 0; i < 10; i++)
          assert.equal((await engine.deduct('r-linger', `o${i}`, 1)).ok, true);
        await waitFor('all 11 applied', async () => (await logRows(schema, 'r-linger')) === 11);
        assert.ok(
          writer.stats().batches - before <= 2,
          `10 records in ${writer.stats().batches - before} transactions`,
        );
      } finally {
        await writer.close();
      }
    });

    it('deducts a repeated order id once and releases once, in Redis and in PostgreSQL', async () => {
      const writer = new StockWriter({
        redis: redisServer!.url,
        pool,
        schema,
        name: 'test',
        blockMs: 50,
      }).start();
      try {
        await idempotent(engine, 'r-dup');
        await waitFor('the writer to catch up', async () => (await writer.backlog()) === 0);
        assert.deepEqual(await engine.postgresBooks('r-dup'), {
          sku: 'r-dup',
          initial: 4,
          left: 2,
          sold: 2,
        });
        assert.equal(await logRows(schema, 'r-dup'), 1);
      } finally {
        await writer.close();
      }
    });

    it('reconcile writes what PostgreSQL is missing; a late writer then changes nothing', async () => {
      await engine.load('r-rec', 20);
      for (let i = 0; i < 5; i++)
        assert.equal((await engine.deduct('r-rec', `rec-${i}`, 2)).ok, true);
      assert.equal((await engine.release('r-rec', 'rec-0')).released, true);
      assert.deepEqual(await engine.postgresBooks('r-rec'), {
        sku: 'r-rec',
        initial: 20,
        left: 20,
        sold: 0,
      });
      const report = await engine.reconcile('r-rec');
      assert.equal(report.written, 5);
      assert.equal(report.consistent, true, JSON.stringify(report));
      assert.deepEqual(report.postgres, { left: 12, sold: 8, orders: 4, balanced: true });
      const writer = new StockWriter({
        redis: redisServer!.url,
        pool,
        schema,
        name: 'test',
        blockMs: 50,
      }).start();
      try {
        await waitFor(
          'the writer to drain the redelivered records',
          async () => (await writer.backlog()) === 0,
        );
        assert.ok(writer.stats().applied >= 6);
      } finally {
        await writer.close();
      }
      assert.deepEqual(await engine.postgresBooks('r-rec'), {
        sku: 'r-rec',
        initial: 20,
        left: 12,
        sold: 8,
      });
    });

    it('deductions of one turn share a script call per SKU and maxBatch, each answered alone', async () => {
      const batched = new RedisStockEngine({
        redis: redisServer!.url,
        pool,
        schema,
        name: 'test',
        maxBatch: 4,
      });
      try {
        await batched.load('r-batch', 6);
        // Script calls: EVAL (ioredis's first use of a script on a connection) and EVALSHA.
        const scriptCalls = async () => {
          const stats = await redis.info('commandstats');
          const calls = (cmd: string) =>
            Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
          return calls('eval') + calls('evalsha');
        };
        const before = await scriptCalls();
        // One turn: 10 orders of 1 unit on r-batch (order b-3 twice) and 2 on an unknown SKU.
        const ids = ['b-0', 'b-1', 'b-2', 'b-3', 'b-3', 'b-4', 'b-5', 'b-6', 'b-7', 'b-8'];
        const known = ids.map((id) => batched.deduct('r-batch', id, 1));
        const unknown = ['u-0', 'u-1'].map((id) => batched.deduct('nope', id, 1));
        const results = await Promise.all(known);
        for (const u of unknown)
          await assert.rejects(u, (e) => isPeakError(e, 'PEAK_STOCK_UNKNOWN_SKU'));
        assert.equal(
          (await scriptCalls()) - before,
          4,
          'ceil(10 / 4) calls for r-batch, 1 for nope',
        );
        assert.deepEqual(results, [
          { ok: true, left: 5 },
          { ok: true, left: 4 },
          { ok: true, left: 3 },
          { ok: true, left: 2 },
          { ok: true, left: 2, duplicate: true },
          { ok: true, left: 1 },
          { ok: true, left: 0 },
          { ok: false, left: 0 },
          { ok: false, left: 0 },
          { ok: false, left: 0 },
        ]);
        assert.deepEqual(await batched.books('r-batch'), {
          sku: 'r-batch',
          initial: 6,
          left: 0,
          sold: 6,
        });
      } finally {
        await batched.close();
      }
      await assert.rejects(batched.deduct('r-batch', 'late', 1), (e) =>
        isPeakError(e, 'PEAK_USAGE'),
      );
    });

    it('refuses bad input and unknown SKUs, naming the input', () => refusesBadInput(engine));

    it("reports loads, deductions, releases and reads as spans of each caller's trace", async () => {
      const spans: SpanRecord[] = [];
      const tracer = new Tracer({ service: 'shop.inventory', sink: { add: (x) => spans.push(x) } });
      const traced = new RedisStockEngine({
        redis: redisServer!.url,
        pool,
        schema,
        name: 'traced',
        collector: cacheSpanCollector(tracer),
      });
      try {
        await traced.load('t-hot', 1);
        // Two buyers in one turn share one script call; each span is its own caller's.
        const buyers = [tracer.startSpan('buy 1'), tracer.startSpan('buy 2')];
        const results = await Promise.all(
          buyers.map((b, i) => runWithContext(b.context, () => traced.deduct('t-hot', `t${i}`, 1))),
        );
        assert.deepEqual(results.map((r) => r.ok).sort(), [false, true]);
        await runWithContext(buyers[0]!.context, async () => {
          assert.equal(await traced.stock('t-hot'), 0);
          await assert.rejects(traced.release('never-loaded', 't0'), (e) =>
            isPeakError(e, 'PEAK_STOCK_UNKNOWN_SKU'),
          );
        });
        const port = new URL(redisServer!.url).port;
        const byName = (n: string) => spans.filter((x) => x.name === n);
        assert.equal(byName('redis stock-load traced').length, 1);
        const deducts = byName('redis stock-deduct traced');
        assert.deepEqual(deducts.map((d) => d.attributes['cache.outcome']).sort(), [
          'deducted',
          'sold-out',
        ]);
        for (const [i, b] of buyers.entries()) {
          const d = deducts.find((x) => x.parentSpanId === b.context.spanId);
          assert.ok(d, `buyer ${i + 1}'s deduction is a child of its own span`);
          assert.equal(d.traceId, b.context.traceId);
          assert.equal(d.kind, 'client');
          assert.equal(d.peerService, `redis:127.0.0.1:${port}`);
          assert.equal(d.attributes['cache.key'], 't-hot');
        }
        assert.equal(byName('redis stock-read traced')[0]?.parentSpanId, buyers[0]!.context.spanId);
        const failed = byName('redis stock-release traced')[0];
        assert.ok(failed);
        assert.equal(failed.error, true);
        assert.match(String(failed.errorMessage), /never-loaded/);
      } finally {
        await traced.close();
      }
    });

    it('a writer killed with SIGKILL mid-sale loses nothing: another takes over, the books balance in both', async (t) => {
      const sku = 'r-crash';
      const units = 3000;
      const buyers = 4000;
      await engine.load(sku, units);
      const spawnWriter = (consumer: string) => {
        const child = spawn(process.execPath, [fixture], {
          env: {
            ...process.env,
            STOCK_REDIS_URL: redisServer!.url,
            STOCK_PG_URL: dbUrl,
            STOCK_SCHEMA: schema,
            STOCK_NAME: 'test',
            STOCK_CONSUMER: consumer,
            STOCK_CLAIM_IDLE_MS: '500',
            STOCK_BATCH_SIZE: '25',
            STOCK_COMMIT_DELAY_MS: '5',
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        children.push(child);
        let out = '';
        let err = '';
        child.stdout!.on('data', (d: Buffer) => {
          out += d;
        });
        child.stderr!.on('data', (d: Buffer) => {
          err += d;
        });
        return {
          child,
          ready: () =>
            waitFor(`writer ${consumer} to start (${err})`, () => out.includes('ready\n')),
          output: () => out,
        };
      };
      const a = spawnWriter('writer-a');
      await a.ready();

      // The sale: 4 000 buyers for 3 000 units, 100 in flight at a time.
      let next = 0;
      let sold = 0;
      let refused = 0;
      let released = 0;
      const buyer = async () => {
        while (next < buyers) {
          const id = `crash-${next++}`;
          const r = await engine.deduct(sku, id, 1);
          if (!r.ok) refused++;
          else if (id.endsWith('7') && (await engine.release(sku, id)).released) released++;
          else sold++;
        }
      };
      const sale = Promise.all(Array.from({ length: 100 }, buyer));
      // Kill writer A once it has written some of the sale, while the sale goes on.
      await waitFor(
        'writer A to write part of the sale',
        async () => (await logRows(schema, sku)) >= 300,
      );
      a.child.kill('SIGKILL');
      await new Promise((r) => a.child.once('exit', r));
      const pendingOfA = await redis.xpending(engine.keys.log, 'peak-stock-writer');
      const perConsumer =
        (pendingOfA as [number, string, string, [string, string][] | null])[3] ?? [];
      const heldByA = Number(perConsumer.find(([c]) => c === 'writer-a')?.[1] ?? 0);
      await sale;
      assert.equal(sold + released + refused, buyers);
      assert.ok(released > 0);

      const b = spawnWriter('writer-b');
      await b.ready();
      await waitFor(
        'writer B to drain the stream, A’s pending records included',
        async () => (await redis.xlen(engine.keys.log)) === 0,
        60_000,
      );
      b.child.kill('SIGTERM');
      await new Promise((r) => b.child.once('exit', r));
      const stats = JSON.parse(b.output().trim().split('\n').at(-1)!) as {
        stats: { claimed: number };
      };
      assert.ok(
        stats.stats.claimed >= heldByA,
        `B claimed ${stats.stats.claimed}, A held ${heldByA}`,
      );

      const report = await engine.reconcile(sku);
      t.diagnostic(
        `A held ${heldByA} records at its death; B claimed ${stats.stats.claimed}; reconcile wrote ${report.written}; sold ${sold}, released ${released}, refused ${refused}`,
      );
      assert.equal(report.consistent, true, JSON.stringify(report));
      assert.deepEqual(report.unexplained, []);
      assert.equal(report.initial, units);
      assert.equal(report.redis.left + report.redis.sold, units);
      assert.equal(report.postgres.left + report.postgres.sold, units);
      assert.equal(report.redis.sold, sold, 'Redis holds what the buyers were told');
      assert.equal(report.postgres.sold, sold, 'PostgreSQL holds the same');
      assert.ok(report.postgres.left >= 0 && report.redis.left >= 0, 'nothing oversold');
      assert.equal(await logRows(schema, sku), report.postgres.orders);
      assert.equal(await pgStock(schema, sku), report.postgres.left);
    });

    for (const durability of ['write', 'always'] as const) {
      it(`an acknowledged deduction survives a kill -9 of redis-server (durability '${durability}')`, async (t) => {
        const own = await startRedisServer({ durability });
        const dir = own.dir;
        const sku = `k-${durability}`;
        const units = 100_000;
        const acked: string[] = [];
        let failed = 0;
        const killName = `kill-${durability}`;
        const before = new RedisStockEngine({
          redis: own.url,
          pool,
          schema,
          name: killName,
          commandTimeoutMs: 1000,
        });
        let after: RedisStockEngine | undefined;
        let again: RedisServerProcess | undefined;
        try {
          await before.load(sku, units);
          // Waves of 50 buyers until redis-server is killed under them, mid-wave.
          let wave = 0;
          let killed: Promise<void> | undefined;
          while (killed === undefined || wave < 23) {
            const ids = Array.from({ length: 50 }, (_, i) => `${sku}-${wave}-${i}`);
            if (wave === 20) killed = own.kill();
            const results = await Promise.allSettled(ids.map((id) => before.deduct(sku, id, 1)));
            results.forEach((r, i) => {
              if (r.status === 'fulfilled' && r.value.ok) acked.push(ids[i]!);
              else failed++;
            });
            wave++;
            if (killed !== undefined) await killed;
          }
          assert.ok(acked.length >= 20 * 50, `${acked.length} acknowledged before the kill`);
          assert.ok(failed > 0, 'deductions after the kill fail');
          again = await startRedisServer({ durability, dir, port: own.port });
          after = new RedisStockEngine({ redis: again.url, pool, schema, name: killName });
          const books = await after.books(sku);
          t.diagnostic(
            `${acked.length} acknowledged, ${failed} failed; after the restart sold ${books.sold}, left ${books.left}`,
          );
          assert.equal(books.left + books.sold, units, 'left + sold = initial');
          assert.ok(books.sold >= acked.length, 'every acknowledged unit is still sold');
          // Each acknowledged order is known: a retry of it deducts nothing.
          for (const id of [acked[0]!, acked[Math.floor(acked.length / 2)]!, acked.at(-1)!]) {
            const retry = await after.deduct(sku, id, 1);
            assert.equal(retry.duplicate, true, `${id} was acknowledged, so Redis knows it`);
          }
          assert.equal((await after.books(sku)).sold, books.sold);
        } finally {
          await before.close().catch(() => undefined);
          await after?.close();
          await again?.stop();
          await own.stop();
          await rm(dir, { recursive: true, force: true });
        }
      });
    }
  });
});
