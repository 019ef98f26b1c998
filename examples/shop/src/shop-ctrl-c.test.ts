/**
 * Ctrl-C on `npm start`, as a terminal sends it: SIGINT to the whole foreground process
 * group (the shop's main process, its services and the gateway; the embedded PostgreSQLs
 * and redis-server run in groups of their own and are stopped by the chain, last). One
 * Ctrl-C stops everything within the shop's bound, with no lock left; a second one during
 * the stop kills the chain at once.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { alive, descendants, holdRequest, type TreeProcess } from './testing/process-tree.js';
import { startShop as spawnShop } from './testing/shop-process.js';

/** Polls `check` until it holds; fails naming `what` after `ms` (a bound for a loaded machine). */
async function waitUntil(what: () => string, check: () => boolean | Promise<boolean>, ms: number) {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) assert.fail(`timed out after ${ms} ms waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A running shop, leading its own process group as `npm start` does in a terminal. */
interface Shop {
  child: ChildProcess;
  io: { out: string; err: string };
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  dataDir: string;
  /** Every process under the shop once the chain is up. */
  tree: TreeProcess[];
}

/** Starts the shop with a small sale and waits until the chain stays up for the user. */
async function startShop(): Promise<Shop> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-shop-ctrl-c-'));
  const { child, io, exited } = spawnShop(
    [
      ...['--data', dataDir, '--port', '0'],
      ...['--stock', '20', '--buyers', '60', '--concurrency', '8', '--seconds', '5'],
    ],
    { detached: true },
  );
  const shop: Shop = { child, io, exited, dataDir, tree: [] };
  await waitUntil(
    () => `the chain up for the user: ${io.out}\n${io.err}`,
    () => {
      if (child.exitCode !== null) assert.fail(`the shop ended early: ${io.out}\n${io.err}`);
      return io.out.includes('Stop with Ctrl-C.');
    },
    240_000,
  );
  shop.tree = await descendants(child.pid!);
  for (const kind of ['postgres', 'redis-server', 'order-service.js', 'peak.js gateway']) {
    assert.ok(
      shop.tree.some((p) => p.cmd.includes(kind)),
      `${kind} runs under the shop: ${shop.tree.map((p) => p.cmd).join('\n')}`,
    );
  }
  return shop;
}

/** Ctrl-C: SIGINT to the shop's whole process group. */
function ctrlC(shop: Shop): void {
  process.kill(-shop.child.pid!, 'SIGINT');
}

/** Nothing the shop started still runs, and the control plane's lock is gone. */
async function assertNothingLeft(shop: Shop): Promise<void> {
  await waitUntil(
    () =>
      `every process of the chain gone; left: ${shop.tree
        .filter((p) => alive(p.pid))
        .map((p) => `${p.pid} ${p.cmd.slice(0, 80)}`)
        .join('; ')}`,
    () => shop.tree.every((p) => !alive(p.pid)),
    30_000,
  );
  await assert.rejects(stat(path.join(shop.dataDir, 'server.lock')), { code: 'ENOENT' });
}

async function cleanUp(shop: Shop | undefined): Promise<void> {
  if (shop === undefined) return;
  try {
    process.kill(-shop.child.pid!, 'SIGKILL');
  } catch {
    // gone
  }
  for (const p of shop.tree) if (alive(p.pid)) process.kill(p.pid, 'SIGKILL');
  await rm(shop.dataDir, { recursive: true, force: true });
}

test('one Ctrl-C stops the whole chain cleanly within its bound: no process, no lock left', {
  timeout: 360_000,
}, async () => {
  let shop: Shop | undefined;
  try {
    shop = await startShop();
    const before = shop.io.err.length;
    ctrlC(shop);
    const { code } = await shop.exited;
    assert.equal(code, 130, shop.io.err);
    // One line and nothing else: no death reports, no forced kill, no connection errors.
    assert.equal(shop.io.err.slice(before), 'shop: SIGINT: stopping the chain\n');
    await assertNothingLeft(shop);
  } finally {
    await cleanUp(shop);
  }
});

test('a second Ctrl-C during the stop kills the chain at once: no process, no lock left', {
  timeout: 360_000,
}, async () => {
  let shop: Shop | undefined;
  try {
    shop = await startShop();
    // A request to the control plane that never finishes keeps the graceful stop busy.
    const url = /control plane\s+(http:\S+)/.exec(shop.io.out)?.[1];
    assert.ok(url !== undefined, shop.io.out);
    const held = await holdRequest(`${url}/v1/traces`);
    try {
      ctrlC(shop);
      const s = shop;
      await waitUntil(
        () => `the stop under way: ${s.io.err}`,
        () => s.io.err.includes('stopping the chain'),
        30_000,
      );
      ctrlC(shop);
      const { code } = await shop.exited;
      assert.equal(code, 130, shop.io.err);
      assert.match(shop.io.err, /second SIGINT: killing the chain/);
      await assertNothingLeft(shop);
    } finally {
      held.destroy();
    }
  } finally {
    await cleanUp(shop);
  }
});
