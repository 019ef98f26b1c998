/**
 * Set operations over several shards. The whole set operation runs on each shard (its
 * arms read that shard's tables: a binding group shares the shard), and the merger joins
 * the shards' answers as for a plain scatter SELECT: a k-way merge on the ORDER BY of the
 * result, duplicates dropped across shards when the outermost operation is UNION, then
 * OFFSET and LIMIT (pushed down as OFFSET + LIMIT). The shards to ask are those of any arm
 * (`setOperationCondition`).
 *
 * When every arm selects its table's sharding column at one same position (a plain FROM of
 * one sharded table), equal rows live on one shard, so every set operation is exact shard
 * by shard: INTERSECT, EXCEPT (and ALL), UNION under UNION ALL, DISTINCT arms; nothing is
 * repeated across shards. Otherwise it is exact only for what it accepts, and the rest is
 * refused with the reason:
 * - INTERSECT and EXCEPT: a row of one side and its match on the other may live on
 *   different shards;
 * - UNION below UNION ALL: each shard would drop only its own duplicates;
 * - under UNION ALL, an arm with DISTINCT, or one reading no sharded table (its rows would
 *   come once per shard);
 * - an arm with LIMIT / OFFSET, aggregates, GROUP BY, HAVING, window functions, WITH or a
 *   subquery in FROM: each shard's part of it is not the arm's answer;
 * - ORDER BY on the result names output columns or positions (PostgreSQL's own rule for
 *   set operations); with `*` in the first arm the positions are unknown here, so ORDER BY
 *   is refused then.
 */

import { crossRowCalls } from './aggregate-calls.js';
import type { MergeOrder } from './result-merger.js';
import { unsupported } from './route-errors.js';
import { mergeOrder, type ScatterPlan, takeLimit } from './scatter-rewrite.js';
import { createTemplate, renumberParams } from './shard-sql-template.js';
import { type Condition, extractCondition } from './sharding-condition.js';
import type { ShardingLayout } from './sharding-layout.js';
import { type SqlNode, walk } from './sql-parser.js';
import { findTables, fromReadsSharded } from './statement-tables.js';
import { columnOf, valueRefOf } from './value-ref.js';

/** True when a SELECT node is a set operation (UNION / INTERSECT / EXCEPT). */
export function isSetOperation(sel: SqlNode): boolean {
  return (sel.op ?? 'SETOP_NONE') !== 'SETOP_NONE';
}

/** The plain SELECTs of a set operation, left to right. */
function arms(sel: SqlNode): SqlNode[] {
  if (!isSetOperation(sel)) return [sel];
  return [...arms(sel.larg as SqlNode), ...arms(sel.rarg as SqlNode)];
}

/**
 * The shards a set operation needs: those of any arm (OR of the arms' WHERE conditions).
 * An arm reading no sharded table needs none of its own: it answers on whichever shard runs.
 */
export function setOperationCondition(sel: SqlNode, layout: ShardingLayout): Condition {
  const parts: Condition[] = [];
  for (const arm of arms(sel)) {
    const sharded = findTables(arm, layout).filter((t) => t.kind === 'sharded');
    if (sharded.length === 0) continue;
    parts.push(extractCondition(arm.whereClause as SqlNode | undefined, sharded, layout));
  }
  return parts.length === 1 ? parts[0]! : { k: 'or', parts };
}

/** The output column names of an arm's select list, or undefined when it has `*`. */
function outputNames(arm: SqlNode): (string | undefined)[] | undefined {
  const names: (string | undefined)[] = [];
  for (const t of (arm.targetList as SqlNode[] | undefined) ?? []) {
    const rt = t.ResTarget as SqlNode;
    let star = false;
    walk(rt.val, (o) => {
      if (o.A_Star !== undefined) star = true;
      return undefined;
    });
    if (star) return undefined;
    names.push((rt.name as string | undefined) ?? columnOf(rt.val)?.column);
  }
  return names;
}

/**
 * The output positions holding the sharding key of the arm's one table (a plain `FROM
 * t_order [alias]`, no join: an outer join's NULLs would break the rule below), or none.
 */
function shardKeyPositions(arm: SqlNode, layout: ShardingLayout): Set<number> {
  const out = new Set<number>();
  const from = (arm.fromClause as SqlNode[] | undefined) ?? [];
  const rv = from.length === 1 ? (from[0]!.RangeVar as SqlNode | undefined) : undefined;
  const table = rv === undefined ? undefined : layout.tables.get(rv.relname as string);
  if (rv === undefined || table === undefined) return out;
  const alias = (rv.alias as { aliasname?: string } | undefined)?.aliasname ?? table.name;
  for (const [i, t] of ((arm.targetList as SqlNode[] | undefined) ?? []).entries()) {
    const col = columnOf((t.ResTarget as SqlNode).val);
    if (
      col !== undefined &&
      col.column === table.shardingColumn &&
      (col.qualifier === undefined || col.qualifier === alias)
    )
      out.add(i);
  }
  return out;
}

/**
 * True when every arm outputs its table's sharding key at one same position: then equal
 * rows have equal keys, so they live on one shard (a binding group shares the algorithm),
 * and any set operation (INTERSECT, EXCEPT, UNION under UNION ALL, DISTINCT arms) is exact
 * shard by shard, with nothing repeated across shards.
 */
