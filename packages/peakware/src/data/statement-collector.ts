/** The statement seam: every physical statement the sharded database runs, as an event for collectors (slow SQL, telemetry). */

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
