/**
 * Server-side prepared statements (core/pg-auto-prepare.ts) on a real PostgreSQL: a
 * parameterised statement is named from its second run and then shows in the connection's
 * `pg_prepared_statements`; a statement without parameters, or run once, is not; a named
 * statement whose cached plan no longer fits after DDL fails once and then runs again
 * (prepared under a new name); `prepareStatements: false` names nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PgDataSource } from '../src/data/index.js';
import { type PostgresCluster, startPostgresCluster } from './support/postgres-cluster.js';

describe('data: prepared statements', { timeout: 60_000 }, () => {
  let cluster: PostgresCluster;
  let source: PgDataSource;
  let plain: PgDataSource;

  /** The statements prepared on the pool's one connection, by their text. */
  const prepared = async (on: PgDataSource): Promise<string[]> => {
    const { rows } = await on.query<{ statement: string }>(
      `SELECT statement FROM pg_prepared_statements WHERE name LIKE 'peak\\_%' ORDER BY prepare_time`,
    );
    return rows.map((r) => r.statement);
  };

  before(async () => {
    cluster = await startPostgresCluster(1);
    // One connection each, so every statement below runs on the same backend.
    source = new PgDataSource({ connection: cluster.url(0), poolSize: 1 });
    plain = new PgDataSource({ connection: cluster.url(0), poolSize: 1, prepareStatements: false });
    await source.query('CREATE TABLE prep_t (id int PRIMARY KEY, v text NOT NULL)');
    await source.query(`INSERT INTO prep_t VALUES (1, 'a'), (2, 'b')`);
  });

  after(async () => {
    await source?.close();
    await plain?.close();
    await cluster?.stop();
  });

  it('names a parameterised statement from its second run, and only such statements', async () => {
    const byId = 'SELECT v FROM prep_t WHERE id = $1';
    assert.equal((await source.query<{ v: string }>(byId, [1])).rows[0]!.v, 'a');
    assert.deepEqual(await prepared(source), [], 'a first run stays unnamed');
    assert.equal((await source.query<{ v: string }>(byId, [2])).rows[0]!.v, 'b');
    assert.deepEqual(await prepared(source), [byId]);
    // Runs on: the same answers through the prepared statement.
    assert.equal((await source.query<{ v: string }>(byId, [1])).rows[0]!.v, 'a');
    // No parameters: never named, however often it runs.
    for (let i = 0; i < 3; i++) await source.query('SELECT count(*) FROM prep_t');
    assert.deepEqual(await prepared(source), [byId]);
  });

  it('a statement whose plan went stale after DDL fails once, then runs prepared anew', async () => {
    const all = 'SELECT * FROM prep_t WHERE id = $1';
    // In a session (a transaction's connection, kept after an error): prepared under a new name.
    const session = await source.session();
    try {
      await session.query(all, [1]);
      await session.query(all, [1]);
      await plain.query('ALTER TABLE prep_t ADD COLUMN w int NOT NULL DEFAULT 7'); // source's one connection is the session's
      await assert.rejects(session.query(all, [1]), /cached plan must not change result type/);
      const again = await session.query<{ id: number; v: string; w: number }>(all, [1]);
      assert.deepEqual(again.rows, [{ id: 1, v: 'a', w: 7 }]);
      const { rows } = await session.query<{ name: string }>(
        'SELECT name FROM pg_prepared_statements WHERE statement = $1 ORDER BY name',
        [all],
      );
      assert.equal(rows.length, 2, 'prepared again under a new name beside the stale one');
    } finally {
      session.release();
    }
    // Through the pool: the failed run's connection is replaced, and the next run works.
    await source.query('ALTER TABLE prep_t DROP COLUMN w');
    await assert.rejects(source.query(all, [2]), /cached plan must not change result type/);
    assert.deepEqual((await source.query(all, [2])).rows, [{ id: 2, v: 'b' }]);
  });

  it('prepareStatements: false names nothing', async () => {
    const byId = 'SELECT v FROM prep_t WHERE id = $1 AND v IS NOT NULL';
    for (let i = 0; i < 3; i++) await plain.query(byId, [1]);
    assert.deepEqual(await prepared(plain), []);
  });
});
