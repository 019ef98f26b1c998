/**
 * The `DataSource` seam: what the sharded executor needs from one database, a data
 * source's primary or one of its read replicas. `PgDataSource` (`pg-data-source.ts`) is
 * the implementation over a `pg` pool; `ShardedDatabase` runs every statement through
 * this interface and never touches the driver.
 */
import type { FieldInfo } from './result-merger.js';

/** How one statement runs. */
export interface DataSourceQueryOptions {
  /** Rows as arrays in column order instead of objects (what the merger reads). */
  rowMode?: 'array';
  /** The caller's remaining deadline, ms: the statement is cancelled when it runs out; see `isTimeout`. */
  timeoutMs?: number;
}

/** The answer to one statement. */
export interface DataSourceResult<R = Record<string, unknown>> {
  /** The rows returned (by a SELECT or RETURNING). */
  rows: R[];
  /** Rows returned or changed, as the database reports it (null when it does not say). */
  rowCount: number | null;
  /** The output columns. */
  fields: FieldInfo[];
}

/** Something statements run on: a data source, or a session checked out of one. */
export interface QueryRunner {
  /** `primary` (writes, transactions, locking reads) or `replica` (reads outside transactions). */
  readonly role: 'primary' | 'replica';
  /** Runs one statement, its `$1…` bound to `params` (values are never spliced into the text). */
  query<R = Record<string, unknown>>(
    sql: string,
    params?: readonly unknown[],
    options?: DataSourceQueryOptions,
  ): Promise<DataSourceResult<R>>;
  /** True when `error` is how this runner reports a statement stopped by `timeoutMs`. */
  isTimeout(error: unknown): boolean;
}

/** One connection checked out of a data source, for a transaction (BEGIN … COMMIT) or a cursor. */
export interface DataSourceSession extends QueryRunner {
  /** Gives the connection back; pass the error when it is broken, so it is discarded, not reused. */
  release(error?: Error): void;
}

/** One database: the seam between the sharded executor and a driver. */
export interface DataSource extends QueryRunner {
  /** Checks out one connection, kept until `release()`: every statement on it runs in order. */
  session(): Promise<DataSourceSession>;
  /** Opens the connections kept while idle ahead of traffic (optional: a driver may have none). */
  warm?(): Promise<void>;
  /** Closes every connection; the source is unusable afterwards. */
  close(): Promise<void>;
}
