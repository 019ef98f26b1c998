/**
 * `PgDataSource`: the `DataSource` seam over a `pg` pool, the one place the data layer's
 * executor meets the driver. A checked-out client keeps an `'error'` listener while out,
 * so a connection lost between statements is reported by the next statement instead of
 * crashing the process.
 */
import pg from 'pg';
import { ErrorCodes, PeakError } from '../core/errors.js';
import type {
  DataSource,
  DataSourceQueryOptions,
  DataSourceResult,
  DataSourceSession,
} from './data-source.js';

/** A connection: a PostgreSQL URL or a `pg` pool config. */
export type ConnectionConfig = string | pg.PoolConfig;

/** Options of a {@link PgDataSource}. */
export interface PgDataSourceOptions {
  /** Where it connects: a URL or a `pg` pool config. */
  connection: ConnectionConfig;
  /** Primary or read replica. Default `primary`. */
  role?: 'primary' | 'replica';
  /** Connections in the pool (a `max` in a pool config wins). Default 10. */
  poolSize?: number;
}

const NO_PARAMS: readonly unknown[] = [];

function ignoreClientError(): void {}

/**
 * pg's query config for one statement. The parameters go as they are, not copied: pg
 * writes every value through its `prepareValue` (a bigint as its decimal text).
 */
function queryConfig(
  sql: string,
  params: readonly unknown[],
  options: DataSourceQueryOptions | undefined,
): pg.QueryConfig {
  const config: { text: string; values: unknown[]; rowMode?: 'array'; query_timeout?: number } = {
    text: sql,
    values: params as unknown[],
  };
  if (options?.rowMode === 'array') config.rowMode = 'array';
  if (options?.timeoutMs !== undefined) config.query_timeout = options.timeoutMs;
  return config as pg.QueryConfig;
}

/** pg rejects a statement that outlived `query_timeout` with this message. */
function isPgTimeout(error: unknown): boolean {
  return (error as Error | undefined)?.message === 'Query read timeout';
}

/** A `pg` pool client checked out as a session. */
class PgSession implements DataSourceSession {
  readonly role: 'primary' | 'replica';
  readonly #client: pg.PoolClient;

  constructor(client: pg.PoolClient, role: 'primary' | 'replica') {
    this.#client = client;
    this.role = role;
  }

  query<R = Record<string, unknown>>(
    sql: string,
    params: readonly unknown[] = NO_PARAMS,
    options?: DataSourceQueryOptions,
  ): Promise<DataSourceResult<R>> {
    return this.#client.query(queryConfig(sql, params, options)) as unknown as Promise<
      DataSourceResult<R>
    >;
  }

  isTimeout(error: unknown): boolean {
    return isPgTimeout(error);
  }

  release(error?: Error): void {
    this.#client.off('error', ignoreClientError);
    this.#client.release(error);
  }
}

/** A PostgreSQL database (primary or replica) over one `pg` pool. */
export class PgDataSource implements DataSource {
  readonly role: 'primary' | 'replica';
  /**
   * The `pg` pool itself: the deliberate escape hatch for code that needs the driver, such
   * as `peakware/mq`'s `Outbox`, whose relay uses pg's multi-statement protocol on the
   * shard's database. Routed statements never go through it; prefer `query` / `session`.
   */
  readonly pool: pg.Pool;

  constructor(options: PgDataSourceOptions) {
    this.role = options.role ?? 'primary';
    const max = options.poolSize ?? 10;
    const c = options.connection;
    this.pool = new pg.Pool(typeof c === 'string' ? { connectionString: c, max } : { max, ...c });
    this.pool.on('error', () => {}); // idle-client errors surface on the next query
  }

  /**
   * `source` as a `PgDataSource` (what `ShardedDatabase` builds from connection configs),
   * for its `pool`; PEAK_INVALID_ARGUMENT for another implementation.
   */
  static from(source: DataSource): PgDataSource {
    if (source instanceof PgDataSource) return source;
    throw new PeakError(
      ErrorCodes.INVALID_ARGUMENT,
      `the data source is a ${source.constructor.name}, not a PgDataSource; only a pg data source has a pg pool`,
    );
  }

  query<R = Record<string, unknown>>(
    sql: string,
    params: readonly unknown[] = NO_PARAMS,
    options?: DataSourceQueryOptions,
  ): Promise<DataSourceResult<R>> {
    return this.pool.query(queryConfig(sql, params, options)) as unknown as Promise<
      DataSourceResult<R>
    >;
  }

  isTimeout(error: unknown): boolean {
    return isPgTimeout(error);
  }

  async session(): Promise<DataSourceSession> {
    const client = await this.pool.connect();
    // A checked-out client that loses its connection emits 'error'; the next statement
    // (or COMMIT) reports it, so the process must not crash on the event.
    client.on('error', ignoreClientError);
    return new PgSession(client, this.role);
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}
