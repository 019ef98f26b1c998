/**
 * Routing an INSERT: each VALUES row goes to the shard of its sharding (or gene) value; a
 * multi-row INSERT spanning shards is split into one statement per shard holding only its
 * rows, parameters renumbered. A split's SQL depends only on (shard, rows), so it is
 * cached by both on the statement's analysis.
 */
import { ErrorCodes, PeakError } from '../core/errors.js';
import { shardOf } from './condition-evaluator.js';
import { routeError } from './route-errors.js';
import type { RoutePlan, RouteUnit } from './route-plan.js';
import { renderTemplate, renumberParams } from './shard-sql-template.js';
import type { ShardedTable, ShardingLayout } from './sharding-layout.js';
import type { SqlNode } from './sql-parser.js';
import type { Analysis } from './statement-analysis.js';
import { resolveValue, valueRefOf } from './value-ref.js';

/** The route plan of an INSERT into a sharded table (`a.insert` set). */
export function routeInsert(
  a: Analysis,
  table: ShardedTable,
  params: readonly unknown[],
  suffix: string,
  tables: string[],
  shadow: boolean,
  layout: ShardingLayout,
): RoutePlan {
  const ins = a.insert!;
  const groups = new Map<number, number[]>();
  for (const [i, row] of ins.rows.entries()) {
    const ref = valueRefOf(row[ins.columnIndex]);
    if (ref === undefined) {
      throw routeError(
        a.sql,
        `row ${i + 1} of the INSERT gives ${table.shardingColumn} as an expression; pass it as a parameter or a literal`,
      );
    }
    let shard: number;
    try {
      shard = shardOf(table, ins.gene, resolveValue(ref, params, a.sql), layout.geneBits);
    } catch (err) {
      if (
        err instanceof PeakError &&
        err.code === ErrorCodes.DATA_ROUTE &&
        err.message.includes('statement:')
      )
        throw err;
      throw routeError(a.sql, `row ${i + 1}: ${(err as Error).message}`, err);
    }
    const g = groups.get(shard);
    if (g === undefined) groups.set(shard, [i]);
    else g.push(i);
  }
  const units: RouteUnit[] = [];
  if (groups.size === 1) {
    const s = groups.keys().next().value as number;
    units.push({
      dataSource: layout.node(table, s).dataSource,
      shard: s,
      sql: renderTemplate(a.direct, s, suffix),
      params: params as unknown[],
    });
  } else {
    // Split the multi-row INSERT: one statement per shard with only its rows, params
    // renumbered. The rendering depends only on (shard, rows), so it is cached by both.
    const valuesOwner = a.direct.ast.InsertStmt as SqlNode;
    const select = (valuesOwner.selectStmt as SqlNode).SelectStmt as SqlNode;
    const original = select.valuesLists;
    for (const [s, rows] of [...groups].sort((x, y) => x[0] - y[0])) {
      const key = `${s}${suffix}|${rows.join(',')}`;
      let split = a.splits.get(key);
      if (split === undefined) {
        select.valuesLists = rows.map((r) => (original as unknown[])[r]);
        const renumber = renumberParams(a.direct.ast);
        try {
          split = { sql: renderTemplate(a.direct, s, suffix, false, true), map: renumber.map };
        } finally {
          renumber.restore();
          select.valuesLists = original;
        }
        if (a.splits.size >= 256) a.splits.clear();
        a.splits.set(key, split);
      }
      units.push({
        dataSource: layout.node(table, s).dataSource,
        shard: s,
        sql: split.sql,
        params: split.map.map((i) => params[i]),
      });
    }
  }
  return {
    sql: a.sql,
    kind: 'insert',
    write: true,
    units,
    merge: undefined,
    tables,
    reason: `${ins.gene ? 'gene of ' : ''}${table.shardingColumn} in the VALUES: ${units.length} shard${units.length > 1 ? 's' : ''}`,
    shadow,
  };
}
