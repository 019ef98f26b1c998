/**
 * The sharded database: the router plus one `pg` pool per primary and replica. `query()`
 * routes a parameterised statement, runs the physical statements (in parallel across
 * shards), and merges the answers; `transaction()` runs a local transaction on one shard
 * database, with the same shape as an unsharded database's. Stress traffic (the call
 * context's stress flag) is rewritten to shadow tables; every physical statement is timed
 * and reported to the statement collector with its shard, rows and fingerprint.
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { assertDeadline, currentContext, remainingTime } from '../core/context.js';
import { DeadlineExceededError, ErrorCodes, PeakError } from '../core/errors.js';
import { type FieldInfo, mergeRows } from './result-merger.js';
import { mergeStream, type RowSource } from './result-stream.js';
import type { RoutePlan, RouteUnit } from './route-plan.js';
import type { ShardValue } from './sharding-algorithm.js';
import {
  createLayout,
  type ShardingLayout,
  type ShardingLayoutOptions,
} from './sharding-layout.js';
import { loadSqlParser, shortSql } from './sql-parser.js';
import { SqlRouter, type SqlRouterOptions } from './sql-router.js';

/** A connection: a PostgreSQL URL or a `pg` pool config. */
export type ConnectionConfig = string | pg.PoolConfig;

/** The connections of one data source: its primary and optional read replicas. */
export interface DataSourceConnection {
  primary: ConnectionConfig;
  /** Read replicas; reads outside transactions are balanced over them. */
  replicas?: ConnectionConfig[];
  /** Replicas lagging more than this are skipped (reads go to the primary). Default 1000 ms. */
  maxReplicaLagMs?: number;
  /**
   * The SQL run on a replica to measure its lag; one row with a numeric `lag_ms`. Default:
   * physical streaming replication (0 when caught up, else now − last replayed commit).
   * Give your own for logical replication or a replication proxy.
   */
  replicaLagQuery?: string;
}

/** One physical statement, as reported to collectors (slow SQL, telemetry). */
export interface StatementEvent {
  /** The statement as the application wrote it. */
  sql: string;
  /** The parser's fingerprint of `sql` (equal for statements differing only in values). */
  fingerprint: string;
  /** The physical statement that ran. */
  physicalSql: string;
  dataSource: string;
  shard: number | undefined;
  /** The shards of a combined (UNION ALL) statement. */
  shards?: number[];
  role: 'primary' | 'replica';
  /** Rows returned (SELECT) or changed (writes). */
  rows: number;
  durationMs: number;
  /** True when `durationMs` reached the slow threshold. */
  slow: boolean;
  shadow: boolean;
  /** The error message when it failed. */
  error?: string;
}

/** Receives every physical statement (the telemetry seam). */
export interface StatementCollector {
  record(event: StatementEvent): void;
}

/** Options for {@link ShardedDatabase.connect}: one object, defaults below. */
export interface ShardedDatabaseOptions {
  /** The layout, or its options (validated here). */
  layout: ShardingLayout | ShardingLayoutOptions;
  /** Connections by data source name; every data source of the layout needs one. */
  connections: Record<string, DataSourceConnection>;
  /** Connections per pool. Default 10. */
  poolSize?: number;
  /** Receives every physical statement. */
  collector?: StatementCollector;
  /** A statement at least this slow is flagged `slow`. Default 200 ms. */
  slowThresholdMs?: number;
  /** How often replica lag is measured (on demand, at most this often). Default 1000 ms. */
  replicaCheckIntervalMs?: number;
  /** Router options (statement cache size, UNION ALL per data source). */
  router?: SqlRouterOptions;
}

/** What `query()` returns. */
export interface ShardedQueryResult<R = Record<string, unknown>> {
  rows: R[];
  /** Rows returned or changed, summed over shards. */
  rowCount: number;
  fields: FieldInfo[];
  /** Where it went (for logs and debugging). */
  route: RoutePlan;
}

/** Options for {@link ShardedDatabase.transaction}. */
export interface TransactionOptions {
  /**
   * Allow statements on several shard databases: each gets its own local transaction,
   * committed one after another. Not atomic across databases (best effort); off by default.
   */
  bestEffort?: boolean;
  /** Bind the transaction to the shard of this key up front (so `tx.client` is usable at once). */
  routeBy?: { table: string; value: ShardValue };
}

