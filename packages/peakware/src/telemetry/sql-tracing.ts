/**
 * SQL spans from the data layer's statement seam (`ShardedDatabase` `collector` /
 * `addCollector`): one client span per physical statement, a child of the span that ran
 * the query, with the shard, data source, statement fingerprint and rows, so the
 * collector can rank slow SQL by fingerprint and shard and name the calling service.
 */
import type { Tracer } from './tracer.js';

/**
 * The fields of data's `StatementEvent` this module reads (declared here, structurally, so
 * telemetry does not depend on data: data depends on telemetry, not the other way).
 */
export interface SqlStatementEvent {
  /** The statement as the application wrote it (parameterised: no values). */
  sql: string;
  fingerprint: string;
  dataSource: string;
  shard: number | undefined;
  shards?: number[];
  role: 'primary' | 'replica';
  rows: number;
  durationMs: number;
  shadow: boolean;
  error?: string;
}

/** A statement collector (data's `StatementCollector`) that makes each statement a client span. */
export function sqlSpanCollector(tracer: Tracer): { record(event: SqlStatementEvent): void } {
  return {
    record(event: SqlStatementEvent): void {
      const durationUs = event.durationMs * 1000;
      // Name and attributes are built only for a span the tracer keeps.
      tracer.recordSpan(() => event.sql.replace(/\s+/g, ' ').slice(0, 120), {
        kind: 'client',
        startUs: (performance.timeOrigin + performance.now()) * 1000 - durationUs,
        durationUs,
        peerService: event.dataSource,
        ...(event.error === undefined ? {} : { error: event.error }),
        attributes: () => ({
          'db.system': 'postgresql',
          'db.statement': event.sql.slice(0, 1000),
          'db.statement.fingerprint': event.fingerprint,
          'db.shard':
            event.shard === undefined ? (event.shards?.join(',') ?? 'all') : String(event.shard),
          'db.data_source': event.dataSource,
          'db.role': event.role,
          'db.rows': Number(event.rows),
          ...(event.shadow ? { 'db.shadow': true } : {}),
        }),
      });
    },
  };
}
