/**
 * The shape every benchmark has. A benchmark runs Peakware and its named peers side by side
 * in one process run on loopback, several times, and reports medians and ratios: the
 * machine is shared and noisy, so single runs and absolute numbers mislead.
 */

import { readFile } from 'node:fs/promises';

/** What the runner hands a benchmark. */
export interface BenchOptions {
  /** How many measured runs; medians are taken over them. */
  runs: number;
  /** A shorter run (CI smoke, quick checks). */
  quick: boolean;
  /** Report progress on long work (goes to stderr, never into `--json` output). */
  progress(message: string): void;
}

/** What a benchmark reports. */
export interface BenchResult {
  /** Raw figures by name, e.g. `peakware.opsPerSec` (medians). */
  figures: Record<string, number>;
  /** Ratios by name, e.g. `peakware/naive.opsPerSec`: the claim. */
  ratios: Record<string, number>;
  /** A table for people: first row is the header. */
  table: (string | number)[][];
  /** Anything a reader needs to interpret the numbers. */
  notes?: string[];
}

/** One runnable benchmark: `bench/src/benchmarks/<name>.ts` exports it as `benchmark`. */
export interface Benchmark {
  name: string;
  /** One line: what is measured against what. */
  description: string;
  run(options: BenchOptions): Promise<BenchResult>;
}

/** The median of a list of numbers. */
export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Rounds to a few significant digits for display. */
export function round(value: number, digits = 3): number {
  if (!Number.isFinite(value) || value === 0) return value;
  const scale = 10 ** (digits - 1 - Math.floor(Math.log10(Math.abs(value))));
  return Math.round(value * scale) / scale;
}

/** The machine's busy and total CPU ticks so far (`/proc/stat`), or undefined off Linux. */
async function cpuTicks(): Promise<{ busy: number; total: number } | undefined> {
  const text = await readFile('/proc/stat', 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  // cpu  user nice system idle iowait irq softirq steal ...
  const f = (text.split('\n', 1)[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return { busy: total - idle, total };
}

/**
 * Waits until the machine has been nearly idle (under `busyShare` of its cores) for a whole
 * second, at most `maxMs`; resolves with the share last seen. A run that starts while the
 * previous one's processes still exit and its data folders are still being removed measures
 * that cleanup, not itself.
 */
export async function quietMachine(busyShare = 0.15, maxMs = 30_000): Promise<number> {
  const until = Date.now() + maxMs;
  let share = 1;
  for (;;) {
    const a = await cpuTicks();
    await new Promise((r) => setTimeout(r, 1000));
    const b = await cpuTicks();
    if (a === undefined || b === undefined) return 0;
    share = (b.busy - a.busy) / Math.max(1, b.total - a.total);
    if (share < busyShare || Date.now() >= until) return share;
  }
}
