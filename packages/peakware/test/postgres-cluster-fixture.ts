/**
 * A test file run by `postgres-cluster-timeout.slow.test.ts` in a child `node --test`: its test
 * times out while `startPostgresCluster` is still starting PostgreSQL, so the suite's own
 * `after` has no cluster to stop.
 */
import { after, describe, it } from 'node:test';
import { type PostgresCluster, startPostgresCluster } from './support/postgres-cluster.js';

describe('a test that times out while its PostgreSQL starts', () => {
  let pg: PostgresCluster | undefined;
  after(async () => {
    await pg?.stop();
  });
  it('starts a cluster', { timeout: 200 }, async () => {
    pg = await startPostgresCluster(1);
  });
});
