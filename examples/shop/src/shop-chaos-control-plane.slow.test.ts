/**
 * The shop on two control-plane nodes (`--control-plane 2`: a second `peak server` process
 * on the same PostgreSQL, listed first by every service and the gateway) with that node
 * killed mid-sale (issue 23; `npm run test:slow`). Every client moves to the first node:
 * registrations, discovery, the broker (outbox relays, the points and compensation
 * consumers), the txn coordinator of the coupon TCCs and telemetry; the chain starts the
 * node again on its port, and the sale with `--exit` finishes with consistent books.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertSurvived, chaosSale } from './testing/chaos-sale.js';

test('kill -9 of one of two control-plane nodes mid-sale: reported, restarted, the sale, its events and its coupon TCCs finish consistent', {
  timeout: 600_000,
}, async () => {
  const outcome = await chaosSale(['--control-plane', '2'], (processes) => {
    const node = processes.find((p) => /peak\.js server /.test(p.cmd));
    return node === undefined ? [] : [{ role: 'control-plane', pid: node.pid }];
  });
  assert.match(outcome.out, /control plane 2 http:\/\/127\.0\.0\.1:\d+/, outcome.out);
  assertSurvived(outcome);
  assert.match(outcome.out, /events: (\d+) of \1 "order placed" messages/, outcome.out);
});
