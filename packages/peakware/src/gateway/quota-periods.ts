/**
 * Quota periods: UTC days and UTC months. A period is named by its first day
 * (`2025-11-11`, `2025-11-01`), the key its usage is counted under.
 */

/** The day and month a moment falls in, and when each ends (epoch ms). */
export interface QuotaPeriods {
  day: string;
  month: string;
  dayEnd: number;
  monthEnd: number;
}

/** The periods of `now` (epoch ms). */
export function quotaPeriods(now: number): QuotaPeriods {
  const d = new Date(now);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  const day = d.toISOString().slice(0, 10);
  return {
    day,
    month: `${day.slice(0, 7)}-01`,
    dayEnd: Date.UTC(y, m, d.getUTCDate() + 1),
    monthEnd: Date.UTC(y, m + 1, 1),
  };
}
