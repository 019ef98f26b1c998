/**
 * Latency into HDR histograms (`hdr-histogram-js`, the JavaScript port of Gil Tene's
 * HdrHistogram that wrk2 uses): microsecond values, 3 significant digits, 1 µs to one hour.
 * One histogram for the whole run, one per scenario step, and one for the current second
 * that is read and reset every second for the time series.
 */
import * as hdr from 'hdr-histogram-js';

/** Percentiles of a histogram, ms. */
export interface LatencySummary {
  count: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

const HIGHEST_US = 3_600_000_000;

/** An HDR histogram of microseconds; values past an hour count as an hour. */
export function newHistogram(): hdr.Histogram {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_US,
    numberOfSignificantValueDigits: 3,
    autoResize: false,
    useWebAssembly: false,
  });
}

/** Records `ms` into `h` (µs, clamped to the histogram's range). */
export function recordMs(h: hdr.Histogram, ms: number): void {
  const us = Math.round(ms * 1000);
  h.recordValue(us < 1 ? 1 : us > HIGHEST_US ? HIGHEST_US : us);
}

const r3 = (us: number) => Math.round(us) / 1000;

/** The percentiles of `h`, ms. */
export function summarize(h: hdr.Histogram): LatencySummary {
  if (h.totalCount === 0)
    return { count: 0, meanMs: 0, p50Ms: 0, p90Ms: 0, p99Ms: 0, p999Ms: 0, maxMs: 0 };
  return { count: h.totalCount, meanMs: r3(h.mean), ...percentilesMs(h), p999Ms: at(h, 99.9) };
}

/**
 * p50, p90, p99 and the maximum of `h`, ms, without the mean (which walks every recorded
 * bucket): what the generator reads every second.
 */
export function percentilesMs(
  h: hdr.Histogram,
): Pick<LatencySummary, 'p50Ms' | 'p90Ms' | 'p99Ms' | 'maxMs'> {
  if (h.totalCount === 0) return { p50Ms: 0, p90Ms: 0, p99Ms: 0, maxMs: 0 };
  return { p50Ms: at(h, 50), p90Ms: at(h, 90), p99Ms: at(h, 99), maxMs: r3(h.maxValue) };
}

// HDR reports a bucket's upper edge: never more than the true maximum.
const at = (h: hdr.Histogram, p: number) => r3(Math.min(h.getValueAtPercentile(p), h.maxValue));

/** The histogram as compressed base64 (HdrHistogram's own interchange form), for reports and merging. */
export function encodeHistogram(h: hdr.Histogram): string {
  return hdr.encodeIntoCompressedBase64(h);
}

/** A histogram back from {@link encodeHistogram}. */
export function decodeHistogram(encoded: string): hdr.Histogram {
  return hdr.decodeFromCompressedBase64(encoded, 32, false);
}
