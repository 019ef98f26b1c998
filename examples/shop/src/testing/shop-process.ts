/**
 * Test support for the shop's process-level tests: start the shop's main as a child and
 * collect its output, wait for a condition with a bound (and, from process-tree.ts, every
 * process under a pid).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export { alive, descendants } from './process-tree.js';

const main = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'main.js');

/** Waits until `check` holds, failing after `ms` or when `child` ends first. */
export async function waitUntil(
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
export function startShop(args: string[], options: { detached?: boolean } = {}) {
  // detached: the shop leads its own process group, as `npm start` does in a terminal.
  const child: ChildProcess = spawn(process.execPath, [main, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached === true,
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
