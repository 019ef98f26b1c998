/** The router's two refusals: a statement it cannot run over shards, and one it cannot route. */
import { ErrorCodes, PeakError } from '../core/errors.js';
import { shortSql } from './sql-parser.js';

/** PEAK_DATA_UNSUPPORTED: the statement is valid SQL but cannot run over shards (reason given). */
export function unsupported(sql: string, reason: string): PeakError {
  return new PeakError(
    ErrorCodes.DATA_UNSUPPORTED,
    `cannot run over shards: ${reason}; statement: ${shortSql(sql)}`,
    {
      details: { sql, reason },
    },
  );
}

/** PEAK_DATA_ROUTE: no shard can be chosen for the statement with these parameters. */
export function routeError(sql: string, reason: string, cause?: unknown): PeakError {
  return new PeakError(
    ErrorCodes.DATA_ROUTE,
    `cannot route: ${reason}; statement: ${shortSql(sql)}`,
    {
      cause,
      details: { sql, reason },
    },
  );
}
