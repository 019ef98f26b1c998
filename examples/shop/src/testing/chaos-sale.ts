/**
 * Test support for the shop's chaos tests (issue 23): a sale with `--exit` whose victims
 * are killed with SIGKILL once the sale is under way, then the shop's exit awaited (bounded)
 * and its report checked for consistent books, a clean stop and exit code 0.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TreeProcess } from './process-tree.js';
import { alive, descendants, startShop, waitUntil } from './shop-process.js';

/** One process to kill: what it is (as the shop's death line names it) and its pid. */
export interface ChaosVictim {
  role: string;
  pid: number;
}

/** What a chaos sale ended with. */
export interface ChaosOutcome {
  victims: ChaosVictim[];
  out: string;
  err: string;
  code: number | null;
}

/** How long the chain may take to start and the sale to get under way (a loaded machine is slow). */
const SALE_START_MS = 300_000;

/** How long the shop may take to finish its report and stop after the kill. */
const FINISH_MS = 240_000;

/**
 * Runs a sale (`extraArgs` beside the chaos sale's own), picks victims among the shop's
 * processes with `pick` once the sale is under way, kills them with SIGKILL, and waits for
 * the shop to end. Everything it started is killed and its data removed afterwards.
 */
export async function chaosSale(
  extraArgs: readonly string[],
  pick: (processes: TreeProcess[]) => ChaosVictim[],
): Promise<ChaosOutcome> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-shop-chaos-'));
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
    ...extraArgs,
  ]);
  let children: TreeProcess[] = [];
  try {
    await waitUntil(
      'the sale under way',
      () => / buyers /.test(shop.io.out.split('Flash sale:')[1] ?? ''),
      SALE_START_MS,
      shop.child,
      shop.io,
    );
    children = await descendants(shop.child.pid!);
    const victims = pick(children);
    assert.ok(victims.length > 0, `a victim among ${children.map((c) => c.cmd).join('\n')}`);
    for (const v of victims) process.kill(v.pid, 'SIGKILL');
    let timer: NodeJS.Timeout | undefined;
    const { code } = await Promise.race([
      shop.exited,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(`the shop did not finish after the kill: ${shop.io.out}\n${shop.io.err}`),
            ),
          FINISH_MS,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    await shop.outDone;
    return { victims, out: shop.io.out, err: shop.io.err, code };
  } finally {
    // Its processes first: once the shop is gone they are no longer under its pid (and
    // PostgreSQL and Redis, in groups of their own, would outlive it).
    const left = await descendants(shop.child.pid!).catch(() => []);
    shop.child.kill('SIGKILL');
    for (const c of [...left, ...children]) if (alive(c.pid)) process.kill(c.pid, 'SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  }
}

/**
 * The report's checks every chaos sale shares: each victim reported as killed and started
 * again, the books, the coupon books and the TCCs consistent, a clean stop, exit code 0.
 */
export function assertSurvived(outcome: ChaosOutcome, how = 'killed by SIGKILL'): void {
  const report = `${outcome.out}\n${outcome.err}`;
  for (const v of outcome.victims) {
    const line = new RegExp(
      `${v.role} process \\(pid ${v.pid}\\) died, ${how}; restarted as pid \\d+`,
    );
    assert.match(outcome.err, line, report);
  }
  assert.match(outcome.out, /oversold 0: consistent/, report);
  assert.match(outcome.out, /coupons: [1-9]\d* buys with a coupon .*: consistent/, report);
  assert.match(
    outcome.out,
    /txn: coupon-order TCCs \d+ succeeded, \d+ rolled back, 0 active/,
    report,
  );
  assert.match(outcome.out, /books: .*: consistent/, report);
  assert.match(outcome.out, /run: consistent, stopped cleanly/, report);
  assert.equal(outcome.code, 0, report);
}
