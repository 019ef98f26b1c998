/**
 * The migrator with gaps in the version list (numbers are assigned to subsystems ahead of
 * their landing): a database migrated past a gap gets the gap's migration when it lands,
 * every version is recorded once, and a database newer than the list is refused.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { ErrorCodes, isPeakError } from '../src/core/errors.js';
import { silentLogger } from '../src/core/logger.js';
import { PeakServer } from '../src/server/index.js';
import { collectMigrations } from '../src/server/migrations/index.js';
import { migrate } from '../src/server/migrator.js';
import { builtinModules } from '../src/server/modules.js';
import { quietAtShutdown } from './support/pg-pool.js';

describe('migrator: gaps in the version list', { timeout: 120_000 }, () => {
  let server: PeakServer;
  let pool: pg.Pool;
  let dir: string;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'peak-migrate-'));
    server = await PeakServer.start({ dataDir: dir, port: 0 });
    pool = quietAtShutdown(new pg.Pool({ connectionString: server.postgresUrl(), max: 2 }));
  });

  after(async () => {
    await pool?.end();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('applies a migration that lands in a gap below applied ones, once', async () => {
    const list = collectMigrations(builtinModules);
    const newest = list.at(-1)!.version;
    const ahead = {
      version: newest + 2,
      name: 'ahead',
      sql: 'CREATE TABLE peak.gap_ahead (one int)',
    };
    const landed = {
      version: newest + 1,
      name: 'landed',
      sql: 'CREATE TABLE peak.gap_landed (one int)',
    };
    // A subsystem numbered above a gap lands first...
    const first = await migrate(pool, [...list, ahead], silentLogger());
    assert.deepEqual(first.applied, [newest + 2]);
    // ...then the one assigned the gap: it runs, although a newer version is recorded.
    const second = await migrate(pool, [...list, landed, ahead], silentLogger());
    assert.deepEqual(second.applied, [newest + 1]);
    assert.equal(second.version, newest + 2);
    const again = await migrate(pool, [...list, landed, ahead], silentLogger());
    assert.deepEqual(again.applied, []);
    const tables = await pool.query(
      "SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'peak' AND tablename IN ('gap_ahead', 'gap_landed')",
    );
    assert.equal(tables.rows[0].n, 2);
    // A list without the newest version the database has is an older peakware.
    await assert.rejects(migrate(pool, [...list, landed], silentLogger()), (err: unknown) =>
      isPeakError(err, ErrorCodes.SCHEMA_TOO_NEW),
    );
  });
});