interface ReplicaState {
  pool: pg.Pool;
  lagQuery: string;
  lagMs: number | undefined;
  checkedAt: number;
  checking: Promise<void> | undefined;
}

interface DataSourcePools {
  primary: pg.Pool;
  replicas: ReplicaState[];
  maxLagMs: number;
  next: number;
}

function poolConfig(c: ConnectionConfig, max: number): pg.PoolConfig {
  return typeof c === 'string' ? { connectionString: c, max } : { max, ...c };
}

function ignoreClientError(): void {}

function toParam(v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : v;
}

const LAG_SQL = `SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0
  WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
  ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) * 1000, 0) END::float8 AS lag_ms`;

/** A sharded database over several PostgreSQL data sources. */
export class ShardedDatabase {
  /** The validated layout. */
  readonly layout: ShardingLayout;
  /** The router (exposed for `route()` previews and tests). */
  readonly router: SqlRouter;
  readonly #pools = new Map<string, DataSourcePools>();
  readonly #collectors: StatementCollector[] = [];
  readonly #slowMs: number;
  readonly #checkMs: number;
  #closed = false;

  private constructor(layout: ShardingLayout, options: ShardedDatabaseOptions) {
    this.layout = layout;
    this.router = new SqlRouter(layout, options.router);
    this.#slowMs = options.slowThresholdMs ?? 200;
    this.#checkMs = options.replicaCheckIntervalMs ?? 1000;
    if (options.collector !== undefined) this.#collectors.push(options.collector);
    const max = options.poolSize ?? 10;
    for (const name of layout.dataSources) {
      const conn = options.connections?.[name];
      if (conn === undefined || conn.primary === undefined) {
        throw new PeakError(
          ErrorCodes.DATA_LAYOUT,
          `data layout: connections.${name}: the data source ${name} has no primary connection; give connections.${name}.primary (a URL or pg pool config)`,
          { details: { input: `connections.${name}` } },
        );
      }
      const primary = new pg.Pool(poolConfig(conn.primary, max));
      primary.on('error', () => {}); // idle-client errors surface on the next query
      const replicas = (conn.replicas ?? []).map((r) => {
        const pool = new pg.Pool(poolConfig(r, max));
        pool.on('error', () => {});
        return {
          pool,
          lagQuery: conn.replicaLagQuery ?? LAG_SQL,
          lagMs: undefined,
          checkedAt: 0,
          checking: undefined,
        };
      });
      this.#pools.set(name, { primary, replicas, maxLagMs: conn.maxReplicaLagMs ?? 1000, next: 0 });
    }
  }

  /**
   * Validates the options, loads the SQL parser, opens the pools, checks every primary
   * answers (PEAK_DB_UNREACHABLE naming the data source otherwise) and measures replica lag.
   */
  static async connect(options: ShardedDatabaseOptions): Promise<ShardedDatabase> {
    await loadSqlParser();
    const layout = 'node' in options.layout ? options.layout : createLayout(options.layout);
    const db = new ShardedDatabase(layout, options);
    try {
      await Promise.all(
        layout.dataSources.map(async (name) => {
          try {
            await db.primary(name).query('SELECT 1');
          } catch (err) {
            throw new PeakError(
              ErrorCodes.DB_UNREACHABLE,
              `data source ${name}: cannot reach its primary PostgreSQL (${(err as Error).message}); check connections.${name}.primary`,
              { cause: err, details: { input: `connections.${name}.primary`, dataSource: name } },
            );
          }
        }),
      );
      await db.checkReplicas();
    } catch (err) {
      await db.close();
      throw err;
    }
    return db;
  }

