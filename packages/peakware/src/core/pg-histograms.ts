/**
 * Sparse latency histograms in PostgreSQL: a row keeps core's histogram as two parallel
 * arrays, `rt_hist_i smallint[]` (bucket indexes, ascending) and `rt_hist_c` (their counts,
 * `integer[]` or `bigint[]`). Histograms add, so the rows of a group merge into one with
 * {@link mergedHistogramsSql}, and a percentile of the merge is a percentile of every call
 * (`sparseQuantile`), which per-row p99s never give.
 */

/**
 * A query giving, per distinct `keys` of relation `source`, the sum of its rows' histograms
 * as `rt_hist_i` / `rt_hist_c` (rows without one add nothing; a group with none has no row).
 * `keys` are plain column names of `source`.
 */
export function mergedHistogramsSql(source: string, keys: readonly string[]): string {
  const k = keys.join(', ');
  return `SELECT ${k}, array_agg(i ORDER BY i) AS rt_hist_i, array_agg(c ORDER BY i) AS rt_hist_c
    FROM (SELECT ${keys.map((key) => `h.${key}`).join(', ')}, x.i, sum(x.c)::int8 AS c
            FROM ${source} AS h, unnest(h.rt_hist_i, h.rt_hist_c) AS x(i, c)
           GROUP BY ${keys.map((key) => `h.${key}`).join(', ')}, x.i) AS merged
   GROUP BY ${k}`;
}

/**
 * Sparse `[index, count, …]` pairs as the two array literals a parameter of type `text[]`
 * carries (cast in SQL with `::smallint[]` / `::bigint[]`); nulls when there are none.
 */
export function histogramArrayLiterals(
  pairs: readonly number[] | undefined,
): [string | null, string | null] {
  if (pairs === undefined || pairs.length < 2) return [null, null];
  const i: number[] = [];
  const c: number[] = [];
  for (let k = 0; k + 1 < pairs.length; k += 2) {
    i.push(pairs[k]!);
    c.push(pairs[k + 1]!);
  }
  return [`{${i.join(',')}}`, `{${c.join(',')}}`];
}

/** A row's `rt_hist_i` / `rt_hist_c` (node-pg gives bigints as strings) back to sparse pairs. */
export function histogramFromArrays(
  indexes: readonly (number | string)[] | null | undefined,
  counts: readonly (number | string)[] | null | undefined,
): number[] | undefined {
  if (indexes == null || counts == null || indexes.length === 0) return undefined;
  const out: number[] = [];
  for (let k = 0; k < indexes.length; k++) out.push(Number(indexes[k]), Number(counts[k]));
  return out;
}
