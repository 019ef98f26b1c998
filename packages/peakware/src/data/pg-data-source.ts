/**
 * `PgDataSource`: the `DataSource` seam over a `pg` pool, the one place the data layer's
 * executor meets the driver. A checked-out client keeps an `'error'` listener while out,
 * so a connection lost between statements is reported by the next statement instead of
 * crashing the process.
 *
 * A statement run with `timeoutMs` (the caller's remaining deadline) is cancelled in
 * PostgreSQL when the time runs out, not only given up on: a cancel request (what psql's
 * Ctrl-C sends) goes to its backend, so a statement stuck behind a lock stops holding its
 * connection and can never apply late. The connection is kept when PostgreSQL answered the
 * statement with "canceled" (the cancel was spent on it), and discarded when the statement
 * ended otherwise (a cancel still on its way could hit the next statement): under
 * overload, deadlines that pass do not turn into a storm of new, authenticated
 * connections. The wait for a pool connection counts against the same time.
 */
import pg from 'pg';
import { ErrorCodes, PeakError } from '../core/errors.js';
import { autoPrepare } from '../core/pg-auto-prepare.js';
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
  /**
   * Connections kept open while idle (HikariCP's `minimumIdle`); `warm()` opens them ahead
   * of traffic. Above it, an idle connection closes after 10 s. Default 0; the pool size
   * for a fixed pool that never opens a connection (a backend fork, SCRAM on both sides,
   * every statement prepared again) in the middle of a load step.
   */
  minIdle?: number;
  /**
   * Give parameterised statements a server-side name from their second run (parsed once per
   * connection, as pgjdbc's default; see core/pg-auto-prepare.ts). Default true; turn it off
   * behind a pooler that drops prepared statements between transactions.
   */
  prepareStatements?: boolean;
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
  const config: { text: string; values: unknown[]; rowMode?: 'array' } = {
    text: sql,
    values: params as unknown[],
  };
  if (options?.rowMode === 'array') config.rowMode = 'array';
  return config as pg.QueryConfig;
}

/** A statement given up on (and cancelled) because its `timeoutMs` ran out. */
class StatementTimeoutError extends Error {
  constructor(timeoutMs: number, cancelled: boolean) {
    super(
      `the statement outlived its ${Math.round(timeoutMs)} ms${cancelled ? ' and was cancelled in PostgreSQL' : ' waiting for a pool connection'}`,
    );
    this.name = 'StatementTimeoutError';
  }
}

/** Whether `error` is how this module reports a statement stopped by `timeoutMs`. */
function isPgTimeout(error: unknown): boolean {
  return error instanceof StatementTimeoutError;
}

/** What a connected `pg` client knows of its backend (set by the server at start-up). */
interface BackendKey {
  processID: number | null;
  secretKey: number | null;
  host: string;
  port: number;
}

/** What this module uses of pg's protocol connection to send a cancel request. */
interface CancelConnection {
  on(event: 'connect' | 'error' | 'end', listener: () => void): void;
  connect(port: number | string, host?: string): void;
  cancel(processID: number, secretKey: number): void;
  end(): void;
  readonly stream: { destroy(): void };
}

/** How long a cancel request may take to be read by the server before it is given up on. */
const CANCEL_DELIVERY_MS = 5000;

/**
 * Asks PostgreSQL to cancel what `client`'s backend runs now: a CancelRequest on a new
 * connection (no authentication, as libpq's PQcancel), closed by the server once read.
 * Resolves true once the server has closed it: it has signalled the backend by then, so a
 * statement sent on the connection afterwards cannot be hit (PostgreSQL drops a cancel
 * that reaches an idle backend: postgres.c resets it before reading the next command);
 * false when it could not be delivered (the connection must then leave the pool).
 */
function cancelBackend(client: pg.PoolClient): Promise<boolean> {
  const key = client as unknown as BackendKey;
  if (key.processID === null || key.secretKey === null) return Promise.resolve(false);
  return new Promise((resolve) => {
    const con = new pg.Connection() as unknown as CancelConnection;
    let sent = false;
    let failed = false;
    const giveUp = setTimeout(() => {
      failed = true;
      con.stream.destroy();
    }, CANCEL_DELIVERY_MS);
    giveUp.unref();
    con.on('error', () => {
      failed = true;
    });
    con.on('connect', () => {
      sent = true;
      con.cancel(key.processID!, key.secretKey!);
    });
    con.on('end', () => {
      clearTimeout(giveUp);
      resolve(sent && !failed);
    });
    if (key.host?.startsWith('/')) con.connect(`${key.host}/.s.PGSQL.${key.port}`);
    else con.connect(key.port, key.host);
  });
}

