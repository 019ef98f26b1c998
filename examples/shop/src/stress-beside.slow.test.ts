/**
 * The shop's full-link stress test beside real traffic (`--smoke --stress-beside
 * --stress-leak`): stress buys go through the same gateway, order and inventory processes
 * while the flash sale runs, and land in the shadows only; the isolation check passes (zero
 * stress rows in the real order tables and in shop.points, zero stress messages in real
 * topics, zero stress deductions in the real stock), the real books add up, and a planted
 * leak (a stress order written with the call context dropped) makes the check fail and name
 * the physical table. About 80 s on a loaded 2-core machine: `npm run test:slow`.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { StressBesideResult } from './stress-beside.js';
import { startShop } from './testing/shop-process.js';

interface Summary {
  hot: { placed: number };
  books: { stock: number; orders: number; unitsOrdered: number; unitsDeducted: number };
  consistent: boolean;
  stress: StressBesideResult;
}

test('a stress run beside the flash sale stays in the shadows, and a planted leak is named', {
  timeout: 240_000,
}, async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-shop-stress-'));
  const shop = startShop([
    '--data',
    dataDir,
    '--port',
    '0',
    '--smoke',
    '--json',
    '--stress-beside',
    '--stress-rate',
    '20',
    '--stress-leak',
  ]);
  const killer = setTimeout(() => shop.child.kill('SIGKILL'), 220_000);
  try {
    const { code } = await shop.exited;
    await shop.outDone;
    assert.equal(code, 0, `${shop.io.out}\n${shop.io.err}`);
    const summary = JSON.parse(shop.io.out.trim().split('\n').at(-1)!) as Summary;
    const s = summary.stress;

    // The real sale's books add up, with the stress run beside it.
    assert.equal(summary.consistent, true);
    assert.equal(summary.books.unitsDeducted, summary.books.unitsOrdered);
    assert.ok(summary.books.unitsDeducted <= summary.books.stock);

    // The stress run went through the chain and into the shadows.
    assert.equal(s.requests, 100, 'constant 20/s for 5 s');
    assert.ok(s.outcomes.placed > 0, JSON.stringify(s));
    assert.ok(s.shadow.orders >= s.outcomes.placed, 'every placed stress order is a shadow row');
    assert.equal(s.shadow.stock.initial, summary.books.stock, 'shadow stock seeded from the real');
    assert.ok(s.shadow.stock.sold <= s.shadow.stock.initial, 'the shadow sale never oversells');
    assert.equal(s.shadow.balanced, true, `shadow books: ${JSON.stringify(s.shadow)}`);

    // The isolation check passes, having looked at every real place.
    assert.equal(s.isolation.ok, true, JSON.stringify(s.isolation.leaks));
    assert.equal(s.isolation.checked.topics, true);
    const where = s.isolation.checked.tables.map((t) => t.where.split(' ')[0]);
    assert.deepEqual(where, [
      'ds0.orders_0',
      'ds0.orders_1',
      'ds1.orders_2',
      'ds1.orders_3',
      'ds0.shop.points',
      'ds0.peak_stock.deductions',
    ]);
    assert.ok(s.isolation.checked.tables.every((t) => t.realRows === 0));
    const shadowOrderRows = s.isolation.checked.tables
      .filter((t) => t.where.includes('(orders)'))
      .reduce((n, t) => n + (t.shadowRows ?? 0), 0);
    assert.ok(shadowOrderRows >= s.outcomes.placed, 'the stress orders are in the shadow tables');

    // The planted leak fails the check and is named by its physical table, and only it.
    const planted = s.plantedLeak!;
    assert.equal(planted.ok, false);
    assert.equal(planted.leaks.length, 1, JSON.stringify(planted.leaks));
    assert.equal(planted.leaks[0]!.kind, 'table');
    assert.match(planted.leaks[0]!.where, /^ds[01]\.orders_[0-3] \(orders\)$/);
    assert.equal(planted.leaks[0]!.count, 1);
  } finally {
    clearTimeout(killer);
    await rm(dataDir, { recursive: true, force: true });
  }
});
