/**
 * The scatter rewrite of a SELECT that spans shards, built once per statement: ORDER BY
 * and GROUP BY keys not in the select list become hidden columns (`__peak_<n>`), AVG
 * becomes SUM plus a hidden COUNT, LIMIT / OFFSET come off the statement (each shard
 * returns OFFSET + LIMIT rows through a pushed-down `LIMIT $k`), and the merge plan
 * says how to combine the shards' rows: plain DISTINCT stays on each shard and the merger
 * drops the rows repeated across shards; HAVING moves to the merger (`having-filter.ts`).
 * What cannot be merged is refused with the reason.
 */
import { AGGREGATES, OTHER_AGGREGATES } from './aggregate-calls.js';
import { checkDerivedTables } from './derived-tables.js';
import { compileHaving, type HavingExpr } from './having-filter.js';
import type { MergeOrder, MergePlan, OutputColumn } from './result-merger.js';
import { unsupported } from './route-errors.js';
import { createTemplate, renumberParams, type Template } from './shard-sql-template.js';
import type { ShardingLayout } from './sharding-layout.js';
import { type SqlNode, sameExpression, walk } from './sql-parser.js';
import { findTables, fromReadsSharded } from './statement-tables.js';
import { columnOf, type ValueRef, valueRefOf } from './value-ref.js';
import { checkWindowPartitions } from './window-partitions.js';

/** A scatter SELECT's per-shard template, merge plan, and its LIMIT / OFFSET values. */
export interface ScatterPlan {
  template: Template;
  merge: Omit<MergePlan, 'limit' | 'offset' | 'sortInputs'>;
  limit: ValueRef | undefined;
  offset: ValueRef | undefined;
}

/** One ORDER BY item as a merge key; `column` finds the output column it sorts by. */
export function mergeOrder(
  sql: string,
  item: SqlNode,
  column: (expr: SqlNode) => number,
): MergeOrder {
  const sb = item.SortBy as SqlNode;
  if (sb.useOp !== undefined) throw unsupported(sql, 'ORDER BY ... USING over several shards');
  const desc = sb.sortby_dir === 'SORTBY_DESC';
  const nulls = sb.sortby_nulls as string | undefined;
  const nullsFirst =
    nulls === 'SORTBY_NULLS_FIRST' ? true : nulls === 'SORTBY_NULLS_LAST' ? false : desc;
  return { column: column(sb.node as SqlNode), desc, nullsFirst };
}

/**
 * Takes LIMIT / OFFSET off a SELECT (the merger applies them; the router pushes OFFSET +
 * LIMIT down as `LIMIT $k`); refuses forms the merger cannot apply.
 */
export function takeLimit(
  sql: string,
  sel: SqlNode,
): { limit: ValueRef | undefined; offset: ValueRef | undefined } {
  const limit = sel.limitCount === undefined ? undefined : valueRefOf(sel.limitCount);
  const offset = sel.limitOffset === undefined ? undefined : valueRefOf(sel.limitOffset);
  if (
    (sel.limitCount !== undefined && limit === undefined) ||
    (sel.limitOffset !== undefined && offset === undefined)
  ) {
    throw unsupported(sql, 'LIMIT / OFFSET must be literals or parameters over several shards');
  }
  if (sel.limitOption === 'LIMIT_OPTION_WITH_TIES')
    throw unsupported(sql, 'FETCH ... WITH TIES over several shards');
  delete sel.limitCount;
  delete sel.limitOffset;
  sel.limitOption = 'LIMIT_OPTION_DEFAULT';
  return { limit, offset };
}

