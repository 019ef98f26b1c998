/**
 * One data source of the layout: its primary and its read replicas, with the read/write
 * split. Writes, locking reads and transactions use the primary; reads outside
 * transactions go round-robin over the replicas whose measured lag is within
 * `maxReplicaLagMs`, else to the primary. Lag is measured on demand, at most once per
 * check interval; an unmeasured or unreachable replica is skipped.
 */
import type { DataSource } from './data-source.js';

/** Physical streaming replication's lag: 0 when caught up, else now − last replayed commit. */
export const STREAMING_LAG_SQL = `SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0
  WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
  ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) * 1000, 0) END::float8 AS lag_ms`;

interface ReplicaState {
  source: DataSource;
  lagMs: number | undefined;
  checkedAt: number;
  checking: Promise<void> | undefined;
}

/** Options of a {@link DataSourceGroup}. */
export interface DataSourceGroupOptions {
  /** Replicas lagging more than this are skipped. */
  maxLagMs: number;
  /** The SQL measuring a replica's lag: one row with a numeric `lag_ms`. */
  lagQuery: string;
  /** Lag is re-measured at most this often, on demand. */
  checkIntervalMs: number;
}

/** A data source's primary and replicas, and which one a statement uses. */
export class DataSourceGroup {
  /** Where writes, locking reads and transactions go. */
  readonly primary: DataSource;
  readonly #replicas: ReplicaState[];
  readonly #options: DataSourceGroupOptions;
  #next = 0;

  constructor(primary: DataSource, replicas: DataSource[], options: DataSourceGroupOptions) {
    this.primary = primary;
    this.#replicas = replicas.map((source) => ({
      source,
      lagMs: undefined,
      checkedAt: 0,
      checking: undefined,
    }));
    this.#options = options;
  }

  /** Where a read outside a transaction runs: a replica within the lag bound, in turn, else the primary. */
  forRead(): DataSource {
    const replicas = this.#replicas;
    if (replicas.length === 0) return this.primary;
    const now = Date.now();
    for (const r of replicas) {
      if (now - r.checkedAt >= this.#options.checkIntervalMs && r.checking === undefined)
        void this.#measure(r);
    }
    for (let i = 0; i < replicas.length; i++) {
      const r = replicas[(this.#next + i) % replicas.length]!;
      if (r.lagMs !== undefined && r.lagMs <= this.#options.maxLagMs) {
        this.#next = (this.#next + i + 1) % replicas.length;
        return r.source;
      }
    }
    return this.primary;
  }

  /** Measures every replica's lag now. */
  async checkReplicas(): Promise<void> {
    await Promise.all(this.#replicas.map((r) => this.#measure(r)));
  }

  /** The last measured lag of each replica (ms; undefined before the first check, Infinity when unreachable). */
  replicaLag(): (number | undefined)[] {
    return this.#replicas.map((r) => r.lagMs);
  }

  /** Opens the idle minimum of the primary and every replica (see `PgDataSource.warm`). */
  async warm(): Promise<void> {
    await Promise.all(
      [this.primary, ...this.#replicas.map((r) => r.source)].map((s) => s.warm?.()),
    );
  }

  /** Closes the primary and every replica; settles when all have closed or failed to. */
  async close(): Promise<void> {
    await Promise.allSettled([
      this.primary.close(),
      ...this.#replicas.map((r) => r.source.close()),
    ]);
  }

  #measure(r: ReplicaState): Promise<void> {
    r.checking ??= r.source
      .query<{ lag_ms: number | string }>(this.#options.lagQuery)
      .then(
        (res) => {
          const lag = Number(res.rows[0]?.lag_ms);
          r.lagMs = Number.isFinite(lag) ? lag : Number.POSITIVE_INFINITY;
        },
        () => {
          r.lagMs = Number.POSITIVE_INFINITY;
        },
      )
      .finally(() => {
        r.checkedAt = Date.now();
        r.checking = undefined;
      });
    return r.checking;
  }
}
