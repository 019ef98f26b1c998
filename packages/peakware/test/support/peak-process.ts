/**
 * Test support: runs the real `peak` CLI as a child process (under the same Node binary as
 * the tests) and reads its `--json` event lines.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The compiled CLI entry point. */
export const PEAK_CLI = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../src/cli/main.js',
);

/**
 * The data folder a `peak` command uses when the test names none: an empty one of its own,
 * not the default `.peak` of the working folder (an `npm start` in the repo root leaves its
 * admin token there, which commands would then send to the test's server).
 */
const NO_DATA_DIR = mkdtempSync(path.join(os.tmpdir(), 'peak-cli-test-'));
process.once('exit', () => rmSync(NO_DATA_DIR, { recursive: true, force: true }));

/** A running `peak` process. */
export interface PeakProcess {
  child: ChildProcess;
  /** JSON events printed on stdout, in order. */
  events: Record<string, unknown>[];
  /** Everything on stderr so far. */
  stderr(): string;
  /** Everything on stdout so far. */
  stdout(): string;
  /** Resolves with the first event named `name`. */
  waitFor(name: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resolves when the process exits. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * The `peak` processes still running. Each leads its own group, so a Ctrl-C in the terminal
 * (SIGINT to the foreground group) does not reach it: when the test process ends, by exit
 * or by SIGINT / SIGTERM, their groups are killed, so an interrupted test leaves none
 * behind (a stress run would go on for its whole duration).
 */
const running = new Set<ChildProcess>();
function killRunning(): void {
  for (const child of running) killGroup(child);
}
process.once('exit', killRunning);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killRunning();
    // The listener is gone now: the signal's default action ends this process as before.
    process.kill(process.pid, signal);
  });
}

/** Starts `peak <args>`; the process leads its own group so tests can kill it with its children. */
export function spawnPeak(args: string[], env: NodeJS.ProcessEnv = {}): PeakProcess {
  const child = spawn(process.execPath, [PEAK_CLI, ...args], {
    env: { ...process.env, PEAK_DATA: NO_DATA_DIR, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  let out = '';
  let err = '';
  let buffered = '';
  const events: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  child.stdout!.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    buffered += chunk.toString();
    let nl = buffered.indexOf('\n');
    while (nl >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      try {
        events.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // human output line
      }
      nl = buffered.indexOf('\n');
    }
    for (const w of waiters.splice(0)) w();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    // 'close' (not 'exit') so every byte of output has been read first.
    child.on('close', (code, signal) => {
      done = true;
      for (const w of waiters.splice(0)) w();
      resolve({ code, signal });
    });
  });
  const waitFor = (name: string, timeoutMs = 90_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`peak ${args.join(' ')}: no '${name}' event in ${timeoutMs} ms\n${err}`));
      }, timeoutMs);
      const check = () => {
        const found = events.find((e) => e.event === name);
        if (found !== undefined) {
          clearTimeout(timer);
          resolve(found);
        } else if (done) {
          clearTimeout(timer);
          reject(new Error(`peak ${args.join(' ')} exited before '${name}':\n${err}`));
        } else {
          waiters.push(check);
        }
      };
      check();
    });
  return { child, events, stderr: () => err, stdout: () => out, waitFor, exited };
}

/** Runs `peak <args>` to completion and returns its exit code and output. */
export async function runPeak(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 60_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawnPeak(args, env);
  const timer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
  const { code } = await p.exited;
  clearTimeout(timer);
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

/** Pids of PostgreSQL processes whose command line names `dataDir` (Linux /proc). */
export async function postgresPidsFor(dataDir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const cmd = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes('postgres') && cmd.includes(dataDir)) pids.push(Number(name));
  }
  return pids;
}

/** Kills a process group, ignoring one that is already gone. */
export function killGroup(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}
