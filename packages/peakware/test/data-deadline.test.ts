/**
 * Deadlines cancel the work behind them: a statement stuck behind a row lock past the
 * caller's deadline is cancelled in PostgreSQL (it is gone from pg_stat_activity, it never
 * applies once the lock is released) and its connection is free again, for a single
 * statement and inside a transaction. A statement PostgreSQL answered "canceled" keeps its
 * connection (no new connection per passed deadline under overload), and so does one that
 * finished before its cancel arrived, without the cancel hitting the next statement.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createContext, runWithContext } from '../src/core/context.js';
import { ErrorCodes, isPeakError } from '../src/core/errors.js';
import { ShardedDatabase } from '../src/data/index.js';
import { type PostgresCluster, startPostgresCluster } from './support/postgres-cluster.js';
import { waitFor } from './support/wait.js';

describe('data: a passed deadline cancels the statement in PostgreSQL', {
  timeout: 120_000,
}, () => {
  let cluster: PostgresCluster;
  let db: ShardedDatabase;
  let admin: pg.Client;

  /** Statements on t_hot that PostgreSQL is running now (other than this probe). */
  const running = async (): Promise<string[]> => {
    const { rows } = await admin.query<{ query: string }>(
      `SELECT query FROM pg_stat_activity
        WHERE state = 'active' AND query LIKE '%t_hot%' AND pid <> pg_backend_pid()`,
    );
    return rows.map((r) => r.query);
  };
  const left = async () =>
    (await admin.query<{ n: number }>(`SELECT n FROM t_hot WHERE sku = 'hot'`)).rows[0]!.n;

  /** Holds the hot row's lock in a transaction of its own until the returned function ends it. */
  const lockHotRow = async (): Promise<() => Promise<void>> => {
    const locker = new pg.Client({ connectionString: cluster.url(0) });
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query(`SELECT n FROM t_hot WHERE sku = 'hot' FOR UPDATE`);
    return async () => {
      await locker.query('COMMIT');
      await locker.end();
    };
  };

  before(async () => {
    cluster = await startPostgresCluster(1);
    admin = new pg.Client({ connectionString: cluster.url(0) });
    await admin.connect();
    await admin.query('CREATE TABLE t_hot (sku text PRIMARY KEY, n int NOT NULL)');
    await admin.query(`INSERT INTO t_hot VALUES ('hot', 10)`);
    db = await ShardedDatabase.connect({
      layout: { dataSources: ['ds0'], tables: {}, broadcastTables: ['t_hot'] },
      connections: { ds0: { primary: cluster.url(0) } },
      // One connection: a statement that kept it would starve the next one.
      poolSize: 1,
    });
  });

  after(async () => {
    await db?.close();
    await admin?.end();
    await cluster?.stop();
  });

  const deadline = (ms: number) => createContext({ deadline: Date.now() + ms });

  /** The backend serving the pool's one connection. */
  const backendPid = async () =>
    (
      await runWithContext(deadline(5000), () =>
        db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid FROM t_hot LIMIT 1'),
      )
    ).rows[0]!.pid;

  it('a single statement: cancelled, never applied, its connection free', async () => {
    const before = await backendPid();
    const unlock = await lockHotRow();
    try {
      await assert.rejects(
        runWithContext(deadline(300), () =>
          db.query(`UPDATE t_hot SET n = n - 1 WHERE sku = $1`, ['hot']),
        ),
        (err) => isPeakError(err, ErrorCodes.DEADLINE_EXCEEDED),
      );
      await waitFor(
        'the cut-off UPDATE gone from PostgreSQL',
        async () => (await running()).length === 0,
        10_000,
      );
    } finally {
      await unlock();
    }
    // The one pooled connection serves the next statement.
    const r = await runWithContext(deadline(5000), () =>
      db.query<{ n: number }>(`SELECT n FROM t_hot WHERE sku = $1`, ['hot']),
    );
    assert.equal(r.rows[0]!.n, 10);
    assert.equal(await left(), 10, 'the cut-off UPDATE never applied');
    assert.equal(await backendPid(), before, 'the cancelled statement kept its connection');
  });

  it('a statement that finishes before its cancel arrives keeps its connection; the next is not hit', async () => {
    const before = await backendPid();
    let cutOff = 0;
    for (let i = 0; i < 30; i++) {
      // 2 ms of work against a 1 ms deadline: the cancel (a new connection to the server)
      // often arrives after the statement has finished, sometimes while it runs.
      await runWithContext(deadline(1), () =>
        db.query(`SELECT n, pg_sleep(0.002) FROM t_hot WHERE sku = 'hot'`),
      ).catch((err) => {
        if (!isPeakError(err, ErrorCodes.DEADLINE_EXCEEDED)) throw err;
        cutOff++;
      });
      // No deadline: a cancel still on its way would fail this with "canceling statement".
      const r = await db.query<{ n: number }>(`SELECT n FROM t_hot WHERE sku = 'hot'`);
      assert.equal(r.rows[0]!.n, 10);
    }
    assert.ok(cutOff > 0, 'some statements outlived their deadline');
    assert.equal(await backendPid(), before, 'every cut-off statement kept its connection');
  });

  it('a statement PostgreSQL refuses keeps its connection; a lost connection is replaced', async () => {
    const before = await backendPid();
    await assert.rejects(
      runWithContext(deadline(5000), () => db.query('SELECT no_such_column FROM t_hot')),
      /no_such_column/,
    );
    assert.equal(await backendPid(), before);
    await admin.query('SELECT pg_terminate_backend($1)', [before]);
    // The pool may see the idle connection close before the next statement, or that
    // statement fails on it; either way the connection after it is a new one.
    await runWithContext(deadline(5000), () => db.query('SELECT 1 FROM t_hot')).catch(
      () => undefined,
    );
    assert.notEqual(await backendPid(), before, 'a terminated connection is not reused');
  });

  it('a transaction: the stuck statement is cancelled and the transaction rolled back', async () => {
    const unlock = await lockHotRow();
    try {
      await assert.rejects(
        runWithContext(deadline(300), () =>
          db.transaction(async (tx) => {
            await tx.query(`UPDATE t_hot SET n = n - 2 WHERE sku = $1`, ['hot']);
          }),
        ),
        (err) => isPeakError(err, ErrorCodes.DEADLINE_EXCEEDED),
      );
      await waitFor(
        'the cut-off transaction gone from PostgreSQL',
        async () => (await running()).length === 0,
        10_000,
      );
    } finally {
      await unlock();
    }
    await runWithContext(deadline(5000), () =>
      db.query(`UPDATE t_hot SET n = n - 1 WHERE sku = $1`, ['hot']),
    );
    assert.equal(await left(), 9, 'only the statement with time left applied');
  });
});
