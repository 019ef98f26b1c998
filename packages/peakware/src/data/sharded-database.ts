/**
 * The sharded database: the router plus, for each data source, its primary and replicas
 * behind the `DataSource` seam. `query()` routes a parameterised statement, runs the
 * physical statements (in parallel across shards), and merges the answers;
 * `transaction()` runs a local transaction on one shard database, with the same shape as
 * an unsharded database's. Stress traffic (the call context's stress flag) is rewritten to
 * shadow tables; every physical statement is timed and reported to the statement collector
 * with its shard, rows and fingerprint.
 *
 * The stages live beside it: `data-source-connections.ts` (data sources and pools),
 * `data-source-group.ts` (read/write split, replica choice), `statement-executor.ts`
 * (execution and merge), `shard-stream.ts` (cursors), `shard-transaction.ts` (transactions),
 * `xa-commit.ts` (two-phase commit across shard databases and its recovery).
 */
import { currentContext } from '../core/context.js';
import { ErrorCodes, PeakError } from '../core/errors.js';
import type { DataSource } from './data-source.js';
import {
  checkPrimaries,
  type DataSourceConnection,
  openDataSources,
} from './data-source-connections.js';
import type { DataSourceGroup } from './data-source-group.js';
import type { RoutePlan, RouteUnit } from './route-plan.js';
import { createShadowTables, type ShadowTable } from './shadow-tables.js';
import { streamPlan } from './shard-stream.js';
import { ShardTransaction, type TransactionOptions } from './shard-transaction.js';
import {
  createLayout,
  type ShardingLayout,
  type ShardingLayoutOptions,
} from './sharding-layout.js';
import { loadSqlParser } from './sql-parser.js';
import { SqlRouter, type SqlRouterOptions } from './sql-router.js';
import type { StatementCollector } from './statement-collector.js';
import { type ShardedQueryResult, StatementExecutor } from './statement-executor.js';
import type { StatementHook } from './statement-hook.js';
import { recoverTwoPhase, type XaHook, type XaResolution } from './xa-commit.js';

/** Options for {@link ShardedDatabase.connect}: one object, defaults below. */
export interface ShardedDatabaseOptions {
  /** The layout, or its options (validated here). */
  layout: ShardingLayout | ShardingLayoutOptions;
  /** Connections by data source name; every data source of the layout needs one. */
  connections: Record<string, DataSourceConnection>;
  /** Connections per pool. Default 10. */
  poolSize?: number;
  /**
   * Connections per pool opened by `connect` and kept while idle (HikariCP's
   * `minimumIdle`). Default 0: opened on demand, closed after 10 s idle. A service that
   * takes a flash sale sets it to `poolSize`, so no connection is opened under load.
   */
  minIdle?: number;
  /** Receives every physical statement. */
  collector?: StatementCollector;
  /** A statement at least this slow is flagged `slow`. Default 200 ms. */
  slowThresholdMs?: number;
  /** How often replica lag is measured (on demand, at most this often). Default 1000 ms. */
  replicaCheckIntervalMs?: number;
  /** Router options (statement cache size, UNION ALL per data source). */
  router?: SqlRouterOptions;
  /**
   * How often in-doubt XA transactions (prepared by a process that died between the two
   * phases) are settled in the background once this database has run an XA transaction,
   * ms; 0: never (call `recoverXa` yourself). Default 10 000.
   */
  xaRecoveryIntervalMs?: number;
  /**
   * Server-side prepared statements for parameterised statements from their second run
   * (pgjdbc's default). Default true; false behind a pooler that drops them between
   * transactions (PgBouncer's transaction mode before 1.21).
   */
  prepareStatements?: boolean;
}

/** A sharded database over several PostgreSQL data sources. */
export class ShardedDatabase {
  /** The validated layout. */
  readonly layout: ShardingLayout;
  /** The router (exposed for `route()` previews and tests). */
  readonly router: SqlRouter;
  readonly #groups: Map<string, DataSourceGroup>;
  readonly #executor: StatementExecutor;
  /** Where a unit runs outside transactions (made once, not per statement). */
  readonly #onPrimary = (unit: RouteUnit) => this.#groups.get(unit.dataSource)!.primary;
  readonly #forRead = (unit: RouteUnit) => this.#groups.get(unit.dataSource)!.forRead();
  #closed = false;
  #xaHook: XaHook | undefined;
  #xaTimer: NodeJS.Timeout | undefined;
  readonly #xaRecoveryMs: number;

