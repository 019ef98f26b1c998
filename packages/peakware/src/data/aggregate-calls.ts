/**
 * What a select list computes across rows: the aggregate names the scatter merger knows
 * (count, sum, min, max, avg: mergeable from per-shard partials) and those it cannot merge,
 * and a select list's first window and aggregate call. Shared by the scatter rewrite, the
 * derived-table, set-operation and window checks.
 */
import { type SqlNode, walk } from './sql-parser.js';

/** Aggregates merged from per-shard partial results. */
export const AGGREGATES = new Set(['count', 'sum', 'min', 'max', 'avg']);
/** Aggregates that cannot be merged from per-shard partial results. */
export const OTHER_AGGREGATES = new Set([
  'array_agg',
  'string_agg',
  'bool_and',
  'bool_or',
  'every',
  'json_agg',
  'jsonb_agg',
  'json_object_agg',
  'jsonb_object_agg',
  'stddev',
  'stddev_pop',
  'stddev_samp',
  'variance',
  'var_pop',
  'var_samp',
  'percentile_cont',
  'percentile_disc',
  'mode',
  'bit_and',
  'bit_or',
  'corr',
  'covar_pop',
  'covar_samp',
  'regr_slope',
  'xmlagg',
  'any_value',
]);

/** True for the name of an aggregate function (mergeable or not). */
function isAggregateName(fn: string): boolean {
  return AGGREGATES.has(fn) || OTHER_AGGREGATES.has(fn);
}

/**
 * What a select list computes across rows, outside its scalar subqueries (each of those
 * runs whole on its shard): the first window function's name and the first aggregate's
 * (`count(*)` as `count`), when it has them.
 */
export function crossRowCalls(targets: unknown): { window?: string; aggregate?: string } {
  const out: { window?: string; aggregate?: string } = {};
  walk(targets, (o) => {
    if (o.SubLink !== undefined) return false;
    const f = o.FuncCall as SqlNode | undefined;
    if (f === undefined) return undefined;
    const name = (f.funcname as SqlNode[])
      .map((n) => (n.String as { sval: string }).sval)
      .join('.');
    if (f.over !== undefined) out.window ??= name;
    else if (f.agg_star === true || isAggregateName(name)) out.aggregate ??= name;
    return undefined;
  });
  return out;
}
