/**
 * Exact decimal arithmetic on the strings `pg` returns for `bigint` and `numeric`, for
 * merging SUM / COUNT / AVG and ordering across shards without float rounding.
 */

interface Scaled {
  v: bigint;
  scale: number;
}

const DECIMAL = /^(-)?(\d*)(?:\.(\d*))?$/;

/** True when `s` is a plain decimal number (`-12.50`, `7`). */
export function isDecimalString(s: string): boolean {
  return DECIMAL.test(s) && /\d/.test(s);
}

function parse(s: string): Scaled {
  const m = DECIMAL.exec(s.trim());
  if (m === null) throw new RangeError(`not a decimal: ${s}`);
  const frac = m[3] ?? '';
  const v = BigInt(`${m[2] || '0'}${frac}`);
  return { v: m[1] === '-' ? -v : v, scale: frac.length };
}

function align(a: Scaled, b: Scaled): [bigint, bigint, number] {
  const scale = Math.max(a.scale, b.scale);
  return [a.v * 10n ** BigInt(scale - a.scale), b.v * 10n ** BigInt(scale - b.scale), scale];
}

function format(v: bigint, scale: number): string {
  const neg = v < 0n;
  let digits = (neg ? -v : v).toString();
  if (scale === 0) return `${neg ? '-' : ''}${digits}`;
  digits = digits.padStart(scale + 1, '0');
  return `${neg ? '-' : ''}${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
}

/** `a + b` exactly, keeping the larger scale (as PostgreSQL does for numeric). */
export function addDecimal(a: string, b: string): string {
  const [x, y, scale] = align(parse(a), parse(b));
  return format(x + y, scale);
}

/** Compares two decimal strings numerically. */
export function compareDecimal(a: string, b: string): number {
  const [x, y] = align(parse(a), parse(b));
  return x < y ? -1 : x > y ? 1 : 0;
}

/** `sum / count` rounded half away from zero to `scale` digits (AVG from SUM and COUNT). */
export function divideDecimal(sum: string, count: string, scale = 16): string {
  const s = parse(sum);
  const c = parse(count);
  const [num, den] = align(s, c);
  if (den === 0n) throw new RangeError('division by zero');
  const factor = 10n ** BigInt(scale);
  let q = (num * factor * 2n) / den;
  q = q >= 0n ? (q + 1n) / 2n : (q - 1n) / 2n;
  return format(q, scale);
}
