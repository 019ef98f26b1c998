/** The live progress line `peak stress run` rewrites once a second on a terminal. */
import type { RunProgress } from './stress-run.js';

/** One line: elapsed/total, target, throughput, totals, in flight, p99 of the last second. */
export function formatProgress(p: RunProgress): string {
  const pct = p.durationS > 0 ? Math.min(100, Math.round((p.elapsedS / p.durationS) * 100)) : 100;
  return (
    `[${String(p.elapsedS).padStart(4)}s/${p.durationS}s ${String(pct).padStart(3)}%] ` +
    `target ${round(p.target)}  ${round(p.throughput)}/s  ok ${p.ok}  err ${p.errors}` +
    `${p.dropped > 0 ? `  dropped ${p.dropped}` : ''}  in flight ${p.inFlight}  p99 ${p.p99Ms} ms`
  );
}

function round(n: number): string {
  return n >= 100 ? String(Math.round(n)) : String(Math.round(n * 10) / 10);
}
