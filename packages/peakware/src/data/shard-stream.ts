/**
 * Streaming a SELECT: each shard is read through a server-side cursor (`DECLARE … CURSOR`,
 * `FETCH n`) in a read-only transaction on its own session, and the shards' batches are
 * merged lazily (`result-stream.ts`), so memory holds one batch per shard. The cursors are
 * closed when the merge ends, fails, or the consumer stops early.
 */
import { performance } from 'node:perf_hooks';
import { assertDeadline, remainingTime } from '../core/context.js';
import { ErrorCodes, PeakError } from '../core/errors.js';
import type { DataSource, DataSourceResult, DataSourceSession } from './data-source.js';
import { mergeStream, type RowSource } from './result-stream.js';
import type { RoutePlan, RouteUnit } from './route-plan.js';
import { shortSql } from './sql-parser.js';
import type { StatementExecutor } from './statement-executor.js';

/**
 * The rows of a plain SELECT's plan (routed with one unit per shard), read in batches of
 * `batchSize` from the source `sourceOf` gives each unit; statements reported to `executor`.
 */
export async function* streamPlan<R>(
  plan: RoutePlan,
  batchSize: number,
  sourceOf: (unit: RouteUnit) => DataSource,
  executor: StatementExecutor,
): AsyncGenerator<R> {
  const sql = plan.sql;
  if (plan.kind !== 'select' || plan.write) {
    throw new PeakError(
      ErrorCodes.DATA_UNSUPPORTED,
      `stream() reads plain SELECTs (no writes, no FOR UPDATE); use query(); statement: ${shortSql(sql)}`,
      { details: { sql } },
    );
  }
  if (remainingTime() <= 0) assertDeadline(`data stream (${shortSql(sql)})`);
  const opened: { session: DataSourceSession; failed: boolean }[] = [];
  try {
    const sources: RowSource[] = [];
    for (const unit of plan.units) {
      const session = await sourceOf(unit).session();
      const entry = { session, failed: false };
      opened.push(entry);
      const role = session.role;
      const started = performance.now();
      let rows = 0;
      let done = false;
      try {
        await session.query('BEGIN READ ONLY');
        // The unit's SQL is a complete statement printed from the rewritten tree.
        await session.query(`DECLARE peak_stream NO SCROLL CURSOR FOR ${unit.sql}`, unit.params);
      } catch (err) {
        entry.failed = true;
        executor.report(plan, unit, role, started, 0, err);
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
          let res: DataSourceResult<unknown[]>;
          try {
            res = await session.query<unknown[]>(`FETCH ${batchSize} FROM peak_stream`, [], {
              rowMode: 'array',
            });
          } catch (err) {
            entry.failed = true;
            done = true;
            executor.report(plan, unit, role, started, rows, err);
            throw err;
          }
          rows += res.rows.length;
          if (res.rows.length < batchSize) {
            done = true;
            executor.report(plan, unit, role, started, rows);
          }
          return {
            rows: res.rows,
            fields: res.fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID })),
          };
        },
      });
    }
    for await (const row of mergeStream(plan.merge, sources)) yield row as R;
  } finally {
    for (const { session, failed } of opened) {
      try {
        await session.query(failed ? 'ROLLBACK' : 'COMMIT');
        session.release();
      } catch (err) {
        session.release(err as Error);
      }
    }
  }
}
