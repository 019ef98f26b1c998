/** Starting, reading and stopping config subscriber processes for the cross-process tests. */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ConfigEntry, ConfigOrigin } from '../src/config/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** A running subscriber child process and what it has printed. */
export interface Subscriber {
  child: ChildProcess;
  origin: ConfigOrigin;
  /** Latest entry per `group/key`, from the ready line and every change line. */
  entries: Map<string, ConfigEntry>;
  /** Every change line, in order. */
  changes: ConfigEntry[];
}

/** Spawns `config-fixture-subscriber.js` and waits (bounded) for its ready line. */
export function spawnSubscriber(
  env: Record<string, string>,
  timeoutMs = 15_000,
): Promise<Subscriber> {
  const child = spawn(process.execPath, [path.join(here, 'config-fixture-subscriber.js')], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve, reject) => {
    let out = '';
    let sub: Subscriber | undefined;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`subscriber did not start within ${timeoutMs} ms: ${stderr}`));
    }, timeoutMs);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      let nl = out.indexOf('\n');
      while (nl >= 0) {
        const line = JSON.parse(out.slice(0, nl)) as {
          ready?: ConfigOrigin;
          entries?: ConfigEntry[];
          entry?: ConfigEntry;
        };
        out = out.slice(nl + 1);
        nl = out.indexOf('\n');
        if (line.ready !== undefined) {
          clearTimeout(timer);
          sub = { child, origin: line.ready, entries: new Map(), changes: [] };
          for (const e of line.entries ?? []) sub.entries.set(`${e.group}/${e.key}`, e);
          resolve(sub);
        } else if (line.entry !== undefined && sub !== undefined) {
          sub.entries.set(`${line.entry.group}/${line.entry.key}`, line.entry);
          sub.changes.push(line.entry);
        }
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (sub === undefined)
        reject(new Error(`subscriber exited with ${code} before it was ready: ${stderr}`));
    });
  });
}

/** SIGTERMs (SIGKILL after the bound) and waits for the exit. */
export function stopSubscriber(s: Subscriber, timeoutMs = 10_000): Promise<number | null> {
  if (s.child.exitCode !== null || s.child.signalCode !== null)
    return Promise.resolve(s.child.exitCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => s.child.kill('SIGKILL'), timeoutMs);
    s.child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    s.child.kill('SIGTERM');
  });
}
