/**
 * The guard's clock, after Sentinel's TimeUtil: a ticker thread writes Date.now() into
 * shared memory about every millisecond and the hot path reads it there (a few ns) instead
 * of asking the OS (50-350 ns per read on the machines here, several reads per call).
 * The value is at most ~1 ms old (more only if the OS delays the ticker thread), however
 * long the main thread's synchronous work runs.
 *
 * The ticker is one worker thread per process, started on first use and unref'd (it never
 * keeps the process alive). After 5 s without a read it parks itself; the next read gets
 * Date.now() directly and wakes it. If a worker cannot be started, every read is Date.now().
 */
import { Worker } from 'node:worker_threads';

const RUNNING = 1;
const PARKED = 0;
const IDLE_TICKS = 5000;

// [0]: the time (Float64); then Int32 slots: [0] state, [1] read since last tick, [2] always 0 (sleep target).
const shared = new SharedArrayBuffer(8 + 4 * 3);
const time = new Float64Array(shared, 0, 1);
const control = new Int32Array(shared, 8, 3);

const TICKER = `
const { workerData } = require('node:worker_threads');
const time = new Float64Array(workerData, 0, 1);
const control = new Int32Array(workerData, 8, 3);
let idle = 0;
for (;;) {
  time[0] = Date.now();
  Atomics.store(control, 0, ${RUNNING});
  Atomics.wait(control, 2, 0, 1);
  if (Atomics.exchange(control, 1, 0) === 1) idle = 0;
  else if (++idle > ${IDLE_TICKS}) {
    Atomics.store(control, 0, ${PARKED});
    Atomics.wait(control, 0, ${PARKED});
    idle = 0;
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

/**
 * Epoch ms from the ticker (at most ~1 ms old), or Date.now() while it is not running.
 * Never goes backwards: switching between the two sources could otherwise step back a
 * millisecond or two, and windows must not see time run backwards.
 */
export function coarseNow(): number {
  let now: number;
  if (control[0] === RUNNING) {
    control[1] = 1;
    now = time[0]!;
  } else {
    wake();
    now = Date.now();
  }
  if (now < last) return last;
  last = now;
  return now;
}
