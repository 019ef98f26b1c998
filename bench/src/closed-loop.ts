/** A closed-loop load: a fixed number of callers, each calling again as soon as it is answered. */

/** One call of the load; `n` counts calls from 0. */
export type Call = (n: number) => Promise<void>;

/** What a closed-loop window measured: calls answered a second, latency quantiles (ms), errors. */
export interface ClosedLoopResult {
  perSec: number;
  p50: number;
  p99: number;
  errors: number;
  firstError: string;
}

/** Closed loop: `inFlight` workers call back to back for `ms`. */
export async function measureClosedLoop(
  call: Call,
  inFlight: number,
  ms: number,
): Promise<ClosedLoopResult> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError = '';
  let n = 0;
  const started = performance.now();
  const end = started + ms;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        try {
          await call(n++);
          latencies.push(performance.now() - t);
        } catch (err) {
          errors++;
          firstError ||= String(err);
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const q = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? Number.NaN;
  return { perSec: latencies.length / seconds, p50: q(0.5), p99: q(0.99), errors, firstError };
}
