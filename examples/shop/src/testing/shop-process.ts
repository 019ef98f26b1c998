/**
 * Test support for the shop's process-level tests: start the shop's main as a child and
 * collect its output, find every process under it, wait for a condition with a bound.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const main = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'main.js');

/** Every live process under `root` (Linux /proc), with its command line. */
export async function descendants(root: number): Promise<{ pid: number; cmd: string }[]> {
  const parents = new Map<number, number[]>();
  const cmds = new Map<number, string>();
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    // pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[1] === undefined) continue;
    const ppid = Number(fields[1]);
    parents.set(ppid, [...(parents.get(ppid) ?? []), Number(name)]);
    cmds.set(
      Number(name),
      (await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '')).replaceAll('\0', ' '),
    );
  }
  const out: { pid: number; cmd: string }[] = [];
  const walk = (pid: number) => {
    for (const c of parents.get(pid) ?? []) {
      out.push({ pid: c, cmd: cmds.get(c) ?? '' });
      walk(c);
    }
  };
  walk(root);
  return out;
}

/** Whether a process with this pid exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

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
export function startShop(args: string[]) {
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