  private constructor(layout: ShardingLayout, options: ShardedDatabaseOptions) {
    this.layout = layout;
    this.#xaRecoveryMs = options.xaRecoveryIntervalMs ?? 10_000;
    this.router = new SqlRouter(layout, options.router);
    this.#executor = new StatementExecutor({
      slowThresholdMs: options.slowThresholdMs ?? 200,
      fingerprint: (sql) => this.router.fingerprint(sql),
      ...(options.collector === undefined ? {} : { collector: options.collector }),
    });
    this.#groups = openDataSources(
      layout.dataSources,
      options.connections,
      {
        size: options.poolSize ?? 10,
        minIdle: options.minIdle ?? 0,
        prepareStatements: options.prepareStatements ?? true,
      },
      options.replicaCheckIntervalMs ?? 1000,
    );
  }

  /**
   * Validates the options, loads the SQL parser, opens the pools, checks every primary
   * answers (PEAK_DB_UNREACHABLE naming the data source otherwise), opens each pool's
   * `minIdle` connections and measures replica lag.
   */
  static async connect(options: ShardedDatabaseOptions): Promise<ShardedDatabase> {
    await loadSqlParser();
    const layout = 'node' in options.layout ? options.layout : createLayout(options.layout);
    const db = new ShardedDatabase(layout, options);
    try {
      await checkPrimaries(db.#groups);
      await Promise.all([...db.#groups.values()].map((group) => group.warm()));
      await db.checkReplicas();
    } catch (err) {
      await db.close();
      throw err;
    }
    return db;
  }

  /** Adds a statement collector (slow SQL log, telemetry); returns a function removing it. */
  addCollector(collector: StatementCollector): () => void {
    return this.#executor.addCollector(collector);
  }

  /**
   * Sets the hook run before every logical statement, in transactions too (see
   * statement-hook.ts), or removes it with `undefined`. Fault drills use it.
   */
  setStatementHook(hook: StatementHook | undefined): void {
    this.#executor.hook = hook;
  }

  /** Where a statement would go under the current call context, without running it. */
  route(sql: string, params: readonly unknown[] = []): RoutePlan {
    return this.router.route(sql, params, currentContext()?.stress === true);
  }

  /** Routes, runs and merges one parameterised statement. */
  async query<R = Record<string, unknown>>(
    sql: string,
    params: readonly unknown[] = [],
  ): Promise<ShardedQueryResult<R>> {
    this.#assertOpen();
    const plan = this.route(sql, params);
    return this.#executor.execute<R>(plan, plan.write ? this.#onPrimary : this.#forRead);
  }

  /**
   * Streams the rows of a SELECT: each shard is read through a server-side cursor in
   * batches of `batchSize` and merged lazily (sorted answers through a heap), so memory
   * holds one batch per shard. Stop early with `break`; cursors are closed either way.
   * Outside transactions only; reads use replicas like `query()`.
   */
  async *stream<R = Record<string, unknown>>(
    sql: string,
    params: readonly unknown[] = [],
    options: { batchSize?: number } = {},
  ): AsyncGenerator<R> {
    this.#assertOpen();
    const batchSize = options.batchSize ?? 500;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new PeakError(
        ErrorCodes.INVALID_ARGUMENT,
        `stream: batchSize must be a positive integer, got ${batchSize}`,
        {
          details: { input: 'batchSize' },
        },
      );
    }
    const plan = this.router.route(sql, params, currentContext()?.stress === true, {
      combine: false,
    });
    yield* streamPlan<R>(plan, batchSize, this.#forRead, this.#executor);
  }

  /**
   * Runs `fn` in a local transaction on one shard database (bound by its first statement,
   * or by `options.routeBy`); commits when `fn` resolves, rolls back when it throws.
   */
  async transaction<T>(
    fn: (tx: ShardTransaction) => Promise<T>,
    options: TransactionOptions = {},
  ): Promise<T> {
    this.#assertOpen();
    if (options.xa === true) this.#startXaRecovery();
    const tx = new ShardTransaction(
      {
        route: (sql, params) => this.route(sql, params),
        primary: (dataSource) => this.primary(dataSource),
        executor: this.#executor,
        xaHook: () => this.#xaHook,
      },
      options.xa === true ? 'xa' : options.bestEffort === true ? 'best-effort' : 'local',
    );
    try {
      if (options.routeBy !== undefined) {
        const table = this.layout.tables.get(options.routeBy.table);
        if (table === undefined) {
          throw new PeakError(
            ErrorCodes.DATA_ROUTE,
            `transaction routeBy: ${options.routeBy.table} is not a sharded table`,
            {
              details: { input: 'routeBy.table' },
            },
          );
        }
        const shard = table.algorithm.shard(options.routeBy.value, table.shardCount);
        await tx.bind(this.layout.node(table, shard).dataSource);
      }
      const result = await fn(tx);
      await tx.finish(true);
      return result;
    } catch (err) {
      await tx.finish(false);
      throw err;
    }
  }

  /**
   * The primary of a data source, for DDL and administration (not for routed traffic).
   * Built from connection configs, it is a `PgDataSource`: `PgDataSource.from(db.primary(ds)).pool`
   * is the `pg` pool, for code that needs the driver itself.
   */
  primary(dataSource: string): DataSource {
    const group = this.#groups.get(dataSource);
    if (group === undefined) {
      throw new PeakError(
        ErrorCodes.INVALID_ARGUMENT,
        `unknown data source ${JSON.stringify(dataSource)}`,
        {
          details: { input: 'dataSource' },
        },
      );
    }
    return group.primary;
  }

  /** Every physical table of the layout: sharded tables per shard, broadcast tables per data source. */
  physicalTables(): {
    dataSource: string;
    logical: string;
    table: string;
    shard: number | undefined;
  }[] {
    const out: { dataSource: string; logical: string; table: string; shard: number | undefined }[] =
      [];
    for (const t of this.layout.tables.values()) {
      for (let s = 0; s < t.shardCount; s++) {
        const node = this.layout.node(t, s);
        out.push({ dataSource: node.dataSource, logical: t.name, table: node.table, shard: s });
      }
    }
    for (const b of this.layout.broadcastTables) {
      for (const d of this.layout.dataSources)
        out.push({ dataSource: d, logical: b, table: b, shard: undefined });
    }
    return out;
  }

  /**
   * Creates the shadow table of every physical table that exists (`CREATE TABLE IF NOT
   * EXISTS <t>_shadow (LIKE <t> INCLUDING ALL)`); returns the ones created or present.
   */
  createShadowTables(): Promise<ShadowTable[]> {
    return createShadowTables(
      this.physicalTables(),
      (dataSource) => this.primary(dataSource),
      this.layout.shadowSuffix,
    );
  }

  /** Measures the lag of every replica now (also done on demand while routing reads). */
  async checkReplicas(): Promise<void> {
    await Promise.all([...this.#groups.values()].map((g) => g.checkReplicas()));
  }

  /** The last measured lag of each replica (ms; undefined before the first check, Infinity when unreachable). */
  replicaLag(): Record<string, (number | undefined)[]> {
    const out: Record<string, (number | undefined)[]> = {};
    for (const [name, group] of this.#groups) out[name] = group.replicaLag();
    return out;
  }

  /**
   * Sets the hook run at each phase boundary of an XA commit (see xa-commit.ts), or removes
   * it with `undefined`. Fault drills and crash tests use it.
   */
  setXaHook(hook: XaHook | undefined): void {
    this.#xaHook = hook;
  }

  /**
   * Settles the XA transactions a crash left prepared (older than `olderThanMs`, default
   * 10 000) on every data source: committed where the coordinator committed, rolled back
   * where it did not. Runs in the background too (`xaRecoveryIntervalMs`).
   */
  async recoverXa(olderThanMs = 10_000): Promise<XaResolution[]> {
    this.#assertOpen();
    return recoverTwoPhase(
      { primary: (d) => this.primary(d), hook: () => undefined },
      this.layout.dataSources,
      olderThanMs,
    );
  }

  /** Settles in-doubt XA transactions in the background from now on (once). */
  #startXaRecovery(): void {
    if (this.#xaTimer !== undefined || this.#xaRecoveryMs <= 0) return;
    let running = false;
    this.#xaTimer = setInterval(() => {
      if (this.#closed || running) return; // one pass at a time (a pass may wait on a coordinator)
      running = true;
      void this.recoverXa()
        .catch(() => undefined) // the next pass retries
        .finally(() => {
          running = false;
        });
    }, this.#xaRecoveryMs);
    this.#xaTimer.unref();
  }

  /** Closes every pool. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#xaTimer);
    await Promise.allSettled([...this.#groups.values()].map((g) => g.close()));
  }

  #assertOpen(): void {
    if (this.#closed)
      throw new PeakError(ErrorCodes.INVALID_ARGUMENT, 'the sharded database is closed');
  }
}