  /** Adds a statement collector (slow SQL log, telemetry); returns a function removing it. */
  addCollector(collector: StatementCollector): () => void {
    this.#collectors.push(collector);
    return () => {
      const i = this.#collectors.indexOf(collector);
      if (i >= 0) this.#collectors.splice(i, 1);
    };
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
    return this.#execute<R>(plan, (unit) => {
      const ds = this.#pools.get(unit.dataSource)!;
      if (plan.write) return { runner: ds.primary, role: 'primary' };
      const replica = this.#pickReplica(ds);
      return replica === undefined
        ? { runner: ds.primary, role: 'primary' }
        : { runner: replica, role: 'replica' };
    });
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
    if (plan.kind !== 'select' || plan.write) {
      throw new PeakError(
        ErrorCodes.DATA_UNSUPPORTED,
        `stream() reads plain SELECTs (no writes, no FOR UPDATE); use query(); statement: ${shortSql(sql)}`,
        { details: { sql } },
      );
    }
    if (remainingTime() <= 0) assertDeadline(`data stream (${shortSql(sql)})`);
    const opened: { client: pg.PoolClient; failed: boolean }[] = [];
    try {
      const sources: RowSource[] = [];
      for (const unit of plan.units) {
        const ds = this.#pools.get(unit.dataSource)!;
        const replica = this.#pickReplica(ds);
        const client = await (replica ?? ds.primary).connect();
        client.on('error', ignoreClientError);
        const entry = { client, failed: false };
        opened.push(entry);
        const role = replica === undefined ? 'primary' : 'replica';
        const started = performance.now();
        let rows = 0;
        let done = false;
        try {
          await client.query('BEGIN READ ONLY');
          // The unit's SQL is a complete statement printed from the rewritten tree.
          await client.query({
            text: `DECLARE peak_stream NO SCROLL CURSOR FOR ${unit.sql}`,
            values: unit.params.map(toParam),
          });
        } catch (err) {
          entry.failed = true;
          this.#report(plan, unit, role, started, 0, err);
          throw new PeakError(
            ErrorCodes.DATA_ROUTE,
            `stream failed on ${unit.dataSource}${unit.shard === undefined ? '' : ` shard ${unit.shard}`}: ${(err as Error).message}; statement: ${shortSql(sql)}`,
            {
              cause: err,
              details: {
                sql,
                physicalSql: unit.sql,
                dataSource: unit.dataSource,
                shard: unit.shard,
              },
            },
          );
        }
        sources.push({
          fetch: async () => {
            if (done) return { rows: [], fields: [] };
            let res: pg.QueryResult;
            try {
              res = await client.query({
                text: `FETCH ${batchSize} FROM peak_stream`,
                rowMode: 'array',
              } as pg.QueryConfig);
            } catch (err) {
              entry.failed = true;
              done = true;
              this.#report(plan, unit, role, started, rows, err);
              throw err;
            }
            rows += res.rows.length;
            if (res.rows.length < batchSize) {
              done = true;
              this.#report(plan, unit, role, started, rows);
            }
            return {
              rows: res.rows as unknown[][],
              fields: res.fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID })),
            };
          },
        });
      }
      for await (const row of mergeStream(plan.merge, sources)) yield row as R;
    } finally {
      for (const { client, failed } of opened) {
        try {
          await client.query(failed ? 'ROLLBACK' : 'COMMIT');
          client.off('error', ignoreClientError);
          client.release();
        } catch (err) {
          client.off('error', ignoreClientError);
          client.release(err as Error);
        }
      }
    }
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
    const tx = new ShardTransaction(this, options.bestEffort === true);
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

  /** The primary pool of a data source (for DDL and administration, not for routed traffic). */
  primary(dataSource: string): pg.Pool {
    const ds = this.#pools.get(dataSource);
    if (ds === undefined) {
      throw new PeakError(
        ErrorCodes.INVALID_ARGUMENT,
        `unknown data source ${JSON.stringify(dataSource)}`,
        {
          details: { input: 'dataSource' },
        },
      );
    }
    return ds.primary;
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
  async createShadowTables(): Promise<
    { dataSource: string; table: string; shadow: string; created: boolean }[]
  > {
    const out: { dataSource: string; table: string; shadow: string; created: boolean }[] = [];
    for (const t of this.physicalTables()) {
      const pool = this.primary(t.dataSource);
      const shadow = `${t.table}${this.layout.shadowSuffix}`;
      const { rows } = await pool.query<{ real: string | null; shadow: string | null }>(
        'SELECT to_regclass($1)::text AS real, to_regclass($2)::text AS shadow',
        [t.table, shadow],
      );
      if (rows[0]?.real === null || rows[0]?.real === undefined) continue;
      if (rows[0].shadow === null) {
        await pool.query(
          `CREATE TABLE IF NOT EXISTS ${pg.escapeIdentifier(shadow)} (LIKE ${pg.escapeIdentifier(t.table)} INCLUDING ALL)`,
        );
      }
      out.push({
        dataSource: t.dataSource,
        table: t.table,
        shadow,
        created: rows[0].shadow === null,
      });
    }
    return out;
  }

  /** Measures the lag of every replica now (also done on demand while routing reads). */
  async checkReplicas(): Promise<void> {
    const all: Promise<void>[] = [];
    for (const ds of this.#pools.values()) for (const r of ds.replicas) all.push(this.#measure(r));
    await Promise.all(all);
  }

  /** The last measured lag of each replica (ms; undefined before the first check, Infinity when unreachable). */
  replicaLag(): Record<string, (number | undefined)[]> {
    const out: Record<string, (number | undefined)[]> = {};
    for (const [name, ds] of this.#pools) out[name] = ds.replicas.map((r) => r.lagMs);
    return out;
  }

  /** Closes every pool. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const ends: Promise<void>[] = [];
    for (const ds of this.#pools.values()) {
      ends.push(ds.primary.end());
      for (const r of ds.replicas) ends.push(r.pool.end());
    }
    await Promise.allSettled(ends);
  }

  #assertOpen(): void {
    if (this.#closed)
      throw new PeakError(ErrorCodes.INVALID_ARGUMENT, 'the sharded database is closed');
  }

  #measure(r: ReplicaState): Promise<void> {
    r.checking ??= r.pool
      .query<{ lag_ms: number | string }>(r.lagQuery)
      .then(
        (res) => {
          const lag = Number(res.rows[0]?.lag_ms);
          r.lagMs = Number.isFinite(lag) ? lag : Number.POSITIVE_INFINITY;
        },
        () => {
          r.lagMs = Number.POSITIVE_INFINITY;
        },
      )
      .finally(() => {
        r.checkedAt = Date.now();
        r.checking = undefined;
      });
    return r.checking;
  }

  #pickReplica(ds: DataSourcePools): pg.Pool | undefined {
    if (ds.replicas.length === 0) return undefined;
    const now = Date.now();
    for (const r of ds.replicas) {
      if (now - r.checkedAt >= this.#checkMs && r.checking === undefined) void this.#measure(r);
    }
    for (let i = 0; i < ds.replicas.length; i++) {
      const r = ds.replicas[(ds.next + i) % ds.replicas.length]!;
      if (r.lagMs !== undefined && r.lagMs <= ds.maxLagMs) {
        ds.next = (ds.next + i + 1) % ds.replicas.length;
        return r.pool;
      }
    }
    return undefined;
  }

  /** Runs a plan's units with the runner `pick` gives each; merges; reports statements. */
  async #execute<R>(
    plan: RoutePlan,
    pick: (unit: RouteUnit) => { runner: pg.Pool | pg.PoolClient; role: 'primary' | 'replica' },
    sequential = false,
  ): Promise<ShardedQueryResult<R>> {
    // The caller's deadline: refuse late work, and bound the wait (pg's query_timeout).
    const left = remainingTime();
    if (left <= 0) assertDeadline(`data query (${shortSql(plan.sql)})`);
    const timeout = Number.isFinite(left) ? { query_timeout: Math.max(1, Math.ceil(left)) } : {};
    const arrays = plan.merge !== undefined;
    if (plan.units.length === 1 && !arrays) {
      // The point query: one statement, no merge, as little in between as possible.
      const unit = plan.units[0]!;
      const { runner, role } = pick(unit);
      const started = this.#collectors.length === 0 ? 0 : performance.now();
      let res: pg.QueryResult;
      try {
        res = await runner.query({
          text: unit.sql,
          values: unit.params.map(toParam),
          ...timeout,
        } as pg.QueryConfig);
      } catch (err) {
        throw this.#failure(plan, unit, role, started, err);
      }
      this.#report(plan, unit, role, started, res.rows.length || (res.rowCount ?? 0));
      return {
        rows: res.rows as R[],
        rowCount: res.rowCount ?? res.rows.length,
        fields: res.fields,
        route: plan,
      };
    }
    const run = async (unit: RouteUnit) => {
      const { runner, role } = pick(unit);
      const started = performance.now();
      try {
        const res = await runner.query({
          text: unit.sql,
          values: unit.params.map(toParam),
          ...(arrays ? { rowMode: 'array' } : {}),
          ...timeout,
        } as pg.QueryConfig);
        this.#report(plan, unit, role, started, res.rows.length || (res.rowCount ?? 0));
        return res;
      } catch (err) {
        throw this.#failure(plan, unit, role, started, err);
      }
    };
    let results: pg.QueryResult[];
    if (sequential) {
      // One client runs one statement at a time (transactions).
      results = [];
      for (const unit of plan.units) results.push(await run(unit));
    } else {
      results = await Promise.all(plan.units.map(run));
    }
    if (plan.merge !== undefined) {
      const merged = mergeRows(
        plan.merge,
        results.map((r) => ({
          rows: r.rows as unknown[][],
          fields: r.fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID })),
        })),
      );
      return {
        rows: merged.rows as R[],
        rowCount: merged.rows.length,
        fields: merged.fields,
        route: plan,
      };
    }
    const rows: R[] = [];
    let rowCount = 0;
    for (const r of results) {
      for (const row of r.rows) rows.push(row as R);
      rowCount += r.rowCount ?? r.rows.length;
    }
    const first = results[0];
    return {
      rows,
      rowCount,
      fields: (first?.fields ?? []).map((f) => ({ name: f.name, dataTypeID: f.dataTypeID })),
      route: plan,
    };
  }

  /** Reports a failed physical statement and turns the driver's error into a PeakError. */
  #failure(
    plan: RoutePlan,
    unit: RouteUnit,
    role: 'primary' | 'replica',
    started: number,
    err: unknown,
  ): PeakError {
    this.#report(plan, unit, role, started, 0, err);
    if ((err as Error).message === 'Query read timeout') {
      return new DeadlineExceededError(
        `data query on ${unit.dataSource}: the caller's deadline passed while waiting for PostgreSQL; statement: ${shortSql(plan.sql)}`,
        { cause: err, details: { sql: plan.sql, dataSource: unit.dataSource, shard: unit.shard } },
      );
    }
    return new PeakError(
      ErrorCodes.DATA_ROUTE,
      `statement failed on ${unit.dataSource}${unit.shard === undefined ? '' : ` shard ${unit.shard}`}: ${(err as Error).message}; statement: ${shortSql(plan.sql)}`,
      {
        cause: err,
        details: {
          sql: plan.sql,
          physicalSql: unit.sql,
          dataSource: unit.dataSource,
          shard: unit.shard,
        },
      },
    );
  }

  #report(
    plan: RoutePlan,
    unit: RouteUnit,
    role: 'primary' | 'replica',
    started: number,
    rows: number,
    err?: unknown,
  ): void {
    if (this.#collectors.length === 0) return;
    const durationMs = performance.now() - started;
    const event: StatementEvent = {
      sql: plan.sql,
      fingerprint: this.router.fingerprint(plan.sql),
      physicalSql: unit.sql,
      dataSource: unit.dataSource,
      shard: unit.shard,
      ...(unit.shards === undefined ? {} : { shards: unit.shards }),
      role,
      rows,
      durationMs,
      slow: durationMs >= this.#slowMs,
      shadow: plan.shadow,
      ...(err === undefined ? {} : { error: (err as Error).message }),
    };
    for (const c of this.#collectors) {
      try {
        c.record(event);
      } catch {
        // A collector's failure must not fail the query.
      }
    }
  }

  /** @internal Used by {@link ShardTransaction}. */
  executeIn<R>(
    plan: RoutePlan,
    clientOf: (dataSource: string) => pg.PoolClient,
  ): Promise<ShardedQueryResult<R>> {
    return this.#execute<R>(
      plan,
      (unit) => ({ runner: clientOf(unit.dataSource), role: 'primary' }),
      true,
    );
  }

  /** @internal The primary pool, for transactions. */
  poolOf(dataSource: string): pg.Pool {
    return this.primary(dataSource);
  }
}

