/**
 * Execution and merge: the physical statements of a route plan run on the runners the
 * caller picks (data sources, or a transaction's sessions), in parallel or one at a time,
 * bounded by the call context's deadline; their answers are merged (scatter SELECTs) or
 * concatenated, and every statement is timed and reported to the collectors.
 */
import { performance } from 'node:perf_hooks';
import { assertDeadline, remainingTime } from '../core/context.js';
import { DeadlineExceededError, ErrorCodes, PeakError } from '../core/errors.js';
import type { DataSourceQueryOptions, DataSourceResult, QueryRunner } from './data-source.js';
import { type FieldInfo, mergeRows } from './result-merger.js';
import type { RoutePlan, RouteUnit } from './route-plan.js';
import { shortSql } from './sql-parser.js';
import type { StatementCollector, StatementEvent } from './statement-collector.js';
import type { StatementHook } from './statement-hook.js';

/** What `query()` returns. */
export interface ShardedQueryResult<R = Record<string, unknown>> {
  rows: R[];
  /** Rows returned or changed, summed over shards. */
  rowCount: number;
  fields: FieldInfo[];
  /** Where it went (for logs and debugging). */
  route: RoutePlan;
}

/** Options of a {@link StatementExecutor}. */
export interface StatementExecutorOptions {
  /** A statement at least this slow is flagged `slow`. */
  slowThresholdMs: number;
  /** The fingerprint of a statement (the router caches it). */
  fingerprint(sql: string): string;
  /** The first collector, if any. */
  collector?: StatementCollector;
}

/** Runs route plans, merges their answers and reports every physical statement. */
export class StatementExecutor {
  readonly #collectors: StatementCollector[] = [];
  /** Runs before every logical statement (see statement-hook.ts); undefined: none. */
  hook: StatementHook | undefined;
  readonly #slowMs: number;
  readonly #fingerprint: (sql: string) => string;

  constructor(options: StatementExecutorOptions) {
    this.#slowMs = options.slowThresholdMs;
    this.#fingerprint = options.fingerprint;
    if (options.collector !== undefined) this.#collectors.push(options.collector);
  }

  /** Adds a statement collector; returns a function removing it. */
  addCollector(collector: StatementCollector): () => void {
    this.#collectors.push(collector);
    return () => {
      const i = this.#collectors.indexOf(collector);
      if (i >= 0) this.#collectors.splice(i, 1);
    };
  }

  /**
   * Runs a plan's units on the runner `runnerOf` gives each (one at a time when
   * `sequential`: a session runs one statement at a time); merges; reports statements.
   */
  async execute<R>(
    plan: RoutePlan,
    runnerOf: (unit: RouteUnit) => QueryRunner,
    sequential = false,
  ): Promise<ShardedQueryResult<R>> {
    if (this.hook !== undefined) await this.hook(plan);
    // The caller's deadline: refuse late work, and bound the wait for the database.
    const left = remainingTime();
    if (left <= 0) assertDeadline(`data query (${shortSql(plan.sql)})`);
    const timeoutMs = Number.isFinite(left) ? Math.max(1, Math.ceil(left)) : undefined;
    const arrays = plan.merge !== undefined;
    if (plan.units.length === 1 && !arrays) {
      // The point query: one statement, no merge, as little in between as possible.
      const unit = plan.units[0]!;
      const runner = runnerOf(unit);
      const started = this.#collectors.length === 0 ? 0 : performance.now();
      let res: DataSourceResult<R>;
      try {
        res = await runner.query<R>(
          unit.sql,
          unit.params,
          timeoutMs === undefined ? undefined : { timeoutMs },
        );
      } catch (err) {
        throw this.#failure(plan, unit, runner, started, err);
      }
      this.report(plan, unit, runner.role, started, res.rows.length || (res.rowCount ?? 0));
      return {
        rows: res.rows,
        rowCount: res.rowCount ?? res.rows.length,
        fields: res.fields,
        route: plan,
      };
    }
    const options: DataSourceQueryOptions = arrays
      ? { rowMode: 'array', timeoutMs }
      : { timeoutMs };
    const run = async (unit: RouteUnit) => {
      const runner = runnerOf(unit);
      const started = performance.now();
      try {
        const res = await runner.query<unknown>(unit.sql, unit.params, options);
        this.report(plan, unit, runner.role, started, res.rows.length || (res.rowCount ?? 0));
        return res;
      } catch (err) {
        throw this.#failure(plan, unit, runner, started, err);
      }
    };
    let results: DataSourceResult<unknown>[];
    if (sequential) {
      // One session runs one statement at a time (transactions).
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

  /** Reports one physical statement to the collectors (nothing to do without any). */
  report(
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
      fingerprint: this.#fingerprint(plan.sql),
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

  /** Reports a failed physical statement and turns the driver's error into a PeakError. */
  #failure(
    plan: RoutePlan,
    unit: RouteUnit,
    runner: QueryRunner,
    started: number,
    err: unknown,
  ): PeakError {
    this.report(plan, unit, runner.role, started, 0, err);
    if (runner.isTimeout(err)) {
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
}
