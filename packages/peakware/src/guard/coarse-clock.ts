/**
 * The guard's clock, after Sentinel's TimeUtil (adaptive since Sentinel 1.8.2): at high read
 * rates a ticker thread writes Date.now() into shared memory about every millisecond and the
 * hot path reads it there (a few ns) instead of asking the OS; at low rates every read is
 * Date.now().
 *
 * The ticker is not free: each of its ~1 000 wake-ups a second costs about 25 µs of CPU on
 * the VMs here (a timed futex wait and a timer interrupt), 2-3 % of a core per process, and
 * it puts one more runnable thread in front of the scheduler every millisecond. A
 * `Date.now()` costs 50-350 ns, so the ticker pays for itself only above roughly 100 000
 * reads a second. It therefore starts when reads come faster than START_READS_PER_MS and
 * parks itself when they fall below STOP_READS_PER_MS (measured over ~100 ticks), so a
 * service at a few thousand calls a second pays nothing for it.
 *
 * The ticker is one worker thread per process, started on first need and unref'd (it never
 * keeps the process alive). If a worker cannot be started, every read is Date.now().
 */
import { Worker } from 'node:worker_threads';

const RUNNING = 1;
const PARKED = 0;

/** Start the ticker when a batch of READ_BATCH reads takes less than this many ms (≈ 200 000/s). */
const START_READS_PER_MS = 200;
/** The ticker parks when fewer reads than this per ms came in over its last window (≈ 100 000/s). */
const STOP_READS_PER_MS = 100;
/** Ticks per window over which the ticker counts reads. */
const WINDOW_TICKS = 100;
/** Reads between two rate checks while the ticker is parked (a power of two). */
const READ_BATCH = 1024;

// [0]: the time (Float64); then Int32 slots: [0] state, [1] reads since the ticker's last window, [2] always 0 (sleep target).
const shared = new SharedArrayBuffer(8 + 4 * 3);
const time = new Float64Array(shared, 0, 1);
const control = new Int32Array(shared, 8, 3);

const TICKER = `
const { workerData } = require('node:worker_threads');
const time = new Float64Array(workerData, 0, 1);
const control = new Int32Array(workerData, 8, 3);
for (;;) {
  let start = Date.now();
  Atomics.store(control, 1, 0);
  for (let tick = 0; tick < ${WINDOW_TICKS}; tick++) {
    time[0] = Date.now();
    Atomics.store(control, 0, ${RUNNING});
    Atomics.wait(control, 2, 0, 1);
  }
  const elapsed = Math.max(1, Date.now() - start);
  if (Atomics.exchange(control, 1, 0) < elapsed * ${STOP_READS_PER_MS}) {
    Atomics.store(control, 0, ${PARKED});
    Atomics.wait(control, 0, ${PARKED});
  }
}
`;

let worker: Worker | undefined;
let unavailable = false;

function wake(): void {
  if (unavailable) return;
  if (worker === undefined) {
    try {
      worker = new Worker(TICKER, { eval: true, workerData: shared });
      worker.unref();
      worker.on('error', () => {
        unavailable = true;
        Atomics.store(control, 0, PARKED);
      });
    } catch {
      unavailable = true;
    }
    return;
  }
  Atomics.notify(control, 0);
}

let last = 0;
let parkedReads = 0;
let batchStart = 0;

/**
 * Epoch ms: from the ticker (at most ~1 ms old) while reads are frequent, else Date.now().
 * Never goes backwards: switching between the two sources could otherwise step back a
 * millisecond or two, and windows must not see time run backwards.
 */
export function coarseNow(): number {
  let now: number;
  if (control[0] === RUNNING) {
    control[1] = (control[1] as number) + 1;
    now = time[0]!;
  } else {
    now = Date.now();
    if ((++parkedReads & (READ_BATCH - 1)) === 0) {
      if (now - batchStart < READ_BATCH / START_READS_PER_MS) wake();
      batchStart = now;
    }
  }
  if (now < last) return last;
  last = now;
  return now;
}

/** Whether the ticker thread is running (for tests and diagnostics). */
export function coarseClockTicking(): boolean {
  return control[0] === RUNNING;
}
