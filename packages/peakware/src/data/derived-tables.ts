/**
 * Subqueries in FROM (derived tables) over several shards. The statement runs whole on
 * each shard, so a derived table is computed from that shard's rows only; that is its part
 * of the whole answer when the subquery is row-wise (filters, projections, joins of bound
 * tables), or when it groups by the sharding key (every group then lives on one shard).
 * The outer query is then merged as any scatter SELECT (ORDER BY, LIMIT, aggregates, …).
 * Anything else (LIMIT / OFFSET, DISTINCT, window functions, aggregates without the
 * sharding key in GROUP BY, set operations, WITH, nested derived tables) is refused with
 * the reason. The subquery's WHERE also says which shards are needed
 * (`derivedCondition`), so `FROM (… WHERE buyer_id = $1) x` goes to one shard.
 */

import { crossRowCalls } from './aggregate-calls.js';
import { unsupported } from './route-errors.js';
import { type Condition, extractCondition } from './sharding-condition.js';
import type { ShardingLayout } from './sharding-layout.js';
import type { SqlNode } from './sql-parser.js';
import { findTables, fromReadsSharded, type TableRef } from './statement-tables.js';
import { columnOf } from './value-ref.js';

/** The SELECTs of the FROM clause's derived tables (`FROM (SELECT …) x`), at the top level. */
function derivedSelects(sel: SqlNode): SqlNode[] {
  const out: SqlNode[] = [];
  const visit = (item: SqlNode | undefined): void => {
    if (item === undefined) return;
    const sub = item.RangeSubselect as SqlNode | undefined;
    if (sub !== undefined) {
      out.push((sub.subquery as SqlNode).SelectStmt as SqlNode);
      return;
    }
    const join = item.JoinExpr as SqlNode | undefined;
    if (join !== undefined) {
      visit(join.larg as SqlNode);
      visit(join.rarg as SqlNode);
    }
  };
  for (const item of (sel.fromClause as SqlNode[] | undefined) ?? []) visit(item);
  return out;
}

/** True when the SELECT's FROM has a derived table. */
export function hasDerivedTable(sel: SqlNode): boolean {
  return derivedSelects(sel).length > 0;
}

/** True when `q` groups by the sharding column of a sharded table it reads. */
function groupsByShardingKey(q: SqlNode, layout: ShardingLayout): boolean {
  const tables = findTables({ SelectStmt: q }, layout).filter((t) => t.kind === 'sharded');
  for (const g of (q.groupClause as SqlNode[] | undefined) ?? []) {
    const col = columnOf(g);
    if (col === undefined) continue;
    for (const t of tables) {
      const def = layout.tables.get(t.logical)!;
      if (
        col.column === def.shardingColumn &&
        (col.qualifier === undefined || col.qualifier === (t.alias ?? t.logical))
      )
        return true;
    }
  }
  return false;
}

/** Refuses a derived table whose per-shard rows are not its part of the whole. */
export function checkDerivedTables(sql: string, sel: SqlNode, layout: ShardingLayout): void {
  for (const q of derivedSelects(sel)) {
    const why = (what: string) =>
      unsupported(sql, `${what} in a subquery in FROM over several shards`);
    if ((q.op ?? 'SETOP_NONE') !== 'SETOP_NONE') throw why('a set operation');
    if (q.withClause !== undefined) throw why('WITH');
    if (q.limitCount !== undefined || q.limitOffset !== undefined) throw why('LIMIT / OFFSET');
    if (q.distinctClause !== undefined) throw why('DISTINCT');
    if (hasDerivedTable(q)) throw why('another subquery in FROM');
    if (
      findTables({ SelectStmt: q }, layout).some((t) => t.kind === 'sharded') &&
      !fromReadsSharded(q, layout)
    )
      throw why('a sharded table read only by a subquery (WHERE EXISTS / IN, the select list)');
    const calls = crossRowCalls(q.targetList);
    if (calls.window !== undefined) throw why('a window function (OVER)');
    const grouped =
      calls.aggregate !== undefined || q.groupClause !== undefined || q.havingClause !== undefined;
    if (grouped && !groupsByShardingKey(q, layout))
      throw unsupported(
        sql,
        'aggregates or GROUP BY in a subquery in FROM over several shards need the sharding column in its GROUP BY (then every group lives on one shard); or route it to one shard',
      );
  }
}

/** The shards the derived tables' own WHERE clauses allow (AND of them), if any. */
export function derivedCondition(sel: SqlNode, layout: ShardingLayout): Condition | undefined {
  const parts: Condition[] = [];
  for (const q of derivedSelects(sel)) {
    const sharded = findTables({ SelectStmt: q }, layout).filter((t) => t.kind === 'sharded');
    if (sharded.length === 0) continue;
    parts.push(extractCondition(q.whereClause as SqlNode | undefined, sharded, layout));
  }
  if (parts.length === 0) return undefined;
  return parts.length === 1 ? parts[0]! : { k: 'and', parts };
}

/**
 * The tables whose columns the SELECT's own WHERE names: those of its FROM and joins, not
 * those inside its FROM-subqueries (`FROM (SELECT region_id AS buyer_id FROM t_order) x
 * WHERE buyer_id = 5` names x's column, not t_order's sharding key).
 */
export function outerTables(sel: SqlNode, tables: readonly TableRef[]): TableRef[] {
  const nodes = new Set<unknown>();
  const visit = (item: SqlNode | undefined): void => {
    if (item === undefined) return;
    if (item.RangeVar !== undefined) nodes.add(item.RangeVar);
    const join = item.JoinExpr as SqlNode | undefined;
    if (join !== undefined) {
      visit(join.larg as SqlNode);
      visit(join.rarg as SqlNode);
    }
  };
  for (const item of (sel.fromClause as SqlNode[] | undefined) ?? []) visit(item);
  return tables.filter((t) => nodes.has(t.node));
}
