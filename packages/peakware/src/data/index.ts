/**
 * `peakware/data`: database + table sharding over PostgreSQL (DRDS / TSharding style):
 * a declared layout, routing by the real PostgreSQL parser, syntax-tree rewrite,
 * scatter-gather merge, gene ids, single-shard and XA transactions, read/write split, shadow
 * tables for stress traffic, and per-statement timing for slow-SQL telemetry.
 */

export type {
  DataSource,
  DataSourceQueryOptions,
  DataSourceResult,
  DataSourceSession,
  QueryRunner,
} from './data-source.js';
export type { DataSourceConnection } from './data-source-connections.js';
export { addDecimal, compareDecimal, divideDecimal } from './decimal.js';
export { GeneIdGenerator, type GeneIdGeneratorOptions } from './gene-id-generator.js';
export {
  type ConnectionConfig,
  PgDataSource,
  type PgDataSourceOptions,
} from './pg-data-source.js';
export {
  type ColumnPosition,
  type FieldInfo,
  kWayMerge,
  type MergedRows,
  type MergeOrder,
  type MergePlan,
  mergeRows,
  type OutputColumn,
  type ShardRows,
} from './result-merger.js';
export type { RoutePlan, RouteUnit } from './route-plan.js';
export type { ShadowTable } from './shadow-tables.js';
export { ShardTransaction, type TransactionOptions } from './shard-transaction.js';
export { ShardedDatabase, type ShardedDatabaseOptions } from './sharded-database.js';
export {
  type AlgorithmSpec,
  ConsistentHashAlgorithm,
  createAlgorithm,
  fnv1a32,
  HashModAlgorithm,
  IntervalAlgorithm,
  ModAlgorithm,
  RangeAlgorithm,
  type RangeBound,
  type ShardingAlgorithm,
  type ShardValue,
} from './sharding-algorithm.js';
export {
  createLayout,
  type ShardedTable,
  type ShardedTableOptions,
  type ShardingLayout,
  type ShardingLayoutOptions,
  type ShardNode,
} from './sharding-layout.js';
export { fingerprintStatement, loadSqlParser } from './sql-parser.js';
export { SqlRouter, type SqlRouterOptions } from './sql-router.js';
export type { StatementCollector, StatementEvent } from './statement-collector.js';
export type { ShardedQueryResult } from './statement-executor.js';
export type { StatementHook } from './statement-hook.js';
export {
  type FingerprintStats,
  StatementStats,
  type StatementStatsOptions,
} from './statement-stats.js';
export type { XaHook, XaPhase, XaResolution } from './xa-commit.js';
export { listInDoubt, type XaDecision, type XaInDoubt } from './xa-in-doubt.js';

import { createLayout, type ShardingLayoutOptions } from './sharding-layout.js';
import { loadSqlParser } from './sql-parser.js';
import { SqlRouter } from './sql-router.js';

/** Loads the parser and returns a router for a layout (no connections: previews, the CLI). */
export async function createRouter(layout: ShardingLayoutOptions): Promise<SqlRouter> {
  await loadSqlParser();
  return new SqlRouter(createLayout(layout));
}
