/**
 * The sliding window (record + read) against a naive one. Workload: a resource under load;
 * every operation records a pass and a completion with a response time, and every 100th
 * operation reads what a guard rule or dashboard reads (pass count, average RT, p99).
 *
 * The naive window keeps every event with its timestamp in an array, drops expired events
 * from the front on read, and sorts response times for the percentile: what code written
 * without a bucketed window usually does.
 */
import { SlidingWindow } from 'peakware/core';
import { type Benchmark, median, round } from '../bench.js';

interface Window {
  record(rtMs: number): void;
  read(): number;
}

class NaiveWindow implements Window {
  #times: number[] = [];
  #rts: number[] = [];
  #head = 0;
  constructor(private readonly intervalMs: number) {}

  record(rtMs: number): void {
    this.#times.push(Date.now());
    this.#rts.push(rtMs);
  }

  read(): number {
    const cutoff = Date.now() - this.intervalMs;
    while (this.#head < this.#times.length && this.#times[this.#head]! <= cutoff) this.#head++;
    if (this.#head > 100_000) {
      this.#times = this.#times.slice(this.#head);
      this.#rts = this.#rts.slice(this.#head);
      this.#head = 0;
    }
    const live = this.#rts.slice(this.#head);
    const pass = live.length;
    let sum = 0;
    for (const rt of live) sum += rt;
    live.sort((a, b) => a - b);
    const p99 = live[Math.min(live.length - 1, Math.ceil(0.99 * live.length) - 1)] ?? 0;
    return pass + sum / Math.max(1, pass) + p99;
  }
}

class PeakWindow implements Window {
  readonly #w = new SlidingWindow({ intervalMs: 1000, buckets: 2 });
  record(rtMs: number): void {
    this.#w.addPass();
    this.#w.addComplete(rtMs);
  }
  read(): number {
    return this.#w.pass() + this.#w.rtAvg() + this.#w.percentile(0.99);
  }
}

/**
 * Ops/s over `ops` operations or `maxMs` of wall time, whichever ends first; every
 * `readEvery`-th operation also reads (0: never).
 */
function measure(make: () => Window, ops: number, maxMs: number, readEvery = 100): number {
  const w = make();
  let sink = 0;
  const start = process.hrtime.bigint();
  const limit = BigInt(maxMs) * 1_000_000n;
  let done = 0;
  while (done < ops) {
    for (let i = 0; i < 1000; i++, done++) {
      w.record((done % 97) * 0.37);
      if (readEvery > 0 && done % readEvery === readEvery - 1) sink += w.read();
    }
    if (process.hrtime.bigint() - start > limit) break;
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (sink === -1) throw new Error('unreachable');
  return done / seconds;
}

export const benchmark: Benchmark = {
  name: 'sliding-window',
  description: 'SlidingWindow record+read ops/s vs a naive timestamped-event window (1 s window)',
  async run({ runs, quick, progress }) {
    const ops = quick ? 200_000 : 2_000_000;
    const peak: number[] = [];
    const naive: number[] = [];
    const maxMs = quick ? 1000 : 3000;
    measure(() => new PeakWindow(), ops / 10, maxMs); // warm-up both
    measure(() => new NaiveWindow(1000), ops / 10, maxMs);
    for (let r = 0; r < runs; r++) {
      progress(`run ${r + 1}/${runs}`);
      // Alternate the order so drift on a shared machine hits both alike.
      if (r % 2 === 0) {
        peak.push(measure(() => new PeakWindow(), ops, maxMs));
        naive.push(measure(() => new NaiveWindow(1000), ops, maxMs));
      } else {
        naive.push(measure(() => new NaiveWindow(1000), ops, maxMs));
        peak.push(measure(() => new PeakWindow(), ops, maxMs));
      }
    }
    // Record-only: the hot path with no reads, where an array push is hard to beat.
    const peakRec: number[] = [];
    const naiveRec: number[] = [];
    for (let r = 0; r < runs; r++) {
      progress(`record-only run ${r + 1}/${runs}`);
      peakRec.push(measure(() => new PeakWindow(), ops, maxMs, 0));
      naiveRec.push(measure(() => new NaiveWindow(1000), ops, maxMs, 0));
    }
    const row = (label: string, workload: string, xs: number[]) => [
      label,
      workload,
      round(median(xs), 4),
      round(Math.min(...xs), 4),
      round(Math.max(...xs), 4),
    ];
    const p = median(peak);
    const n = median(naive);
    const pr = median(peakRec);
    const nr = median(naiveRec);
    return {
      figures: {
        'peakware.opsPerSec': round(p, 4),
        'naive.opsPerSec': round(n, 4),
        'peakware.recordOnly.opsPerSec': round(pr, 4),
        'naive.recordOnly.opsPerSec': round(nr, 4),
      },
      ratios: {
        'peakware/naive.opsPerSec': round(p / n),
        'peakware/naive.recordOnly.opsPerSec': round(pr / nr),
      },
      table: [
        ['implementation', 'workload', 'ops/s (median)', 'min', 'max'],
        row('peakware SlidingWindow', 'record + read every 100', peak),
        row('naive event array', 'record + read every 100', naive),
        row('peakware SlidingWindow', 'record only', peakRec),
        row('naive event array', 'record only', naiveRec),
      ],
      notes: [
        `Up to ${ops} operations or ${quick ? 1 : 3} s per run; each records pass + completion (pass + complete with RT); reads are pass count, average RT and p99.`,
        'The naive window also holds one entry per event in the window (unbounded memory under load); the sliding window is fixed-size.',
      ],
    };
  },
};
