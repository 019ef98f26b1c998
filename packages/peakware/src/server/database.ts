/**
 * The control plane's PostgreSQL connection pool: the same code path for the embedded
 * cluster and an external `--postgres URL`, with connection failures turned into errors a
 * user can act on (never echoing the password).
 */
import pg from 'pg';
import { ErrorCodes, errorMessage, PeakError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { autoPrepare } from '../core/pg-auto-prepare.js';
import { peakPgTypes } from '../core/pg-timestamps.js';
import type { PostgresEndpoint } from './embedded-postgres.js';

/** Where the control plane's state lives: a URL, or the embedded cluster's endpoint. */
export type DatabaseTarget = { url: string } | { endpoint: PostgresEndpoint };

/** Parses and checks a PostgreSQL URL; throws PEAK_DB_URL_INVALID saying what is wrong. */
export function parsePostgresUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new PeakError(
      ErrorCodes.DB_URL_INVALID,
      `--postgres: not a valid URL; expected postgres://user:password@host:5432/database`,
      { details: { input: '--postgres' } },
    );
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new PeakError(
      ErrorCodes.DB_URL_INVALID,
      `--postgres: the URL scheme must be postgres:// or postgresql://, got ${parsed.protocol}//`,
      { details: { input: '--postgres' } },
    );
  }
  if (parsed.hostname.length === 0) {
    throw new PeakError(ErrorCodes.DB_URL_INVALID, '--postgres: the URL names no host', {
      details: { input: '--postgres' },
    });
  }
  return parsed;
}

/** A URL with its password replaced, fit for logs and error messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password.length > 0) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable URL)';
  }
}

function describe(target: DatabaseTarget): string {
  if ('url' in target) return redactUrl(target.url);
  return `embedded PostgreSQL at ${target.endpoint.host}:${target.endpoint.port}`;
}

/** Turns a connection failure into PEAK_DB_UNREACHABLE with a hint for the usual causes. */
export function connectionError(target: DatabaseTarget, err: unknown): PeakError {
  const code = (err as { code?: string }).code;
  const where = describe(target);
  let hint: string;
  switch (code) {
    case 'ECONNREFUSED':
      hint = 'connection refused: is PostgreSQL running and listening there?';
      break;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      hint = 'the host name does not resolve: check the host in --postgres';
      break;
    case 'ETIMEDOUT':
      hint = 'the connection timed out: check the host, port and firewall';
      break;
    case '28P01':
    case '28000':
      hint = 'authentication failed: check the user and password in --postgres';
      break;
    case '3D000':
      hint = 'the database does not exist: create it or name another in --postgres';
      break;
    default:
      hint = errorMessage(err);
  }
  return new PeakError(ErrorCodes.DB_UNREACHABLE, `cannot connect to ${where}: ${hint}`, {
    cause: err,
    details: { input: '--postgres', pgCode: code },
  });
}

/** Options for {@link openPool}. */
export interface OpenPoolOptions {
  logger: Logger;
  /** Pool size. Default 10. */
  max?: number;
  /** Application name shown in pg_stat_activity. Default `peak-server`. */
  applicationName?: string;
}

/** Opens a pool and proves it can connect; throws PEAK_DB_UNREACHABLE otherwise. */
export async function openPool(target: DatabaseTarget, options: OpenPoolOptions): Promise<pg.Pool> {
  const base: pg.PoolConfig = {
    max: options.max ?? 10,
    // 10 s: a new connection is a backend fork plus SCRAM's key stretching on both sides;
    // on a 2-core machine at load 20 that took over 5 s and failed a node's start.
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
    // A fixed pool once opened (HikariCP's default): a connection opened under a load step
    // costs that step a fork and SCRAM, and closing it after a quiet spell invites that.
    min: options.max ?? 10,
    application_name: options.applicationName ?? 'peak-server',
    // timestamptz read by character codes, not postgres-date's regular expressions (core/pg-timestamps.ts)
    types: peakPgTypes,
  };
  if ('url' in target) parsePostgresUrl(target.url);
  const pool = new pg.Pool(
    'url' in target
      ? { ...base, connectionString: target.url }
      : {
          ...base,
          host: target.endpoint.host,
          port: target.endpoint.port,
          user: target.endpoint.user,
          password: target.endpoint.password,
          database: target.endpoint.database,
        },
  );
  // Parameterised statements prepared once per connection (core/pg-auto-prepare.ts).
  autoPrepare(pool);
  // A client checked out and between statements (in a transaction, waiting on Node) that
  // loses its connection emits 'error' on itself, where no pool listens: that must not crash
  // the process either (a message database killed under the broker did). Its next
  // statement fails, and the pool drops it when it is released.
  pool.on('connect', (client) => {
    client.on('error', (err: Error & { code?: string }) => {
      options.logger.debug(
        { err: { message: err.message, code: err.code } },
        'PostgreSQL connection in use failed',
      );
    });
  });
  // An idle client losing its connection (PostgreSQL restarted) must not crash the process.
  pool.on('error', (err: Error & { code?: string }) => {
    // 57P01: PostgreSQL is shutting down (expected while the server stops).
    const level = err.code === '57P01' ? 'debug' : 'warn';
    options.logger[level](
      { err: { message: err.message, code: err.code } },
      'idle PostgreSQL connection failed',
    );
  });
  try {
    const client = await pool.connect();
    client.release();
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw connectionError(target, err);
  }
  return pool;
}
