/**
 * The shop with its order shard's PostgreSQL (#2, shard ds1) killed mid-sale (issue 23;
 * `npm run test:slow`). While it is down, orders of buyers on that shard fail cleanly (the
 * buyer gets an error, the stock deducted for them is released by compensation or the
 * sweep) and orders on ds0 go on; the chain starts it again on the same port, PostgreSQL's
 * crash recovery keeps every committed order and its outbox event and nothing
 * half-written, and the sale with `--exit` finishes with consistent books.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertSurvived, chaosSale } from './testing/chaos-sale.js';

test("kill -9 of the order shard's PostgreSQL mid-sale: reported, restarted on its port, every order written whole and the books consistent", {
  timeout: 600_000,
}, async () => {
  const outcome = await chaosSale([], (processes) => {
    // The postmaster (`postgres -D <data>/order-shard-1/pg ...`), not one of its backends.
    const postmaster = processes.find((p) => /\s-D\s\S*order-shard-1/.test(p.cmd));
    return postmaster === undefined ? [] : [{ role: 'order-shard-postgres', pid: postmaster.pid }];
  });
  assertSurvived(outcome, 'gone \\(its postmaster ended\\)');
  assert.match(outcome.out, /events: (\d+) of \1 "order placed" messages/, outcome.out);
});
