/**
 * A data source's idle minimum on a real PostgreSQL: `minIdle` connections are opened by
 * `warm()` (and by `ShardedDatabase.connect`) before any statement, and stay open when idle
 * while the ones above the minimum close, so a load step later opens none.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PgDataSource, ShardedDatabase } from '../src/data/index.js';
import { type PostgresCluster, startPostgresCluster } from './support/postgres-cluster.js';
import { waitFor } from './support/wait.js';

describe('data: a pool kept open while idle (minIdle)', { timeout: 60_000 }, () => {
  let cluster: PostgresCluster;
  let observer: PgDataSource;

  /** Backends connected under `name` (pg_stat_activity's application_name). */
  const backends = async (name: string): Promise<number> => {
    const { rows } = await observer.query<{ n: string }>(
      'SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1',
      [name],
    );
    return Number(rows[0]!.n);
  };

  before(async () => {
    cluster = await startPostgresCluster(1);
    observer = new PgDataSource({ connection: cluster.url(0), poolSize: 1 });
  });

  after(async () => {
    await observer?.close();
    await cluster?.stop();
  });

  it('warm() opens the minimum at once; idle, it stays while the connections above it close', async () => {
    const name = 'peak-min-idle';
    const source = new PgDataSource({
      // idleTimeoutMillis shortened so the connections above the minimum close within the test.
      connection: {
        connectionString: cluster.url(0),
        application_name: name,
        idleTimeoutMillis: 100,
      },
      poolSize: 4,
      minIdle: 2,
    });
    try {
      assert.equal(await backends(name), 0, 'nothing is opened by the constructor');
      await source.warm();
      assert.equal(source.pool.totalCount, 2);
      assert.equal(await backends(name), 2);
      // Four sessions held at once: the pool grows to its size.
      const sessions = [];
      for (let i = 0; i < 4; i++) sessions.push(await source.session());
      assert.equal(source.pool.totalCount, 4);
      for (const s of sessions) s.release();
      // Idle: the two above the minimum close; the minimum stays.
      await waitFor(
        'the connections above the minimum to close',
        () => source.pool.totalCount === 2,
        10_000,
      );
      await new Promise((r) => setTimeout(r, 300)); // three idle timeouts more
      assert.equal(source.pool.totalCount, 2);
      assert.equal(await backends(name), 2);
    } finally {
      await source.close();
    }
  });

  it('ShardedDatabase.connect opens minIdle connections on every data source', async () => {
    const name = 'peak-min-idle-sharded';
    const connection = { connectionString: cluster.url(0), application_name: name };
    const db = await ShardedDatabase.connect({
      layout: {
        dataSources: ['ds0', 'ds1'],
        tables: { t_warm: { shardingColumn: 'id', algorithm: { type: 'mod' } } },
      },
      connections: { ds0: { primary: connection }, ds1: { primary: connection } },
      poolSize: 3,
      minIdle: 3,
    });
    try {
      for (const ds of ['ds0', 'ds1'])
        assert.equal(PgDataSource.from(db.primary(ds)).pool.totalCount, 3);
      assert.equal(await backends(name), 6);
    } finally {
      await db.close();
    }
  });

  it('a minIdle above the pool size is held to the pool size', async () => {
    const source = new PgDataSource({ connection: cluster.url(0), poolSize: 2, minIdle: 5 });
    try {
      await source.warm();
      assert.equal(source.pool.totalCount, 2);
    } finally {
      await source.close();
    }
  });
});