/** A local transaction on one shard database (or best-effort on several). */
export class ShardTransaction {
  readonly #db: ShardedDatabase;
  readonly #bestEffort: boolean;
  readonly #clients = new Map<string, pg.PoolClient>();
  #done = false;

  /** @internal Made by {@link ShardedDatabase.transaction}. */
  constructor(db: ShardedDatabase, bestEffort: boolean) {
    this.#db = db;
    this.#bestEffort = bestEffort;
  }

  /** The data source this transaction is bound to (undefined before its first statement). */
  get dataSource(): string | undefined {
    return this.#clients.keys().next().value;
  }

  /**
   * The underlying `pg` client of the single-shard transaction, so other libraries (the
   * MQ's `sendInTransaction`) can write in the same transaction. Bound by the first
   * statement or `routeBy`.
   */
  get client(): pg.PoolClient {
    if (this.#clients.size !== 1) {
      throw new PeakError(
        ErrorCodes.DATA_CROSS_SHARD,
        this.#clients.size === 0
          ? 'the transaction is not bound to a shard yet; run a statement first or pass routeBy to transaction()'
          : 'a best-effort transaction spans several databases and has no single client',
      );
    }
    return this.#clients.values().next().value!;
  }

  /** @internal Opens (BEGIN) the local transaction on a data source. */
  async bind(dataSource: string): Promise<pg.PoolClient> {
    const have = this.#clients.get(dataSource);
    if (have !== undefined) return have;
    const client = await this.#db.poolOf(dataSource).connect();
    // A checked-out client that loses its connection emits 'error'; the next statement
    // (or COMMIT) reports it, so the process must not crash on the event.
    client.on('error', ignoreClientError);
    try {
      await client.query('BEGIN');
    } catch (err) {
      client.off('error', ignoreClientError);
      client.release(err as Error);
      throw err;
    }
    this.#clients.set(dataSource, client);
    return client;
  }

