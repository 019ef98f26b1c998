/**
 * A faster reader of PostgreSQL's `timestamptz` text for the node's own pools. node-pg turns
 * every timestamptz into a Date through `postgres-date`, three regular expressions and a
 * handful of parseInts a value: 3 % of the CPU of a one-process `bench mq` run under
 * `perf` (every delivered message has two). PostgreSQL's own output (DateStyle ISO, the
 * default) is one fixed shape, `YYYY-MM-DD HH:MM:SS[.ffffff]±HH[:MM[:SS]]`, which this reads
 * by character codes; anything else (infinity, BC dates, years outside 1000–9999, another
 * DateStyle) goes to node-pg's own parser. Either way the result is the Date node-pg gives,
 * to the millisecond (the fraction truncated, as node-pg truncates it).
 */
import pg from 'pg';

const TIMESTAMPTZ_OID = 1184;
const ZERO = 48;

/** The digits at `s[at, at + n)` as a number, or -1 when one of them is not a digit. */
function digits(s: string, at: number, n: number): number {
  let v = 0;
  for (let i = at; i < at + n; i++) {
    const d = s.charCodeAt(i) - ZERO;
    // (past the end, charCodeAt is NaN, which no comparison lets through)
    if (!(d >= 0 && d <= 9)) return -1;
    v = v * 10 + d;
  }
  return v;
}

/** The epoch ms of PostgreSQL's ISO timestamptz text, or undefined when it is not that shape. */
export function timestamptzMs(s: string): number | undefined {
  const n = s.length;
  if (
    n < 22 ||
    s.charCodeAt(4) !== 45 || // -
    s.charCodeAt(7) !== 45 ||
    s.charCodeAt(10) !== 32 || // space
    s.charCodeAt(13) !== 58 || // :
    s.charCodeAt(16) !== 58
  )
    return undefined;
  const year = digits(s, 0, 4);
  const month = digits(s, 5, 2);
  const day = digits(s, 8, 2);
  const hour = digits(s, 11, 2);
  const minute = digits(s, 14, 2);
  const second = digits(s, 17, 2);
  if (
    year < 1000 ||
    month < 1 ||
    month > 12 ||
    day < 1 ||
    day > 31 ||
    hour < 0 ||
    hour > 23 ||
    minute < 0 ||
    minute > 59 ||
    second < 0 ||
    second > 60
  )
    return undefined;
  let at = 19;
  let ms = 0;
  if (s.charCodeAt(at) === 46) {
    // .f to .ffffff: the first three digits are the milliseconds (the rest truncated)
    at++;
    let scale = 100;
    while (at < n) {
      const d = s.charCodeAt(at) - ZERO;
      if (!(d >= 0 && d <= 9)) break;
      ms += d * scale;
      scale = scale === 1 ? 0 : scale / 10;
      at++;
    }
    if (at === 20) return undefined;
  }
  const sign = s.charCodeAt(at);
  if (sign !== 43 && sign !== 45) return undefined; // + or -
  const oh = digits(s, at + 1, 2);
  if (oh < 0) return undefined;
  let offset = oh * 3600;
  at += 3;
  if (at < n) {
    if (s.charCodeAt(at) !== 58 || n < at + 3) return undefined;
    const om = digits(s, at + 1, 2);
    if (om < 0) return undefined;
    offset += om * 60;
    at += 3;
    if (at < n) {
      if (s.charCodeAt(at) !== 58 || n !== at + 3) return undefined;
      const os = digits(s, at + 1, 2);
      if (os < 0) return undefined;
      offset += os;
      at += 3;
    }
  }
  if (at !== n) return undefined;
  const utc = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  return utc - (sign === 45 ? -offset : offset) * 1000;
}

/** node-pg's timestamptz parser as registered when this module loads (its default). */
const fallback = pg.types.getTypeParser(TIMESTAMPTZ_OID, 'text') as (s: string) => unknown;

/** A timestamptz text as node-pg would give it (a Date, or what its parser gives for the rest). */
export function parseTimestamptz(s: string): unknown {
  const ms = timestamptzMs(s);
  return ms === undefined ? fallback(s) : new Date(ms);
}

/**
 * Type parsers for a pool: node-pg's, with {@link parseTimestamptz} for timestamptz text.
 * Given as a pool's `types`, it leaves the process-wide parsers (an application's own
 * pools) as they are.
 */
export const peakPgTypes: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === TIMESTAMPTZ_OID && format !== 'binary'
      ? parseTimestamptz
      : pg.types.getTypeParser(oid, format ?? 'text')) as pg.CustomTypesConfig['getTypeParser'],
};
