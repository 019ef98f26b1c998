/**
 * The metrics history's tiers: per second for an hour (telemetry's pushed metrics, kept
 * that long), per minute for a day, per hour for 7 days, so a chart covers the last week
 * while a live one still moves every second. Shared by the server half (rollups, retention)
 * and the browser app (which range asks for which step).
 */

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** One tier: its bucket width and how far back it is kept. */
export interface MetricsTier {
  stepSeconds: 1 | 60 | 3600;
  keepMs: number;
}

/** The tiers, finest first. */
export const METRICS_TIERS: readonly MetricsTier[] = [
  { stepSeconds: 1, keepMs: HOUR },
  { stepSeconds: 60, keepMs: DAY },
  { stepSeconds: 3600, keepMs: 7 * DAY },
];

/** How far back the history reaches. */
export const METRICS_HISTORY_MS = 7 * DAY;

/** The finest tier that still holds `fromMs` at `nowMs` (the coarsest when none does). */
export function tierFor(fromMs: number, nowMs: number): MetricsTier {
  const age = nowMs - fromMs;
  return METRICS_TIERS.find((t) => age <= t.keepMs) ?? METRICS_TIERS.at(-1)!;
}
