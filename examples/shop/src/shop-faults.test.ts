/**
 * The shop under faults (issue 23): SIGINT to the main process alone (not its group)
 * stops every child it started. The kill -9 of a service mid-sale is in
 * shop-kill.slow.test.ts (a minute or two; `npm run test:slow`).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { alive, descendants, startShop, waitUntil } from './testing/shop-process.js';

test('SIGINT to the main process alone stops every child it started', {
  timeout: 300_000,
}, async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-shop-sigint-'));
  const shop = startShop([
    '--capacity',
    '--rates',
    '20',
    '--step-seconds',
    '120',
    '--data',
    dataDir,
    '--port',
    '0',
  ]);
  let children: { pid: number; cmd: string }[] = [];
  try {
    await waitUntil(
      'the capacity run under way',
      () => shop.io.out.includes('Capacity run:'),
      200_000,
      shop.child,
      shop.io,
    );
    children = await descendants(shop.child.pid!);
    assert.ok(
      children.some((c) => c.cmd.includes('postgres')),
      'PostgreSQL runs under the shop',
    );
    assert.ok(
      children.some((c) => c.cmd.includes('inventory-service.js')),
      'services run',
    );
    shop.child.kill('SIGINT');
    const { code } = await Promise.race([
      shop.exited,
      new Promise<never>((_, reject) =>
        setTimeout(
          () => reject(new Error(`the shop did not exit on SIGINT: ${shop.io.err}`)),
          60_000,
        ),
      ),
    ]);
    assert.equal(code, 130, shop.io.err);
    await waitUntil(
      'every child of the shop gone',
      () => children.every((c) => !alive(c.pid)),
      30_000,
    ).catch((err: Error) => {
      const left = children
        .filter((c) => alive(c.pid))
        .map((c) => `${c.pid} ${c.cmd.slice(0, 80)}`);
      throw new Error(`${err.message}; still running: ${left.join('; ')}`);
    });
  } finally {
    shop.child.kill('SIGKILL');
    for (const c of children) if (alive(c.pid)) process.kill(c.pid, 'SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  }
});