/**
 * Whether a connection whose statement failed with `error` must leave the pool: an error
 * PostgreSQL answered at ERROR severity leaves the connection idle and sound, so it stays.
 */
function mustDiscard(error: Error): boolean {
  return !(error instanceof pg.DatabaseError) || error.severity !== 'ERROR';
}

/**
 * Runs one statement on `client` bounded by `timeoutMs`: when it runs out the statement is
 * cancelled in PostgreSQL and the call rejects at once. `done` gets the client back once
 * the statement has settled, with the error that makes the pool discard it (see
 * {@link mustDiscard}). A statement that settled although a cancel was sent (it finished
 * first) gives its connection back once the cancel request has been read by the server,
 * and discards it only if that failed: under load many statements outlive their deadline
 * by a little, and a discarded connection costs a new one (a backend fork and SCRAM on
 * both sides), which adds the load that makes the next statements late.
 */
function runBounded<R>(
  client: pg.PoolClient,
  config: pg.QueryConfig,
  timeoutMs: number,
  done: (error?: Error) => void,
): Promise<DataSourceResult<R>> {
  return new Promise((resolve, reject) => {
    let cancelled = false;
    let delivered: Promise<boolean> = Promise.resolve(true);
    const timer = setTimeout(() => {
      cancelled = true;
      delivered = cancelBackend(client);
      reject(new StatementTimeoutError(timeoutMs, true));
    }, timeoutMs);
    /** Back to the pool once a cancel sent on it has been read (see above). */
    const afterCancel = () =>
      void delivered.then((ok) =>
        done(ok ? undefined : new Error('a cancel request may still reach this connection')),
      );
    client.query(config).then(
      (res) => {
        clearTimeout(timer);
        if (!cancelled) {
          done();
          resolve(res as unknown as DataSourceResult<R>);
        } else afterCancel();
      },
      (err: Error) => {
        clearTimeout(timer);
        if (!cancelled) {
          done(mustDiscard(err) ? err : undefined);
          reject(err);
        } else if (mustDiscard(err)) done(err);
        else afterCancel();
      },
    );
  });
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
    const config = queryConfig(sql, params, options);
    if (options?.timeoutMs === undefined) {
      return this.#client.query(config) as unknown as Promise<DataSourceResult<R>>;
    }
    // A cancelled statement fails the transaction; the owner rolls back and releases.
    return runBounded<R>(this.#client, config, options.timeoutMs, () => undefined);
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
    const min = Math.min(options.minIdle ?? 0, max);
    const c = options.connection;
    this.pool = new pg.Pool(
      typeof c === 'string' ? { connectionString: c, max, min } : { max, min, ...c },
    );
    this.pool.on('error', () => {}); // idle-client errors surface on the next query
    if (options.prepareStatements !== false) autoPrepare(this.pool);
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
    const config = queryConfig(sql, params, options);
    const timeoutMs = options?.timeoutMs;
    if (timeoutMs === undefined) {
      return this.pool.query(config) as unknown as Promise<DataSourceResult<R>>;
    }
    return new Promise((resolve, reject) => {
      let late = false;
      const waiting = setTimeout(() => {
        late = true;
        reject(new StatementTimeoutError(timeoutMs, false));
      }, timeoutMs);
      const started = performance.now();
      this.pool.connect().then(
        (client) => {
          clearTimeout(waiting);
          if (late) return client.release();
          client.on('error', ignoreClientError);
          const left = Math.max(1, timeoutMs - (performance.now() - started));
          runBounded<R>(client, config, left, (error) => {
            client.off('error', ignoreClientError);
            client.release(error);
          }).then(resolve, reject);
        },
        (err: Error) => {
          clearTimeout(waiting);
          if (!late) reject(err);
        },
      );
    });
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

  /** Opens the pool's idle minimum (`minIdle`) now, all at once, rather than under load. */
  async warm(): Promise<void> {
    const min = this.pool.options.min ?? 0;
    if (this.pool.totalCount >= min) return;
    // All `min` checked out at once: idle ones are reused, the rest opened side by side.
    const clients = await Promise.all(Array.from({ length: min }, () => this.pool.connect()));
    for (const client of clients) client.release();
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}