  /** Routes and runs a statement inside the transaction (refusing other shard databases). */
  async query<R = Record<string, unknown>>(
    sql: string,
    params: readonly unknown[] = [],
  ): Promise<ShardedQueryResult<R>> {
    if (this.#done) {
      throw new PeakError(
        ErrorCodes.INVALID_ARGUMENT,
        `the transaction has ended; statement: ${shortSql(sql)}`,
      );
    }
    const plan = this.#db.route(sql, params);
    const targets = [...new Set(plan.units.map((u) => u.dataSource))];
    if (!this.#bestEffort) {
      const bound = this.dataSource;
      const other = targets.find((d) => d !== (bound ?? targets[0]));
      if (other !== undefined) {
        throw new PeakError(
          ErrorCodes.DATA_CROSS_SHARD,
          `the statement routes to ${targets.join(', ')} but the transaction ${bound === undefined ? 'can bind only one database' : `is bound to ${bound}`}; keep a transaction on one shard (same sharding key) or pass { bestEffort: true }; statement: ${shortSql(sql)}`,
          { details: { sql, bound, targets } },
        );
      }
    }
    for (const d of targets) await this.bind(d);
    return this.#db.executeIn<R>(plan, (d) => this.#clients.get(d)!);
  }

  /** @internal Commits or rolls back every local transaction and releases the clients. */
  async finish(commit: boolean): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    let failure: unknown;
    let failedOn: string | undefined;
    const committed: string[] = [];
    const several = this.#clients.size > 1;
    for (const [dataSource, client] of this.#clients) {
      try {
        await client.query(commit && failure === undefined ? 'COMMIT' : 'ROLLBACK');
        if (commit && failure === undefined) committed.push(dataSource);
        client.off('error', ignoreClientError);
        client.release();
      } catch (err) {
        if (failure === undefined) {
          failure = err;
          failedOn = dataSource;
        }
        client.off('error', ignoreClientError);
        client.release(err as Error);
      }
    }
    this.#clients.clear();
    if (failure === undefined || !commit) return;
    if (!several) throw failure; // exactly what an unsharded database would throw
    throw new PeakError(
      ErrorCodes.DATA_CROSS_SHARD,
      `best-effort transaction: COMMIT failed on ${failedOn} (${(failure as Error).message}); already committed on: ${committed.join(', ') || 'none'}; the others were rolled back`,
      { cause: failure, details: { failedOn, committed } },
    );
  }
}