function shardLocal(top: SqlNode, layout: ShardingLayout): boolean {
  let common: Set<number> | undefined;
  for (const arm of arms(top)) {
    const here = shardKeyPositions(arm, layout);
    common = common === undefined ? here : new Set([...common].filter((p) => here.has(p)));
    if (common.size === 0) return false;
  }
  return (common?.size ?? 0) > 0;
}

/** Refuses an arm whose per-shard answer is not its part of the whole answer. */
function checkArm(sql: string, arm: SqlNode, dedupe: boolean, layout: ShardingLayout): void {
  const why = (what: string) =>
    unsupported(sql, `${what} in an arm of a UNION over several shards`);
  if (arm.limitCount !== undefined || arm.limitOffset !== undefined) throw why('LIMIT / OFFSET');
  if (arm.withClause !== undefined) throw why('WITH');
  if (arm.groupClause !== undefined) throw why('GROUP BY');
  if (arm.havingClause !== undefined) throw why('HAVING');
  if ((arm.fromClause as SqlNode[] | undefined)?.some((f) => f.RangeSubselect !== undefined))
    throw why('a subquery in FROM');
  const distinct = arm.distinctClause as SqlNode[] | undefined;
  if (distinct?.some((d) => Object.keys(d).length > 0)) throw why('DISTINCT ON');
  if (distinct !== undefined && !dedupe)
    throw unsupported(
      sql,
      'DISTINCT in an arm of a UNION ALL over several shards (each shard would drop only its own repeats); use UNION, or route it to one shard',
    );
  const calls = crossRowCalls(arm.targetList);
  if (calls.window !== undefined) throw why('a window function (OVER)');
  if (calls.aggregate !== undefined) throw why(`the aggregate ${calls.aggregate}()`);
  const reads = findTables(arm, layout).some((t) => t.kind === 'sharded');
  if (reads && !fromReadsSharded(arm, layout))
    throw why('a sharded table read only by a subquery (WHERE EXISTS / IN, the select list)');
  if (!dedupe && !reads)
    throw unsupported(
      sql,
      'an arm of a UNION ALL reading no sharded table would answer its rows once per shard; use UNION, or route the statement to one shard',
    );
}

/** The scatter plan of a set operation over several shards (see the file's comment). */
export function setOperationPlan(
  sql: string,
  original: SqlNode,
  layout: ShardingLayout,
): ScatterPlan {
  const stmt = structuredClone(original);
  const top = stmt.SelectStmt as SqlNode;
  if (top.withClause !== undefined)
    throw unsupported(sql, 'WITH (common table expressions) over several shards');
  const local = shardLocal(top, layout);
  // Rows repeated across shards are dropped only when the outermost operation drops them
  // and they can exist at all (not when every row's sharding key is in it).
  const dedupe = top.op === 'SETOP_UNION' && top.all !== true;
  const visit = (node: SqlNode): void => {
    if (!isSetOperation(node)) {
      checkArm(sql, node, dedupe || local, layout);
      return;
    }
    if (node.op !== 'SETOP_UNION' && !local)
      throw unsupported(
        sql,
        `${node.op === 'SETOP_INTERSECT' ? 'INTERSECT' : 'EXCEPT'} over several shards (a row and its match may live on different shards); select every arm's sharding column at the same position, or route it to one shard with a condition on the sharding column`,
      );
    if (node !== top && (node.limitCount !== undefined || node.limitOffset !== undefined))
      throw unsupported(sql, 'LIMIT / OFFSET inside a set operation over several shards');
    if (!dedupe && !local && node.all !== true)
      throw unsupported(
        sql,
        'UNION inside a UNION ALL over several shards (each shard would drop only its own repeats); make the outer one UNION, or route it to one shard',
      );
    visit(node.larg as SqlNode);
    visit(node.rarg as SqlNode);
  };
  visit(top);

  // ORDER BY of a set operation: output column names or positions only.
  const names = outputNames(arms(top)[0]!);
  const sortClause = (top.sortClause as SqlNode[] | undefined) ?? [];
  const orderBy: MergeOrder[] = sortClause.map((item) =>
    mergeOrder(sql, item, (expr) => {
      if (names === undefined)
        throw unsupported(
          sql,
          "ORDER BY on a UNION whose first arm selects * over several shards; list the first arm's columns",
        );
      const ref = valueRefOf(expr);
      if (expr.A_Const !== undefined && ref !== undefined && 'value' in ref) {
        const n = Number(ref.value);
        if (Number.isInteger(n) && n >= 1 && n <= names.length) return n - 1;
      }
      const col = columnOf(expr);
      if (col !== undefined && col.qualifier === undefined) {
        const at = names.indexOf(col.column);
        if (at >= 0 && names.indexOf(col.column, at + 1) < 0) return at;
      }
      throw unsupported(
        sql,
        'ORDER BY on a UNION names one output column or its position (as PostgreSQL requires)',
      );
    }),
  );
  const { limit, offset } = takeLimit(sql, top);
  const paramMap = [...renumberParams(stmt).map];
  if (limit !== undefined) paramMap.push(-1);
  return {
    template: createTemplate(stmt, findTables(stmt, layout), paramMap),
    merge: {
      hiddenCount: 0,
      orderBy,
      groupBy: [],
      columns: [],
      aggregated: false,
      ...(dedupe && !local ? { distinct: true } : {}),
    },
    limit,
    offset,
  };
}
