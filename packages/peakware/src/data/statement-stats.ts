/**
 * A ready-made {@link StatementCollector}: per-fingerprint statement statistics (count,
 * rows, total / max time, errors, slow count, shards touched) and a bounded log of the
 * most recent slow statements, for a telemetry exporter or an admin endpoint to read.
 */
import type { StatementCollector, StatementEvent } from './statement-collector.js';

/** Statistics of one statement fingerprint. */
export interface FingerprintStats {
  fingerprint: string;
  /** One statement text with this fingerprint (the first seen). */
  sql: string;
  count: number;
  rows: number;
  totalMs: number;
  maxMs: number;
  errors: number;
  slow: number;
  /** Physical statements per data source. */
  dataSources: Record<string, number>;
}

/** Options for {@link StatementStats}. */
export interface StatementStatsOptions {
  /** Slow statements kept (most recent). Default 100. */
  slowLogSize?: number;
  /** Fingerprints tracked; beyond this, new fingerprints are counted under `other`. Default 1000. */
  maxFingerprints?: number;
}

/** Collects per-fingerprint statement statistics and a slow-statement log. */
export class StatementStats implements StatementCollector {
  readonly #stats = new Map<string, FingerprintStats>();
  readonly #slow: StatementEvent[] = [];
  readonly #slowLogSize: number;
  readonly #maxFingerprints: number;

  constructor(options: StatementStatsOptions = {}) {
    this.#slowLogSize = options.slowLogSize ?? 100;
    this.#maxFingerprints = options.maxFingerprints ?? 1000;
  }

  /** Records one physical statement (the collector seam). */
  record(event: StatementEvent): void {
    let key = event.fingerprint;
    if (!this.#stats.has(key) && this.#stats.size >= this.#maxFingerprints) key = 'other';
    let s = this.#stats.get(key);
    if (s === undefined) {
      s = {
        fingerprint: key,
        sql: key === 'other' ? '(other statements)' : event.sql,
        count: 0,
        rows: 0,
        totalMs: 0,
        maxMs: 0,
        errors: 0,
        slow: 0,
        dataSources: {},
      };
      this.#stats.set(key, s);
    }
    s.count++;
    s.rows += event.rows;
    s.totalMs += event.durationMs;
    if (event.durationMs > s.maxMs) s.maxMs = event.durationMs;
    if (event.error !== undefined) s.errors++;
    s.dataSources[event.dataSource] = (s.dataSources[event.dataSource] ?? 0) + 1;
    if (event.slow) {
      s.slow++;
      this.#slow.push(event);
      if (this.#slow.length > this.#slowLogSize) this.#slow.shift();
    }
  }

  /** Statistics by fingerprint, slowest total time first. */
  snapshot(): FingerprintStats[] {
    return [...this.#stats.values()]
      .map((s) => ({ ...s, dataSources: { ...s.dataSources } }))
      .sort((a, b) => b.totalMs - a.totalMs);
  }

  /** The most recent slow statements, oldest first. */
  slowLog(): StatementEvent[] {
    return [...this.#slow];
  }

  /** Clears everything (after an export). */
  reset(): void {
    this.#stats.clear();
    this.#slow.length = 0;
  }
}
