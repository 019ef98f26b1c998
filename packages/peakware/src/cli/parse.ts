/** Small parsers for option values, each failing with a UsageError naming the option and the text it was given. */
import { UsageError } from '../core/errors.js';

/** What a number option accepts: bounds (inclusive) and whether it must be whole. */
export interface NumberRange {
  min?: number;
  max?: number;
  /** Only whole numbers (digits, an optional minus sign). */
  integer?: boolean;
}

/**
 * Why `text` is not a number in `range` (`must be a whole number from 1 to 300`), or
 * undefined when it is one. Shared by every number option so they all say the same thing.
 */
export function numberProblem(text: string, range: NumberRange = {}): string | undefined {
  const min = range.min ?? Number.NEGATIVE_INFINITY;
  const max = range.max ?? Number.POSITIVE_INFINITY;
  const n = Number(text);
  const shaped = range.integer === true ? /^-?\d+$/.test(text.trim()) : text.trim() !== '';
  if (shaped && Number.isFinite(n) && n >= min && n <= max) return undefined;
  const kind = range.integer === true ? 'a whole number' : 'a number';
  const bounds =
    range.min !== undefined && range.max !== undefined
      ? ` from ${range.min} to ${range.max}`
      : range.min !== undefined
        ? ` of ${range.min} or more`
        : range.max !== undefined
          ? ` of ${range.max} or less`
          : '';
  return `must be ${kind}${bounds}`;
}

/**
 * `value` (an option's text) as a number in `range`; a UsageError like `--limit must be a
 * whole number from 1 to 1000, got 'abc'` otherwise. `option` is how the user wrote it.
 */
export function parseNumber(value: unknown, option: string, range: NumberRange = {}): number {
  if (typeof value !== 'string') {
    throw new UsageError(`${option} needs a value`, { details: { input: option } });
  }
  const text = value;
  const problem = numberProblem(text, range);
  if (problem !== undefined) {
    throw new UsageError(`${option} ${problem}, got '${text}'`, { details: { input: option } });
  }
  return Number(text);
}

/** An integer option in 0..max (a port by default). */
export function parsePort(value: unknown, option: string, max = 65535): number {
  return parseNumber(value, option, { min: 0, max, integer: true });
}

/** The number option `--name` of `values` in `range`, or undefined when it was not given. */
export function numberOption(
  values: Record<string, unknown>,
  name: string,
  range: NumberRange = {},
): number | undefined {
  const v = values[name];
  return v === undefined ? undefined : parseNumber(v, `--${name}`, range);
}

const TIME_UNITS_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/**
 * A time option as epoch milliseconds: an ISO time (`2026-12-12T20:00:00+08:00`), epoch
 * milliseconds, or a span from now in s/m/h/d — ahead of now written `+10m` (a schedule),
 * back from now written `30m` (a query's `--from`). `relative` says which of the two the
 * option takes; a UsageError naming the option and the forms it takes otherwise.
 */
export function parseTime(
  value: string,
  option: string,
  relative: 'ahead' | 'ago',
  nowMs = Date.now(),
): number {
  const text = value.trim();
  const span = (relative === 'ahead' ? /^\+(\d+(?:\.\d+)?)(s|m|h|d)$/ : /^(\d+)(s|m|h|d)$/).exec(
    text,
  );
  if (span !== null) {
    const ms = Number(span[1]) * TIME_UNITS_MS[span[2] as keyof typeof TIME_UNITS_MS];
    return relative === 'ahead' ? nowMs + ms : nowMs - ms;
  }
  if (/^\d+$/.test(text) && (relative === 'ago' || text.length >= 12)) return Number(text);
  const t = Date.parse(text);
  if (/^\d{4}-\d\d-\d\d/.test(text) && !Number.isNaN(t)) return t;
  const spanForm = relative === 'ahead' ? '+N[s|m|h|d] from now' : 'N[s|m|h|d] ago (30m, 2h)';
  throw new UsageError(
    `${option} must be ${spanForm}, an ISO time (2026-12-12T20:00:00+08:00) or epoch milliseconds, got '${value}'`,
    { details: { input: option } },
  );
}

/**
 * A span option (`--every 1d`): N[s|m|h|d] as milliseconds, at least `minMs`; a UsageError
 * naming the option and the forms it takes otherwise.
 */
export function parseSpan(value: string, option: string, minMs = 1): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h|d)$/.exec(value.trim());
  const ms =
    m === null ? Number.NaN : Number(m[1]) * TIME_UNITS_MS[m[2] as keyof typeof TIME_UNITS_MS];
  if (!Number.isSafeInteger(ms) || ms < minMs)
    throw new UsageError(
      `${option} must be N[s|m|h|d] of at least ${spanText(minMs)} (1d, 12h, 90m), got '${value}'`,
      { details: { input: option } },
    );
  return ms;
}

/** A span in ms as the largest whole unit that writes it (`1d`, `36h`, `90m`, `45s`, `1500ms`). */
export function spanText(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const)
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}
