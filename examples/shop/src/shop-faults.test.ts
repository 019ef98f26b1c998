/**
 * The shop under faults (issue 23): SIGINT to the main process alone (not its group)
 * stops every child it started; a service process killed with SIGKILL mid-sale is reported
 * as killed by the signal and restarted, and the sale with `--exit` still finishes with
 * consistent books.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { alive, descendants } from './process-tree.js';

const main = path.join(path.dirname(fileURLToPath(import.meta.url)), 'main.js');

async function waitUntil(
  what: string,
  check: () => boolean | Promise<boolean>,
  ms: number,
  child?: ChildProcess,
  io?: { out: string; err: string },
) {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (child !== undefined && (child.exitCode !== null || child.signalCode !== null)) {
      assert.fail(`the shop ended while waiting for ${what}: ${io?.out}\n${io?.err}`);
    }
    if (Date.now() > until) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Starts the shop with `args`; collects its output. */
function startShop(args: string[]) {
  const child: ChildProcess = spawn(process.execPath, [main, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const io = { out: '', err: '' };
  child.stdout!.on('data', (c: Buffer) => {
    io.out += c.toString();
  });
  child.stderr!.on('data', (c: Buffer) => {
    io.err += c.toString();
  });
  // 'exit', not 'close': a child of the shop that outlives it keeps the inherited stderr open.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const outDone = new Promise<void>((resolve) => child.stdout!.on('close', () => resolve()));
  return { child, io, exited, outDone };
}

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

test('kill -9 of a service mid-sale: reported, restarted, and the sale still finishes consistent', {
  timeout: 420_000,
}, async () => {
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
    const victims = children.filter((c) => c.cmd.includes('inventory-service.js'));
    assert.ok(victims.length >= 1, 'an inventory process runs');
    const victim = victims[0]!;
    process.kill(victim.pid, 'SIGKILL');
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
    assert.match(
      shop.io.err,
      new RegExp(
        `inventory process \\(pid ${victim.pid}\\) died, killed by SIGKILL; restarted as pid \\d+`,
      ),
      report,
    );
    assert.doesNotMatch(report, /code null/);
    assert.match(shop.io.out, /books: .*: consistent/, report);
    assert.match(shop.io.out, /run: consistent, stopped cleanly/, report);
    assert.equal(code, 0, report);
  } finally {
    shop.child.kill('SIGKILL');
    for (const c of await descendants(shop.child.pid!).catch(() => []))
      process.kill(c.pid, 'SIGKILL');
    for (const c of children) if (alive(c.pid)) process.kill(c.pid, 'SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  }
});
