/**
 * Transactions and bound sessions: a local transaction on the primary of one shard
 * database, bound by its first statement (or `routeBy`); statements routed elsewhere are
 * refused unless the transaction is XA (each database gets its own local transaction, and
 * they commit atomically by two-phase commit: `xa-commit.ts`) or best-effort (each
 * committed one after another).
 */
import { ErrorCodes, PeakError } from '../core/errors.js';
import type { DataSource, DataSourceSession } from './data-source.js';
import type { RoutePlan } from './route-plan.js';
import type { ShardValue } from './sharding-algorithm.js';
import { shortSql } from './sql-parser.js';
import type { ShardedQueryResult, StatementExecutor } from './statement-executor.js';
import { commitTwoPhase, type XaHook } from './xa-commit.js';

/** Options for {@link ShardedDatabase.transaction}. */
export interface TransactionOptions {
  /**
   * Allow statements on several shard databases: each gets its own local transaction,
   * committed one after another. Not atomic across databases (best effort); off by default.
   */
  bestEffort?: boolean;
  /**
   * Allow statements on several shard databases and commit them atomically by two-phase
   * commit (`PREPARE TRANSACTION` / `COMMIT PREPARED`, the first database bound coordinating;
   * a crash in between is settled by `recoverXa`). Needs `max_prepared_transactions` > 0 on
   * each database. A transaction that stays on one database commits as a local one.
   */
  xa?: boolean;
  /** Bind the transaction to the shard of this key up front (so `tx.client` is usable at once). */
  routeBy?: { table: string; value: ShardValue };
}

/** @internal What a transaction needs of its database (`ShardedDatabase.transaction` gives it). */
export interface TransactionHost {
  /** Routes a statement under the current call context. */
  route(sql: string, params: readonly unknown[]): RoutePlan;
  /** The primary of a data source. */
  primary(dataSource: string): DataSource;
  /** Runs plans on the transaction's sessions. */
  executor: StatementExecutor;
  /** The two-phase commit hook in force (fault drills, crash tests). */
  xaHook(): XaHook | undefined;
}

/** A local transaction on one shard database (or best-effort on several). */
export class ShardTransaction {
  readonly #host: TransactionHost;
  readonly #mode: 'local' | 'xa' | 'best-effort';
  readonly #sessions = new Map<string, DataSourceSession>();
  #done = false;

  /** @internal Made by {@link ShardedDatabase.transaction}. */
  constructor(host: TransactionHost, mode: 'local' | 'xa' | 'best-effort') {
    this.#host = host;
    this.#mode = mode;
  }

  /** The data source this transaction is bound to (undefined before its first statement). */
  get dataSource(): string | undefined {
    return this.#sessions.keys().next().value;
  }

  /**
   * The session of the single-shard transaction, so other libraries (the MQ's
   * `sendInTransaction`, an `Outbox`'s `send`) can write in the same transaction. Bound by
   * the first statement or `routeBy`.
   */
  get client(): DataSourceSession {
    if (this.#sessions.size !== 1) {
      throw new PeakError(
        ErrorCodes.DATA_CROSS_SHARD,
        this.#sessions.size === 0
          ? 'the transaction is not bound to a shard yet; run a statement first or pass routeBy to transaction()'
          : `a${this.#mode === 'xa' ? 'n XA' : ' best-effort'} transaction spans several databases and has no single client`,
      );
    }
    return this.#sessions.values().next().value!;
  }

  /** @internal Opens (BEGIN) the local transaction on a data source. */
  async bind(dataSource: string): Promise<DataSourceSession> {
    const have = this.#sessions.get(dataSource);
    if (have !== undefined) return have;
    const session = await this.#host.primary(dataSource).session();
    try {
      await session.query('BEGIN');
    } catch (err) {
      session.release(err as Error);
      throw err;
    }
    this.#sessions.set(dataSource, session);
    return session;
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
    const plan = this.#host.route(sql, params);
    const targets = [...new Set(plan.units.map((u) => u.dataSource))];
    if (this.#mode === 'local') {
      const bound = this.dataSource;
      const other = targets.find((d) => d !== (bound ?? targets[0]));
      if (other !== undefined) {
        throw new PeakError(
          ErrorCodes.DATA_CROSS_SHARD,
          `the statement routes to ${targets.join(', ')} but the transaction ${bound === undefined ? 'can bind only one database' : `is bound to ${bound}`}; keep a transaction on one shard (same sharding key), or pass { xa: true } (atomic, two-phase commit) or { bestEffort: true }; statement: ${shortSql(sql)}`,
          { details: { sql, bound, targets } },
        );
      }
    }
    for (const d of targets) await this.bind(d);
    return this.#host.executor.execute<R>(
      plan,
      (unit) => this.#sessions.get(unit.dataSource)!,
      true,
    );
  }

  /** @internal Commits or rolls back every local transaction and releases the sessions. */
  async finish(commit: boolean): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    if (commit && this.#mode === 'xa' && this.#sessions.size > 1) {
      const sessions = new Map(this.#sessions);
      this.#sessions.clear();
      await commitTwoPhase(
        { primary: (d) => this.#host.primary(d), hook: () => this.#host.xaHook() },
        sessions,
      );
      return;
    }
    let failure: unknown;
    let failedOn: string | undefined;
    const committed: string[] = [];
    const several = this.#sessions.size > 1;
    for (const [dataSource, session] of this.#sessions) {
      try {
        await session.query(commit && failure === undefined ? 'COMMIT' : 'ROLLBACK');
        if (commit && failure === undefined) committed.push(dataSource);
        session.release();
      } catch (err) {
        if (failure === undefined) {
          failure = err;
          failedOn = dataSource;
        }
        session.release(err as Error);
      }
    }
    this.#sessions.clear();
    if (failure === undefined || !commit) return;
    if (!several) throw failure; // exactly what an unsharded database would throw
    throw new PeakError(
      ErrorCodes.DATA_CROSS_SHARD,
      `best-effort transaction: COMMIT failed on ${failedOn} (${(failure as Error).message}); already committed on: ${committed.join(', ') || 'none'}; the others were rolled back`,
      { cause: failure, details: { failedOn, committed } },
    );
  }
}
