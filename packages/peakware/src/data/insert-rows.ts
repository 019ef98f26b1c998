/**
 * The sharding values of an INSERT, found once per statement: the VALUES rows and the
 * position of the sharding column in them (or, failing that, of a gene column).
 */
import { routeError, unsupported } from './route-errors.js';
import { checkShardingColumnUpdate } from './sharding-column-update-check.js';
import type { ShardedTable, ShardingLayout } from './sharding-layout.js';
import type { SqlNode } from './sql-parser.js';

/** An INSERT's rows and where its sharding value sits in each. */
export interface InsertRows {
  /** The VALUES rows, as expressions. */
  rows: SqlNode[][];
  /** The position of the sharding (or gene) column in a row. */
  columnIndex: number;
  /** True when the rows route by a gene column. */
  gene: boolean;
}

/** Reads the VALUES rows of an INSERT into a sharded table; refuses INSERT ... SELECT and a missing sharding column. */
export function insertRows(
  sql: string,
  body: SqlNode,
  table: ShardedTable,
  layout: ShardingLayout,
): InsertRows {
  const cols = ((body.cols as SqlNode[] | undefined) ?? []).map(
    (c) => (c.ResTarget as { name: string }).name,
  );
  if (cols.length === 0) {
    throw routeError(sql, `an INSERT into the sharded table ${table.name} must name its columns`);
  }
  const values = ((body.selectStmt as SqlNode | undefined)?.SelectStmt as SqlNode | undefined)
    ?.valuesLists as SqlNode[] | undefined;
  if (values === undefined) {
    throw unsupported(
      sql,
      `INSERT ... SELECT into the sharded table ${table.name}; insert VALUES rows`,
    );
  }
  let columnIndex = cols.indexOf(table.shardingColumn);
  let gene = false;
  if (columnIndex < 0) {
    columnIndex = cols.findIndex((c) => table.geneColumns.includes(c));
    gene = columnIndex >= 0;
  }
  if (columnIndex < 0) {
    throw routeError(
      sql,
      `the INSERT into ${table.name} gives no value for its sharding column ${table.shardingColumn}${table.geneColumns.length > 0 ? ` or its gene columns (${table.geneColumns.join(', ')})` : ''}`,
    );
  }
  const conflict = (body.onConflictClause as SqlNode | undefined)?.targetList as
    | SqlNode[]
    | undefined;
  if (conflict !== undefined)
    checkShardingColumnUpdate(
      sql,
      conflict,
      [{ node: {}, logical: table.name, kind: 'sharded', alias: undefined }],
      layout,
    );
  return {
    rows: values.map((v) => ((v.List as { items?: SqlNode[] }).items ?? []) as SqlNode[]),
    columnIndex,
    gene,
  };
}
