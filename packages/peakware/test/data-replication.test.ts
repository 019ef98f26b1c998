/**
 * Read/write split over real PostgreSQL streaming replication: a primary and a hot standby
 * made from a cold copy of its data folder (the embedded binaries have no pg_basebackup),
 * following it through a physical replication slot. Reads go to the standby while it is
 * caught up, and to the primary once its replay is paused and it falls behind.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFile, copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import { createLogger } from '../src/core/logger.js';
import { ShardedDatabase, type StatementEvent } from '../src/data/index.js';
import { EmbeddedPostgres, type PostgresEndpoint } from '../src/server/embedded-postgres.js';
import { waitFor } from './support/wait.js';

const exec = promisify(execFile);
const logger = createLogger({ level: 'warn' });
const dirs: string[] = [];
let primary: EmbeddedPostgres | undefined;
let standby: EmbeddedPostgres | undefined;
let primaryAt: PostgresEndpoint;
let standbyAt: PostgresEndpoint;

const url = (e: PostgresEndpoint) =>
  `postgres://${encodeURIComponent(e.user)}:${encodeURIComponent(e.password)}@${e.host}:${e.port}/${e.database}`;

async function sql(
  e: PostgresEndpoint,
  text: string,
  values: unknown[] = [],
): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: url(e) });
  c.on('error', () => {});
  await c.connect();
  try {
    return await c.query(text, values);
  } finally {
    await c.end();
  }
}

before(async () => {
  const d1 = await mkdtemp(path.join(os.tmpdir(), 'peak-data-primary-'));
  const d2 = await mkdtemp(path.join(os.tmpdir(), 'peak-data-standby-'));
  dirs.push(d1, d2);
  primary = new EmbeddedPostgres({ dataDir: d1, logger });
  primaryAt = await primary.start();
  await sql(primaryAt, "SELECT pg_create_physical_replication_slot('peak_standby')");
  await sql(primaryAt, 'CREATE TABLE t_order_0 (id bigint PRIMARY KEY, buyer_id bigint NOT NULL)');
  await primary.stop();
  // A cold copy of the stopped primary is a valid base backup.
  await exec('cp', ['-a', path.join(d1, 'pg'), path.join(d2, 'pg')]);
  await copyFile(path.join(d1, 'postgres-password'), path.join(d2, 'postgres-password'));
  primary = new EmbeddedPostgres({ dataDir: d1, logger });
  primaryAt = await primary.start();
  await writeFile(path.join(d2, 'pg', 'standby.signal'), '');
  await appendFile(
    path.join(d2, 'pg', 'postgresql.auto.conf'),
    `\nprimary_conninfo = 'host=127.0.0.1 port=${primaryAt.port} user=${primaryAt.user} password=${primaryAt.password}'\nprimary_slot_name = 'peak_standby'\n`,
  );
  standby = new EmbeddedPostgres({ dataDir: d2, logger });
  standbyAt = await standby.start();
  const recovering = await sql(standbyAt, 'SELECT pg_is_in_recovery() AS r');
  assert.equal(recovering.rows[0].r, true, 'the copy runs as a standby');
});

after(async () => {
  await standby?.stop();
  await primary?.stop();
  await Promise.allSettled(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('data: read/write split over streaming replication', () => {
  it('reads from a caught-up standby and falls back to the primary when it lags', async () => {
    const events: StatementEvent[] = [];
    const db = await ShardedDatabase.connect({
      layout: {
        dataSources: ['ds0'],
        tables: { t_order: { shardingColumn: 'buyer_id', algorithm: { type: 'mod' } } },
      },
      connections: {
        ds0: { primary: url(primaryAt), replicas: [url(standbyAt)], maxReplicaLagMs: 300 },
      },
      poolSize: 2,
      replicaCheckIntervalMs: 50,
      collector: { record: (e) => events.push(e) },
    });
    try {
      await db.query('INSERT INTO t_order (id, buyer_id) VALUES ($1, $2)', [1, 7]);
      assert.equal(events.at(-1)?.role, 'primary');
      // The write streams to the standby; reads there see it once replayed.
      await waitFor('the standby to replay the insert', async () => {
        await db.checkReplicas();
        const r = await db.query<{ id: string }>('SELECT id FROM t_order WHERE buyer_id = $1', [7]);
        return r.rows.length === 1 && events.at(-1)?.role === 'replica';
      });
      assert.deepEqual(db.replicaLag().ds0, [0]);

      // Pause replay: the standby receives WAL but falls behind; reads move to the primary.
      await sql(standbyAt, 'SELECT pg_wal_replay_pause()');
      try {
        await db.query('INSERT INTO t_order (id, buyer_id) VALUES ($1, $2)', [2, 7]);
        await waitFor('the standby to report lag over the maximum', async () => {
          await new Promise((r) => setTimeout(r, 100));
          await db.checkReplicas();
          return (db.replicaLag().ds0?.[0] ?? 0) > 300;
        });
        events.length = 0;
        const r = await db.query<{ id: string }>(
          'SELECT id FROM t_order WHERE buyer_id = $1 ORDER BY id',
          [7],
        );
        assert.deepEqual(
          r.rows.map((x) => x.id),
          ['1', '2'],
          'the read sees the latest write',
        );
        assert.equal(events[0]?.role, 'primary', 'a lagging standby is not read');
      } finally {
        await sql(standbyAt, 'SELECT pg_wal_replay_resume()');
      }
      await waitFor('the standby to catch up again', async () => {
        await db.checkReplicas();
        return db.replicaLag().ds0?.[0] === 0;
      });
    } finally {
      await db.close();
    }
  });
});
