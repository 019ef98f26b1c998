/**
 * The shop with its redis-server killed mid-sale (issue 23; `npm run test:slow`). Redis
 * holds the hot stock (deducted there, written behind to PostgreSQL) and the product
 * cache's shared tier. While it is down, buys of the hot item fail cleanly (errors, no
 * order), product reads are served from each order process's L1; the chain starts Redis
 * again on the same port and folder, its append-only file brings back every acknowledged
 * deduction, and the sale with `--exit` finishes with consistent books: oversold 0, both
 * stock copies agree, every deduction without an order released, the coupon TCCs settled.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertSurvived, chaosSale } from './testing/chaos-sale.js';

test('kill -9 of redis-server mid-sale: reported, restarted on its port, the books consistent and both stock copies agree', {
  timeout: 600_000,
}, async () => {
  const outcome = await chaosSale([], (processes) => {
    const redis = processes.find((p) => /redis-server/.test(p.cmd));
    return redis === undefined ? [] : [{ role: 'redis', pid: redis.pid }];
  });
  assertSurvived(outcome, 'gone \\(its pid ended\\)');
  assert.match(
    outcome.out,
    /stock: deducted in Redis, written behind to PostgreSQL; both copies agree/,
    outcome.out,
  );
});
