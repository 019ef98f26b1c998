/**
 * A data folder whose embedded PostgreSQL preloads `pg_stat_statements` (the MQ benches
 * count statements per message): `peak server` is started once to create it, the library
 * is set with ALTER SYSTEM, and the server stopped; the caller starts it again with its own
 * options, and the setting is in force from then on.
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PeakServer } from 'peakware/server';
import pg from 'pg';

/** Creates the data folder (under the temp folder, named `prefix…`); returns it and its PostgreSQL password. */
export async function dataDirWithStatements(
  prefix: string,
): Promise<{ dataDir: string; password: string }> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), prefix));
  const first = await PeakServer.start({ dataDir, port: 0 });
  const info = first.info.postgres;
  if (info.mode !== 'embedded') throw new Error('expected the embedded PostgreSQL');
  const password = (await readFile(path.join(dataDir, 'postgres-password'), 'utf8')).trim();
  const setup = new pg.Client({
    host: info.host,
    port: info.port,
    user: 'peak',
    password,
    database: 'postgres',
  });
  await setup.connect();
  await setup.query("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'");
  await setup.end();
  await first.stop();
  return { dataDir, password };
}
