/**
 * Data sources and their pools: the layout's data sources opened from their connection
 * configs (a `PgDataSource` for each primary and replica), and the check at connect time
 * that every primary answers.
 */
import { ErrorCodes, PeakError } from '../core/errors.js';
import { DataSourceGroup, STREAMING_LAG_SQL } from './data-source-group.js';
import { type ConnectionConfig, PgDataSource } from './pg-data-source.js';

/** The connections of one data source: its primary and optional read replicas. */
export interface DataSourceConnection {
  primary: ConnectionConfig;
  /** Read replicas; reads outside transactions are balanced over them. */
  replicas?: ConnectionConfig[];
  /** Replicas lagging more than this are skipped (reads go to the primary). Default 1000 ms. */
  maxReplicaLagMs?: number;
  /**
   * The SQL run on a replica to measure its lag; one row with a numeric `lag_ms`. Default:
   * physical streaming replication (0 when caught up, else now − last replayed commit).
   * Give your own for logical replication or a replication proxy.
   */
  replicaLagQuery?: string;
}

/**
 * Opens a group (primary + replicas) for each data source, in layout order; PEAK_DATA_LAYOUT
 * naming the data source whose primary connection is missing.
 */
export function openDataSources(
  dataSources: readonly string[],
  connections: Record<string, DataSourceConnection> | undefined,
  pool: { size: number; minIdle: number; prepareStatements: boolean },
  replicaCheckIntervalMs: number,
): Map<string, DataSourceGroup> {
  const poolOptions = {
    poolSize: pool.size,
    minIdle: pool.minIdle,
    prepareStatements: pool.prepareStatements,
  };
  const groups = new Map<string, DataSourceGroup>();
  for (const name of dataSources) {
    const conn = connections?.[name];
    if (conn === undefined || conn.primary === undefined) {
      throw new PeakError(
        ErrorCodes.DATA_LAYOUT,
        `data layout: connections.${name}: the data source ${name} has no primary connection; give connections.${name}.primary (a URL or pg pool config)`,
        { details: { input: `connections.${name}` } },
      );
    }
    const primary = new PgDataSource({ connection: conn.primary, ...poolOptions });
    const replicas = (conn.replicas ?? []).map(
      (r) => new PgDataSource({ connection: r, role: 'replica', ...poolOptions }),
    );
    groups.set(
      name,
      new DataSourceGroup(primary, replicas, {
        maxLagMs: conn.maxReplicaLagMs ?? 1000,
        lagQuery: conn.replicaLagQuery ?? STREAMING_LAG_SQL,
        checkIntervalMs: replicaCheckIntervalMs,
      }),
    );
  }
  return groups;
}

/** Checks every primary answers; PEAK_DB_UNREACHABLE naming a data source that does not. */
export async function checkPrimaries(groups: ReadonlyMap<string, DataSourceGroup>): Promise<void> {
  await Promise.all(
    [...groups].map(async ([name, group]) => {
      try {
        await group.primary.query('SELECT 1');
      } catch (err) {
        throw new PeakError(
          ErrorCodes.DB_UNREACHABLE,
          `data source ${name}: cannot reach its primary PostgreSQL (${(err as Error).message}); check connections.${name}.primary`,
          { cause: err, details: { input: `connections.${name}.primary`, dataSource: name } },
        );
      }
    }),
  );
}
