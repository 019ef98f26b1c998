/**
 * The shop's stress-aware stock on a real PostgreSQL and a real redis-server, with both
 * engines: a deduction in a stress context takes shadow stock (seeded through the engine's
 * own load, in a stress context) and never real stock, real deductions never reach the
 * shadow, each side's books settle on their own, and without a shadow copy a stress call is
 * refused rather than sent to the real stock.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { type RedisServerProcess, startRedisServer } from 'peakware/cache';
import { createContext, createLogger, runWithContext } from 'peakware/core';
import { EmbeddedPostgres } from 'peakware/server';
import pg from 'pg';
import { openStressAwareStock, SHADOW_STOCK_SCHEMA } from './shadow-stock.js';

let dir: string;
let postgres: EmbeddedPostgres;
let redis: RedisServerProcess;
let pool: pg.Pool;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'peak-shop-shadow-stock-'));
  postgres = new EmbeddedPostgres({ dataDir: dir, logger: createLogger({ level: 'warn' }) });
  const e = await postgres.start();
  pool = new pg.Pool({
    connectionString: `postgres://${encodeURIComponent(e.user)}:${encodeURIComponent(e.password)}@${e.host}:${e.port}/${e.database}`,
    max: 4,
  });
  // pool.end() resolves before its clients' sockets close; one still open when `after` stops
  // PostgreSQL gets 57P01 (shutting down), which an idle client reports on the pool.
  pool.on('error', (err: Error & { code?: string }) => {
    if (err.code !== '57P01') throw err;
  });
  redis = await startRedisServer({ durability: 'write', dir: path.join(dir, 'redis') });
});

after(async () => {
  await pool?.end();
  await redis?.stop();
  await postgres?.stop();
  await rm(dir, { recursive: true, force: true });
});

const stress = <T>(fn: () => Promise<T>) => runWithContext(createContext({ stress: true }), fn);

for (const kind of ['redis', 'postgres'] as const) {
  test(`${kind} engine: stress deductions take shadow stock, never real stock`, async () => {
    const sku = `phone-${kind}`;
    const stock = openStressAwareStock(pool, kind === 'redis' ? redis.url : undefined, {
      writer: true,
      shadow: true,
    });
    try {
      assert.equal(stock.kind, kind);
      await stock.install();
      await stock.engine.load(sku, 10);
      // Seeded from the real stock through the same load, in a stress context.
      const real = await stock.engine.books(sku);
      await stress(() => stock.engine.load(sku, real.initial));

      assert.equal((await stress(() => stock.engine.deduct(sku, 's-1', 3))).left, 7);
      assert.equal((await stress(() => stock.engine.deduct(sku, 's-2', 7))).ok, true);
      assert.equal((await stress(() => stock.engine.deduct(sku, 's-3', 1))).ok, false);
      assert.equal((await stock.engine.deduct(sku, 'r-1', 2)).left, 8, 'real stock untouched');
      assert.equal(await stock.engine.stock(sku), 8);
      assert.equal(await stress(() => stock.engine.stock(sku)), 0);

      const realBooks = (await stock.settle(sku)).books;
      const shadowBooks = (await stress(() => stock.settle(sku))).books;
      assert.deepEqual([realBooks.initial, realBooks.left, realBooks.sold], [10, 8, 2]);
      assert.deepEqual([shadowBooks.initial, shadowBooks.left, shadowBooks.sold], [10, 0, 10]);
      // Each side's deduction log in PostgreSQL holds its own orders only.
      const orders = async (schema: string) =>
        (
          await pool.query<{ order_id: string }>(
            `SELECT order_id FROM ${schema}.deductions WHERE sku = $1 ORDER BY order_id`,
            [sku],
          )
        ).rows.map((r) => r.order_id);
      assert.deepEqual(await orders('peak_stock'), ['r-1']);
      assert.deepEqual(await orders(SHADOW_STOCK_SCHEMA), ['s-1', 's-2']);
    } finally {
      await stock.close();
    }
  });
}

test('without a shadow copy a stress deduction is refused and real stock stays', async () => {
  const stock = openStressAwareStock(pool, redis.url, { writer: false, shadow: false });
  try {
    await stock.install();
    await stock.engine.load('cable', 5);
    await assert.rejects(() => stress(() => stock.engine.deduct('cable', 's-9', 1)), {
      code: 'PEAK_USAGE',
      message: /without shadow stock/,
    });
    assert.equal(await stock.engine.stock('cable'), 5);
  } finally {
    await stock.close();
  }
});
