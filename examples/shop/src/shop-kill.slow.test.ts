/**
 * The shop under faults (issue 23), the slow part (`npm run test:slow`, not in CI's two runs):
 * service processes killed with SIGKILL mid-sale (an inventory and an order process; an
 * order and a points process; the coupon process) are reported as killed by the signal and restarted, and the
 * sale with `--exit` still finishes with consistent books: oversold 0, stock left + sold =
 * initial on each copy, and every order's "order placed" event awarded its points once. A
 * third of the hot item's buys carry a coupon (TCCs across coupon, stock and order, issue
 * 15): the coupon books balance too (no coupon left locked, every used coupon's order
 * placed, no TCC unfinished).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertSurvived, chaosSale } from './testing/chaos-sale.js';

/** Runs a sale, kills one process of each role in `roles` mid-sale, and checks the report. */
async function saleWithKills(roles: readonly string[]): Promise<void> {
  const outcome = await chaosSale([], (processes) =>
    roles.map((role) => {
      const found = processes.find((c) => c.cmd.includes(`${role}-service.js`));
      assert.ok(found !== undefined, `a ${role} process runs`);
      return { role, pid: found.pid };
    }),
  );
  assert.doesNotMatch(`${outcome.out}\n${outcome.err}`, /code null/);
  assertSurvived(outcome);
}

test(
  'kill -9 of an inventory and an order process mid-sale: reported, restarted, the sale and its coupon TCCs finish consistent',
  {
    timeout: 600_000,
  },
  () => saleWithKills(['inventory', 'order']),
);

test(
  'kill -9 of an order and a points process mid-sale: both restarted, every order awarded once',
  {
    timeout: 600_000,
  },
  () => saleWithKills(['order', 'points']),
);

test(
  'kill -9 of the coupon process mid-sale: restarted, every coupon TCC confirmed or cancelled, no coupon left locked',
  {
    timeout: 600_000,
  },
  () => saleWithKills(['coupon']),
);
