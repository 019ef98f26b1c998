/**
 * Finding a statement's tables: every table reference in the tree (CTE names excepted),
 * classified against the layout as sharded, broadcast, local (per data source) or single
 * (undeclared).
 */
import type { ShardingLayout } from './sharding-layout.js';
import { type SqlNode, walk } from './sql-parser.js';

/** One table reference of a statement: its tree node, logical name, kind and alias. */
export interface TableRef {
  node: SqlNode;
  logical: string;
  kind: 'sharded' | 'broadcast' | 'local' | 'single';
  alias: string | undefined;
}

/** The table references of a statement, in tree order. */
export function findTables(stmt: SqlNode, layout: ShardingLayout): TableRef[] {
  const ctes = new Set<string>();
  walk(stmt, (o) => {
    const cte = o.CommonTableExpr as { ctename?: string } | undefined;
    if (cte?.ctename !== undefined) ctes.add(cte.ctename);
    return undefined;
  });
  const out: TableRef[] = [];
  walk(stmt, (o) => {
    if (typeof o.relname !== 'string' || typeof o.relpersistence !== 'string') return undefined;
    const name = o.relname;
    if (o.schemaname === undefined && ctes.has(name)) return false;
    const schema = typeof o.schemaname === 'string' ? o.schemaname : undefined;
    const kind = layout.tables.has(name)
      ? 'sharded'
      : layout.broadcastTables.has(name)
        ? 'broadcast'
        : layout.localTables.has(schema === undefined ? name : `${schema}.${name}`)
          ? 'local'
          : 'single';
    out.push({
      node: o,
      logical: name,
      kind,
      alias: (o.alias as { aliasname?: string } | undefined)?.aliasname,
    });
    return false;
  });
  return out;
}

/**
 * True when the SELECT's own FROM reads a sharded table: directly, in a join, or in a
 * subquery in FROM. A sharded table read only by a subquery elsewhere (`WHERE EXISTS (…)`,
 * the select list) does not count: each shard would then answer the other tables' rows
 * again, filtered by its own part of the subquery.
 */
export function fromReadsSharded(sel: SqlNode, layout: ShardingLayout): boolean {
  const visit = (item: SqlNode | undefined): boolean => {
    if (item === undefined) return false;
    const rv = item.RangeVar as SqlNode | undefined;
    if (rv !== undefined) return layout.tables.has(rv.relname as string);
    const join = item.JoinExpr as SqlNode | undefined;
    if (join !== undefined) return visit(join.larg as SqlNode) || visit(join.rarg as SqlNode);
    const sub = item.RangeSubselect as SqlNode | undefined;
    if (sub !== undefined) {
      const q = (sub.subquery as SqlNode).SelectStmt as SqlNode;
      if ((q.op ?? 'SETOP_NONE') !== 'SETOP_NONE')
        return (
          visit({ RangeSubselect: { subquery: { SelectStmt: q.larg } } }) ||
          visit({ RangeSubselect: { subquery: { SelectStmt: q.rarg } } })
        );
      return fromReadsSharded(q, layout);
    }
    return false;
  };
  return ((sel.fromClause as SqlNode[] | undefined) ?? []).some(visit);
}
