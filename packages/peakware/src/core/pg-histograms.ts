/**
 * Sparse latency histograms in PostgreSQL. A row keeps core's histogram in one `bytea`
 * column of 5-byte entries: the bucket index (one byte, 0..231) and its count (unsigned
 * 32-bit, big-endian, what `int4send` writes). Entries add, so concatenating the rows of a
 * group (`string_agg(rt_hist, ''::bytea)`, {@link HISTOGRAM_CONCAT_SQL}) is their merge:
 * {@link decodeHistogram} adds entries of the same index while it reads. PostgreSQL only
 * concatenates bytes; the adding happens here, where a dense array of 232 counters makes it
 * cheap. (Unnesting index and count arrays and adding them in SQL was 5–8× slower to read.)
 */
import { HISTOGRAM_BUCKETS, sparseHistogram } from './latency-histogram.js';

const ENTRY_BYTES = 5;
const MAX_ENTRY_COUNT = 0xffffffff;

/** SQL aggregate merging the `rt_hist` column of a group: the concatenation of its entries. */
export const HISTOGRAM_CONCAT_SQL = `string_agg(rt_hist, ''::bytea)`;

/**
 * Sparse `[index, count, …]` pairs as the bytes of an `rt_hist` column (null when there are
 * none). A count above 2³²−1 is written as several entries of the same index.
 */
export function encodeHistogram(pairs: readonly number[] | undefined): Buffer | null {
  if (pairs === undefined || pairs.length < 2) return null;
  let entries = 0;
  for (let k = 1; k < pairs.length; k += 2)
    entries += Math.max(1, Math.ceil(pairs[k]! / MAX_ENTRY_COUNT));
  const out = Buffer.allocUnsafe(entries * ENTRY_BYTES);
  let at = 0;
  for (let k = 0; k + 1 < pairs.length; k += 2) {
    const index = pairs[k]!;
    let count = pairs[k + 1]!;
    do {
      const part = Math.min(count, MAX_ENTRY_COUNT);
      out[at] = index;
      out.writeUInt32BE(part, at + 1);
      at += ENTRY_BYTES;
      count -= part;
    } while (count > 0);
  }
  return out;
}

/** Dense scratch counters for decoding; zeroed again before each decode returns. */
const scratch = new Float64Array(HISTOGRAM_BUCKETS);

/**
 * The bytes of one `rt_hist` value, or of several concatenated, as sparse pairs (indexes
 * ascending, entries of the same index added). Undefined for null or no entries. Entries
 * with an index outside the histogram, and a trailing partial entry, are skipped.
 */
export function decodeHistogram(bytes: Uint8Array | null | undefined): number[] | undefined {
  if (bytes == null || bytes.length < ENTRY_BYTES) return undefined;
  const into = decodeHistogramInto(scratch, bytes);
  const out = into > 0 ? sparseHistogram(scratch) : undefined;
  scratch.fill(0);
  return out;
}

/** Adds the entries of `bytes` (one or more `rt_hist` values) into dense `into`; returns the samples added. */
export function decodeHistogramInto(into: Float64Array, bytes: Uint8Array): number {
  let n = 0;
  for (let at = 0; at + ENTRY_BYTES <= bytes.length; at += ENTRY_BYTES) {
    const index = bytes[at]!;
    if (index >= HISTOGRAM_BUCKETS) continue;
    const count =
      bytes[at + 1]! * 0x1000000 +
      ((bytes[at + 2]! << 16) | (bytes[at + 3]! << 8) | bytes[at + 4]!);
    into[index]! += count;
    n += count;
  }
  return n;
}

/**
 * SQL for the calls an `rt_hist` value (column `column`) holds in buckets above index
 * `aboveIndexSql` (an SQL expression): decoded in SQL, for per-row filters such as a latency
 * objective's slow calls.
 */
export function histogramCountAboveSql(column: string, aboveIndexSql: string): string {
  return `(SELECT coalesce(sum(get_byte(${column}, e * 5 + 1)::int8 * 16777216
                             + get_byte(${column}, e * 5 + 2) * 65536
                             + get_byte(${column}, e * 5 + 3) * 256
                             + get_byte(${column}, e * 5 + 4)), 0)
             FROM generate_series(0, coalesce(length(${column}), 0) / 5 - 1) AS e
            WHERE get_byte(${column}, e * 5) > ${aboveIndexSql})`;
}

/**
 * SQL giving the `rt_hist` bytes of parallel arrays `indexes` / `counts` (an index array and
 * a count array, as migrations 30 and 31 stored them), for the migration to this format.
 * With `wideCounts` (bigint counts that may pass 2³²−1) a larger count is split into several
 * entries, at about 2.4× the cost a row; without it every count must fit 32 bits (integer
 * counts do).
 */
export function histogramFromArraysSql(
  indexes: string,
  counts: string,
  wideCounts = false,
): string {
  const entry = (c: string) =>
    `substring(int2send(x.i::int2) FROM 2 FOR 1) || substring(int8send((${c})::int8) FROM 5 FOR 4)`;
  if (!wideCounts)
    return `(SELECT string_agg(${entry('x.c')}, ''::bytea)
             FROM unnest(${indexes}, ${counts}) AS x(i, c) WHERE x.c > 0)`;
  return `(SELECT string_agg(${entry(`least(x.c - part * ${MAX_ENTRY_COUNT}, ${MAX_ENTRY_COUNT})`)}, ''::bytea)
             FROM unnest(${indexes}, ${counts}) AS x(i, c),
                  generate_series(0, greatest(0, ceil(x.c::numeric / ${MAX_ENTRY_COUNT})::int - 1)) AS part
            WHERE x.c > 0)`;
}
