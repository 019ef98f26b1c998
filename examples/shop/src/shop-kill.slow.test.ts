/**
 * The shop under faults (issue 23), the slow part (`npm run test:slow`, not in CI's two runs):
 * service processes killed with SIGKILL mid-sale (an inventory and an order process; an
 * order and a points process) are reported as killed by the signal and restarted, and the
 * sale with `--exit` still finishes with consistent books: oversold 0, stock left + sold =
 * initial on each copy, and every order's "order placed" event awarded its points once. A
 * third of the hot item's buys carry a coupon (TCCs across coupon, stock and order, issue
 * 15): the coupon books balance too (no coupon left locked, every used coupon's order
 * placed, no TCC unfinished).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { alive, descendants, startShop, waitUntil } from './testing/shop-process.js';

/** Runs a sale, kills one process of each role in `roles` mid-sale, and checks the report. */
async function saleWithKills(roles: readonly string[]): Promise<void> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-shop-kill-'));
  const shop = startShop([
    '--exit',
    '--stock',
    '200',
    '--buyers',
    '2000',
    '--concurrency',
    '16',
    '--seconds',
    '20',
    '--data',
    dataDir,
    '--port',
    '0',
    '--coupon-share',
    '0.33',
  ]);
  let children: { pid: number; cmd: string }[] = [];
  try {
    await waitUntil(
      'the sale under way',
      () => / buyers /.test(shop.io.out.split('Flash sale:')[1] ?? ''),
      200_000,
      shop.child,
      shop.io,
    );
    children = await descendants(shop.child.pid!);
    const victims = roles.map((role) => {
      const found = children.find((c) => c.cmd.includes(`${role}-service.js`));
      assert.ok(found !== undefined, `a ${role} process runs`);
      return { role, pid: found.pid };
    });
    for (const v of victims) process.kill(v.pid, 'SIGKILL');
    const { code } = await Promise.race([
      shop.exited,
      new Promise<never>((_, reject) =>
        setTimeout(
          () =>
            reject(
              new Error(`the shop did not finish after the kill: ${shop.io.out}\n${shop.io.err}`),
            ),
          180_000,
        ),
      ),
    ]);
    await shop.outDone;
    const report = `${shop.io.out}\n${shop.io.err}`;
    for (const v of victims) {
      assert.match(
        shop.io.err,
        new RegExp(
          `${v.role} process \\(pid ${v.pid}\\) died, killed by SIGKILL; restarted as pid \\d+`,
        ),
        report,
      );
    }
    assert.doesNotMatch(report, /code null/);
    assert.match(shop.io.out, /oversold 0: consistent/, report);
    assert.match(shop.io.out, /coupons: [1-9]\d* buys with a coupon .*: consistent/, report);
    assert.match(
      shop.io.out,
      /txn: coupon-order TCCs \d+ succeeded, \d+ rolled back, 0 active/,
      report,
    );
    assert.match(shop.io.out, /books: .*: consistent/, report);
    assert.match(shop.io.out, /run: consistent, stopped cleanly/, report);
    assert.equal(code, 0, report);
  } finally {
    // Its processes first: once the shop is gone they are no longer under its pid (and
    // PostgreSQL and Redis, in groups of their own, would outlive it).
    const left = await descendants(shop.child.pid!).catch(() => []);
    shop.child.kill('SIGKILL');
    for (const c of [...left, ...children]) if (alive(c.pid)) process.kill(c.pid, 'SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  }
}

test(
  'kill -9 of an inventory and an order process mid-sale: reported, restarted, the sale and its coupon TCCs finish consistent',
  {
    timeout: 420_000,
  },
  () => saleWithKills(['inventory', 'order']),
);

test(
  'kill -9 of an order and a points process mid-sale: both restarted, every order awarded once',
  {
    timeout: 420_000,
  },
  () => saleWithKills(['order', 'points']),
);