/** Builds the scatter template of a SELECT: hidden sort / group columns, AVG split, LIMIT pushdown. */
export function scatterPlan(sql: string, original: SqlNode, layout: ShardingLayout): ScatterPlan {
  const stmt = structuredClone(original);
  const sel = stmt.SelectStmt as SqlNode;
  const distinctClause = sel.distinctClause as SqlNode[] | undefined;
  // Plain DISTINCT is `[{}]`; DISTINCT ON lists its expressions.
  const distinctOnExprs = distinctClause?.filter((d) => Object.keys(d).length > 0) ?? [];
  const distinct = distinctClause !== undefined && distinctOnExprs.length === 0;
  if (sel.withClause !== undefined)
    throw unsupported(sql, 'WITH (common table expressions) over several shards');
  checkDerivedTables(sql, sel, layout);
  if (!fromReadsSharded(sel, layout))
    throw unsupported(
      sql,
      'a sharded table read only by a subquery (WHERE EXISTS / IN, the select list) over several shards: each shard would answer the other tables again; join the sharded table in FROM, or route it to one shard',
    );
  // Windows partitioned by the sharding key are exact per shard; others are refused.
  checkWindowPartitions(sql, sel, layout);
  const targets = (sel.targetList as SqlNode[] | undefined) ?? [];
  const starAt = targets.findIndex((t) => {
    let star = false;
    walk((t.ResTarget as SqlNode).val, (o) => {
      if (o.A_Star !== undefined) star = true;
      return undefined;
    });
    return star;
  });
  const known = starAt < 0 ? targets.length : starAt;
  const hidden: SqlNode[] = [];
  const addHidden = (expr: unknown): number => {
    hidden.push({ ResTarget: { name: `__peak_${hidden.length}`, val: structuredClone(expr) } });
    return -hidden.length;
  };
  const resolve = (expr: SqlNode): number => {
    const c = valueRefOf(expr);
    if (
      c !== undefined &&
      'value' in c &&
      typeof c.value === 'number' &&
      expr.A_Const !== undefined
    ) {
      if (c.value < 1 || c.value > known)
        throw unsupported(sql, `ORDER BY / GROUP BY position ${c.value} next to * or out of range`);
      return c.value - 1;
    }
    const col = columnOf(expr);
    for (let i = 0; i < known; i++) {
      const rt = targets[i]!.ResTarget as SqlNode;
      if (col !== undefined && col.qualifier === undefined && rt.name === col.column) return i;
      if (sameExpression(rt.val, expr)) return i;
    }
    return addHidden(expr);
  };
  // A plain count/sum/min/max/avg call (what HAVING may read), or undefined.
  const aggregateCall = (expr: SqlNode): SqlNode | undefined => {
    const f = expr.FuncCall as SqlNode | undefined;
    if (f === undefined) return undefined;
    const names = (f.funcname as SqlNode[]).map((n) => (n.String as { sval: string }).sval);
    return names.length === 1 && AGGREGATES.has(names[0]!) ? f : undefined;
  };
  const sortClause = (sel.sortClause as SqlNode[] | undefined) ?? [];
  const orderBy = sortClause.map((s) => mergeOrder(sql, s, resolve));
  const groupClause = (sel.groupClause as SqlNode[] | undefined) ?? [];
  if (groupClause.some((g) => g.GroupingSet !== undefined))
    throw unsupported(sql, 'GROUPING SETS / ROLLUP / CUBE over several shards');
  const groupBy = groupClause.map((g) => resolve(g));
  const distinctOn = distinctOnExprs.map((d) => resolve(d));
  if (distinct && orderBy.some((o) => o.column < 0))
    throw unsupported(
      sql,
      'for SELECT DISTINCT, ORDER BY expressions must appear in the select list',
    );

  // HAVING comes off the shards' statement; what it reads becomes (hidden) output columns.
  let having: HavingExpr | undefined;
  if (sel.havingClause !== undefined) {
    having = compileHaving(sel.havingClause as SqlNode, sql, (expr) => {
      // A GROUP BY key: the select-list column or hidden key column holding it.
      for (let i = 0; i < known; i++)
        if (groupBy.includes(i) && sameExpression((targets[i]!.ResTarget as SqlNode).val, expr))
          return i;
      const g = groupClause.findIndex((k) => sameExpression(k, expr));
      if (g >= 0) return groupBy[g]!;
      if (aggregateCall(expr) === undefined)
        throw unsupported(
          sql,
          'HAVING over several shards reads only count/sum/min/max/avg, GROUP BY keys, literals and parameters',
        );
      // An aggregate: the select list's own column when it has one, else a hidden one.
      for (let i = 0; i < known; i++)
        if (sameExpression((targets[i]!.ResTarget as SqlNode).val, expr)) return i;
      return addHidden(expr);
    });
    delete sel.havingClause;
  }

  // Classify every output column (visible and hidden) for aggregate merging.
  const all = [...targets, ...hidden];
  const aggOf = (val: unknown): { fn: string; node: SqlNode } | undefined => {
    const f = (val as SqlNode | undefined)?.FuncCall as SqlNode | undefined;
    if (f === undefined) return undefined;
    const names = (f.funcname as SqlNode[]).map((n) => (n.String as { sval: string }).sval);
    const fn = names[names.length - 1]!;
    return names.length === 1 && AGGREGATES.has(fn) ? { fn, node: f } : undefined;
  };
  let hasAgg = false;
  walk(all, (o) => {
    const f = o.FuncCall as SqlNode | undefined;
    // A window's call (`sum(x) OVER (…)`) is a row's value: computed whole on its shard.
    if (f !== undefined && f.over === undefined) {
      const names = (f.funcname as SqlNode[]).map((n) => (n.String as { sval: string }).sval);
      const fn = names[names.length - 1]!;
      if (OTHER_AGGREGATES.has(fn)) {
        throw unsupported(sql, `the aggregate ${fn}() cannot be merged from per-shard results`);
      }
      if (AGGREGATES.has(fn) || f.agg_star === true) hasAgg = true;
    }
    return undefined;
  });
  const aggregated = hasAgg || groupBy.length > 0 || having !== undefined;
  if (aggregated && distinctOn.length > 0)
    throw unsupported(sql, 'SELECT DISTINCT ON with aggregates or GROUP BY over several shards');
  const columns: OutputColumn[] = [];
  if (aggregated) {
    if (starAt >= 0)
      throw unsupported(sql, 'SELECT * with aggregates or GROUP BY over several shards');
    const groupExprs = groupClause.map((g, i) =>
      groupBy[i]! >= 0 ? (all[groupBy[i]!]!.ResTarget as SqlNode).val : g,
    );
    const count = all.length;
    for (let i = 0; i < count; i++) {
      const rt = all[i]!.ResTarget as SqlNode;
      const agg = aggOf(rt.val);
      if (agg !== undefined) {
        const f = agg.node;
        if (f.agg_distinct === true || f.agg_filter !== undefined || f.agg_order !== undefined) {
          throw unsupported(sql, `${agg.fn}(DISTINCT / FILTER / ORDER BY) over several shards`);
        }
        if (agg.fn === 'avg') {
          if (rt.name === undefined) rt.name = 'avg';
          f.funcname = [{ String: { sval: 'sum' } }];
          all.push({
            ResTarget: {
              name: `__peak_${hidden.length}`,
              val: {
                FuncCall: { ...structuredClone(f), funcname: [{ String: { sval: 'count' } }] },
              },
            },
          });
          hidden.push(all[all.length - 1]!);
          columns.push({ kind: 'avg', countColumn: -hidden.length });
        } else {
          columns.push({ kind: agg.fn as 'count' | 'sum' | 'min' | 'max' });
        }
        continue;
      }
      const isKey =
        groupBy.includes(i < targets.length ? i : -(i - targets.length + 1)) ||
        groupExprs.some((g) => sameExpression(g, rt.val));
      if (!isKey) {
        throw unsupported(
          sql,
          `output column ${i + 1} is neither a GROUP BY key nor a plain count/sum/min/max/avg, so it cannot be merged across shards`,
        );
      }
      columns.push({ kind: 'key' });
    }
    for (let i = count; i < all.length; i++) columns.push({ kind: 'count' });
  }
  sel.targetList = [...targets, ...hidden];

  // LIMIT / OFFSET: shards return offset + limit rows (non-aggregated) or everything.
  const { limit, offset } = takeLimit(sql, sel);
  if (aggregated) delete sel.sortClause;
  const renumber = renumberParams(stmt);
  const paramMap = [...renumber.map];
  if (limit !== undefined && !aggregated) paramMap.push(-1);
  const keyColumns = groupBy;
  return {
    template: createTemplate(stmt, findTables(stmt, layout), paramMap),
    merge: {
      hiddenCount: hidden.length,
      orderBy,
      groupBy: keyColumns,
      columns,
      aggregated,
      ...(distinct ? { distinct } : {}),
      ...(distinctOn.length > 0 ? { distinctOn } : {}),
      ...(having === undefined ? {} : { having }),
    },
    limit,
    offset,
  };
}
