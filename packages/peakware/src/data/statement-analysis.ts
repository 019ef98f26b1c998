/**
 * The analysis of one statement, computed once per statement text and cached by the
 * router: its kind, tables (sharded ones must share one binding group), sharding
 * condition or INSERT rows, the direct template (one shard) and, for a SELECT, the
 * scatter template (several shards) or the reason it cannot scatter.
 */
import { PeakError } from '../core/errors.js';
import { inlineCommonTableExpressions } from './common-table-expressions.js';
import { derivedCondition, hasDerivedTable, outerTables } from './derived-tables.js';
import { type InsertRows, insertRows } from './insert-rows.js';
import { unsupported } from './route-errors.js';
import type { RoutePlan } from './route-plan.js';
import { type ScatterPlan, scatterPlan } from './scatter-rewrite.js';
import {
  isSetOperation,
  setOperationCondition,
  setOperationPlan,
} from './set-operation-scatter.js';
import { createTemplate, type Template } from './shard-sql-template.js';
import { checkShardingColumnUpdate } from './sharding-column-update-check.js';
import { type Condition, extractCondition } from './sharding-condition.js';
import type { ShardedTable, ShardingLayout } from './sharding-layout.js';
import type { SqlNode } from './sql-parser.js';
import { findTables, type TableRef } from './statement-tables.js';

/** Everything about a statement that does not depend on its parameters. */
export interface Analysis {
  sql: string;
  kind: RoutePlan['kind'];
  write: boolean;
  tables: TableRef[];
  /** True when an INSERT / UPDATE / DELETE writes a broadcast table (goes to every data source). */
  broadcastWrite: boolean;
  shardedTable: ShardedTable | undefined;
  condition: Condition;
  insert: InsertRows | undefined;
  direct: Template;
  scatter: ScatterPlan | undefined;
  scatterError: PeakError | undefined;
  fingerprint: string | undefined;
  /** Rendered INSERT splits by shard and row set. */
  splits: Map<string, { sql: string; map: number[] }>;
  /** The sharded logical tables of the statement, deduplicated. */
  shardedNames: string[];
  /** The route reason of a one-shard answer. */
  pointReason: string;
  /** A per-data-source table it uses, if any: the statement must reach exactly one shard. */
  localTable: string | undefined;
}

/** The (schema-qualified, when it is) name of the first per-data-source table, if any. */
function localTableName(tables: TableRef[]): string | undefined {
  const t = tables.find((x) => x.kind === 'local');
  if (t === undefined) return undefined;
  const schema = t.node.schemaname;
  return typeof schema === 'string' ? `${schema}.${t.logical}` : t.logical;
}

/** Analyses a parsed statement against the layout; refuses what can never be routed. */
export function analyseStatement(sql: string, stmt: SqlNode, layout: ShardingLayout): Analysis {
  const kindKey = Object.keys(stmt)[0];
  const kinds: Record<string, RoutePlan['kind']> = {
    SelectStmt: 'select',
    InsertStmt: 'insert',
    UpdateStmt: 'update',
    DeleteStmt: 'delete',
  };
  const kind = kindKey === undefined ? undefined : kinds[kindKey];
  if (kind === undefined) {
    throw unsupported(
      sql,
      `only SELECT, INSERT, UPDATE and DELETE are routed (got ${kindKey ?? 'nothing'}); run DDL per shard and use transaction() instead of BEGIN/COMMIT`,
    );
  }
  // A CTE read once in the SELECT's own FROM is a subquery in FROM under another name.
  if (kind === 'select') inlineCommonTableExpressions(stmt);
  const body = stmt[kindKey!] as SqlNode;
  const tables = findTables(stmt, layout);
  const sharded = tables.filter((t) => t.kind === 'sharded');
  let shardedTable: ShardedTable | undefined;
  if (sharded.length > 0) {
    const first = layout.tables.get(sharded[0]!.logical)!;
    for (const t of sharded) {
      const def = layout.tables.get(t.logical)!;
      if (def.bindingGroup !== first.bindingGroup) {
        throw unsupported(
          sql,
          `${first.name} and ${def.name} are sharded separately and not bound; a join between them would cross shards (declare them in one binding group if they share the sharding key)`,
        );
      }
    }
    const single = tables.find((t) => t.kind === 'single');
    if (single !== undefined) {
      throw unsupported(
        sql,
        `${single.logical} is not declared in the layout but is used with the sharded table ${first.name}; declare it as broadcast or sharded`,
      );
    }
    shardedTable = first;
  }
  const write = kind !== 'select' || body.lockingClause !== undefined;
  const analysis: Analysis = {
    sql,
    kind,
    write,
    tables,
    broadcastWrite:
      kind !== 'select' &&
      layout.broadcastTables.has(
        ((body.relation as SqlNode | undefined)?.relname as string | undefined) ?? '',
      ),
    shardedTable,
    condition: { k: 'all' },
    insert: undefined,
    direct: createTemplate(stmt, tables, undefined),
    scatter: undefined,
    scatterError: undefined,
    fingerprint: undefined,
    splits: new Map(),
    shardedNames: [...new Set(sharded.map((t) => t.logical))],
    localTable: localTableName(tables),
    pointReason:
      shardedTable === undefined
        ? ''
        : `${shardedTable.shardingColumn} condition: 1 of ${shardedTable.shardCount} shards`,
  };
  if (shardedTable === undefined) return analysis;

  if (kind === 'insert') {
    analysis.insert = insertRows(sql, body, shardedTable, layout);
    return analysis;
  }
  if (kind === 'update')
    checkShardingColumnUpdate(sql, body.targetList as SqlNode[] | undefined, sharded, layout);
  if (kind === 'select' && isSetOperation(body)) {
    analysis.condition = setOperationCondition(body, layout);
    try {
      analysis.scatter = setOperationPlan(sql, stmt, layout);
    } catch (err) {
      if (!(err instanceof PeakError)) throw err;
      analysis.scatterError = err;
    }
    return analysis;
  }
  // With FROM-subqueries (or a WITH left as written), the outer WHERE names the outer
  // tables' and the derived tables' columns only, never the subqueries' own tables.
  const named =
    kind === 'select' && (hasDerivedTable(body) || body.withClause !== undefined)
      ? outerTables(body, sharded)
      : sharded;
  analysis.condition = extractCondition(body.whereClause as SqlNode | undefined, named, layout);
  // A derived table's own WHERE narrows the shards too (`FROM (… WHERE buyer_id = $1) x`).
  const inner = kind === 'select' ? derivedCondition(body, layout) : undefined;
  if (inner !== undefined) analysis.condition = { k: 'and', parts: [analysis.condition, inner] };
  if (kind === 'select') {
    try {
      analysis.scatter = scatterPlan(sql, stmt, layout);
    } catch (err) {
      if (!(err instanceof PeakError)) throw err;
      analysis.scatterError = err;
    }
  }
  return analysis;
}
