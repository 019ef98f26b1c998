/**
 * The guard's clock: Date.now(), read at most once per 64 calls within one synchronous run
 * and afresh in every new task (a queued microtask marks the cached value stale). Reading
 * the wall clock costs 50-350 ns depending on the machine's clock source, several times
 * per guarded call; Sentinel solves the same with a ticker thread (TimeUtil). The value is
 * never older than the current synchronous run, and within one run at most 64 calls old.
 */
let cached = 0;
let valid = false;
let uses = 0;

const invalidate = () => {
  valid = false;
};

/** Epoch ms, cached briefly (see the file comment). */
export function coarseNow(): number {
  if (valid && ++uses < 64) return cached;
  cached = Date.now();
  uses = 0;
  if (!valid) {
    valid = true;
    queueMicrotask(invalidate);
  }
  return cached;
}
