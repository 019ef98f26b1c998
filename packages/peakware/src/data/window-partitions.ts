/**
 * Window functions over several shards. A window partitioned by a sharded table's sharding
 * column (`row_number() OVER (PARTITION BY buyer_id ORDER BY created_at)`) sees all of its
 * partition on one shard, so each shard computes exactly what the whole table would, and
 * the merger treats the window's column as any other (ORDER BY, LIMIT, DISTINCT over it).
 * A window without the sharding column in its PARTITION BY (a running total over every
 * buyer, a rank over the whole table) would be computed from one shard's rows only: refused
 * with the reason, as are windows beside aggregates or GROUP BY. Named windows (`WINDOW w
 * AS (…)`, `OVER w`, `OVER (w ORDER BY …)`) are read through their definition.
 */

import { crossRowCalls } from './aggregate-calls.js';
import { outerTables } from './derived-tables.js';
import { unsupported } from './route-errors.js';
import type { ShardingLayout } from './sharding-layout.js';
import { type SqlNode, walk } from './sql-parser.js';
import { findTables } from './statement-tables.js';
import { columnOf } from './value-ref.js';

/** The window definitions (`OVER …`) of a SELECT's own select list and ORDER BY. */
function windowsOf(sel: SqlNode): SqlNode[] {
  const out: SqlNode[] = [];
  walk([sel.targetList, sel.sortClause], (o) => {
    if (o.SubLink !== undefined) return false; // a subquery runs whole on its shard
    const over = (o.FuncCall as SqlNode | undefined)?.over as SqlNode | undefined;
    if (over !== undefined) out.push(over);
    return undefined;
  });
  return out;
}

/**
 * Refuses window functions whose partitions may span shards: every window must be
 * partitioned by the sharding column of a sharded table in the SELECT's FROM.
 */
export function checkWindowPartitions(sql: string, sel: SqlNode, layout: ShardingLayout): void {
  const windows = windowsOf(sel);
  if (windows.length === 0) return;
  if (
    sel.groupClause !== undefined ||
    sel.havingClause !== undefined ||
    crossRowCalls(sel.targetList).aggregate !== undefined
  )
    throw unsupported(sql, 'window functions beside aggregates or GROUP BY over several shards');
  const named = new Map<string, SqlNode>();
  for (const w of (sel.windowClause as SqlNode[] | undefined) ?? []) {
    const def = w.WindowDef as SqlNode;
    named.set(def.name as string, def);
  }
  const sharded = outerTables(sel, findTables({ SelectStmt: sel }, layout)).filter(
    (t) => t.kind === 'sharded',
  );
  const partitionOf = (over: SqlNode): SqlNode[] => {
    // `OVER w` names a definition; `OVER (w ORDER BY …)` refers to one (its PARTITION BY).
    const ref = (over.refname ?? (over.partitionClause === undefined ? over.name : undefined)) as
      | string
      | undefined;
    const def = ref === undefined ? over : named.get(ref);
    return (def?.partitionClause as SqlNode[] | undefined) ?? [];
  };
  for (const over of windows) {
    const byKey = partitionOf(over).some((expr) => {
      const col = columnOf(expr);
      if (col === undefined) return false;
      return sharded.some(
        (t) =>
          col.column === layout.tables.get(t.logical)!.shardingColumn &&
          (col.qualifier === undefined || col.qualifier === (t.alias ?? t.logical)),
      );
    });
    if (!byKey)
      throw unsupported(
        sql,
        `a window function over several shards needs the sharding column (${sharded.map((t) => layout.tables.get(t.logical)!.shardingColumn).join(' or ') || 'of a sharded table in FROM'}) in its PARTITION BY (then each partition lives on one shard); or route it to one shard`,
      );
  }
}
