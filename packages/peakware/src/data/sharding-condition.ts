/**
 * Extracting the sharding condition of a WHERE clause, once per statement: `=`, `IN`,
 * `= ANY($n)`, ranges and `BETWEEN` on a sharding or gene column become a small tree of
 * `eq` / `any` / `range` leaves under `and` / `or`; anything else is `all` (no help).
 */
import type { ShardedTable, ShardingLayout } from './sharding-layout.js';
import type { SqlNode } from './sql-parser.js';
import type { TableRef } from './statement-tables.js';
import { columnOf, type ValueRef, valueRefOf } from './value-ref.js';

/** What a WHERE clause says about the shards, before the parameters are known. */
export type Condition =
  | { k: 'all' }
  | { k: 'and' | 'or'; parts: Condition[] }
  | { k: 'eq'; table: ShardedTable; gene: boolean; values: ValueRef[] }
  | { k: 'any'; table: ShardedTable; gene: boolean; param: number }
  | {
      k: 'range';
      table: ShardedTable;
      low?: { ref: ValueRef; inclusive: boolean };
      high?: { ref: ValueRef; inclusive: boolean };
    };

function opName(expr: SqlNode): string | undefined {
  const name = expr.name as SqlNode[] | undefined;
  return (name?.[name.length - 1]?.String as { sval?: string } | undefined)?.sval;
}

function matchColumn(
  node: unknown,
  sharded: TableRef[],
  layout: ShardingLayout,
): { table: ShardedTable; gene: boolean } | undefined {
  const col = columnOf(node);
  if (col === undefined) return undefined;
  for (const t of sharded) {
    if (col.qualifier !== undefined && col.qualifier !== (t.alias ?? t.logical)) continue;
    const def = layout.tables.get(t.logical)!;
    if (def.shardingColumn === col.column) return { table: def, gene: false };
    if (def.geneColumns.includes(col.column)) return { table: def, gene: true };
  }
  return undefined;
}

/** The sharding condition of a WHERE clause over the statement's sharded tables. */
export function extractCondition(
  node: SqlNode | undefined,
  sharded: TableRef[],
  layout: ShardingLayout,
): Condition {
  if (node === undefined) return { k: 'all' };
  const bool = node.BoolExpr as SqlNode | undefined;
  if (bool !== undefined) {
    const parts = (bool.args as SqlNode[]).map((p) => extractCondition(p, sharded, layout));
    if (bool.boolop === 'AND_EXPR') return { k: 'and', parts };
    if (bool.boolop === 'OR_EXPR') return { k: 'or', parts };
    return { k: 'all' };
  }
  const e = node.A_Expr as SqlNode | undefined;
  if (e === undefined) return { k: 'all' };
  const op = opName(e);
  let col = matchColumn(e.lexpr, sharded, layout);
  let other = e.rexpr;
  let flipped = false;
  if (col === undefined && e.kind === 'AEXPR_OP') {
    col = matchColumn(e.rexpr, sharded, layout);
    other = e.lexpr;
    flipped = true;
  }
  if (col === undefined) return { k: 'all' };
  if (e.kind === 'AEXPR_OP') {
    const ref = valueRefOf(other);
    if (ref === undefined) return { k: 'all' };
    if (op === '=') return { k: 'eq', ...col, values: [ref] };
    if (col.gene) return { k: 'all' };
    const effective = flipped
      ? ({ '<': '>', '<=': '>=', '>': '<', '>=': '<=' } as Record<string, string>)[op ?? '']
      : op;
    if (effective === '>' || effective === '>=')
      return { k: 'range', table: col.table, low: { ref, inclusive: effective === '>=' } };
    if (effective === '<' || effective === '<=')
      return { k: 'range', table: col.table, high: { ref, inclusive: effective === '<=' } };
    return { k: 'all' };
  }
  if (e.kind === 'AEXPR_IN' && op === '=') {
    const items = ((e.rexpr as SqlNode).List as { items?: SqlNode[] } | undefined)?.items ?? [];
    const refs = items.map(valueRefOf);
    if (refs.some((r) => r === undefined)) return { k: 'all' };
    return { k: 'eq', ...col, values: refs as ValueRef[] };
  }
  if (e.kind === 'AEXPR_OP_ANY' && op === '=') {
    const ref = valueRefOf(e.rexpr);
    if (ref !== undefined && 'param' in ref) return { k: 'any', ...col, param: ref.param };
    return { k: 'all' };
  }
  if (e.kind === 'AEXPR_BETWEEN' && !col.gene) {
    const items = ((e.rexpr as SqlNode).List as { items?: SqlNode[] } | undefined)?.items ?? [];
    const low = valueRefOf(items[0]);
    const high = valueRefOf(items[1]);
    if (low === undefined || high === undefined) return { k: 'all' };
    return {
      k: 'range',
      table: col.table,
      low: { ref: low, inclusive: true },
      high: { ref: high, inclusive: true },
    };
  }
  return { k: 'all' };
}
