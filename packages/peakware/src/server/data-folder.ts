/**
 * The server's data folder (default `./.peak`): the embedded PostgreSQL cluster (`pg/`),
 * its generated password, the admin token and the local apps' credentials
 * (`credentials/<app>`; files of mode 0600), the server lock, and the PostgreSQL log. One running server owns a data folder at a time.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import {
  access,
  chmod,
  mkdir,
  open,
  readFile,
  rename,
  rm,
  stat,
  unlink,
  writeFile,
} from 'node:fs/promises';
import path from 'node:path';
import { ErrorCodes, errorMessage, PeakError } from '../core/errors.js';

/** File names inside the data folder. */
export const DataFiles = {
  lock: 'server.lock',
  postgresPassword: 'postgres-password',
  adminToken: 'admin-token',
  /** One file per local app, holding its credential (`credentials/local`, ...). */
  credentialsDir: 'credentials',
  postgresLog: 'postgres.log',
  postgresDir: 'pg',
} as const;

function folderError(dir: string, what: string, cause?: unknown): PeakError {
  return new PeakError(
    ErrorCodes.DATA_FOLDER,
    `data folder ${dir}: ${what}${cause === undefined ? '' : ` (${errorMessage(cause)})`}`,
    { cause, details: { input: '--data', path: dir } },
  );
}

/**
 * Creates the data folder if needed and proves it is writable. The folder itself stays
 * traversable (0755) so an unprivileged PostgreSQL user can reach `pg/`; secrets inside are
 * 0600.
 */
export async function prepareDataFolder(dir: string): Promise<string> {
  const abs = path.resolve(dir);
  try {
    await mkdir(abs, { recursive: true, mode: 0o755 });
  } catch (err) {
    throw folderError(abs, 'cannot be created; pass --data with a folder you can write', err);
  }
  const info = await stat(abs).catch((err: unknown) => {
    throw folderError(abs, 'cannot be read', err);
  });
  if (!info.isDirectory())
    throw folderError(abs, 'exists and is not a folder; pass another --data');
  try {
    await access(abs, fsConstants.W_OK | fsConstants.X_OK);
    const probe = path.join(abs, `.probe-${process.pid}`);
    await writeFile(probe, '');
    await unlink(probe);
  } catch (err) {
    throw folderError(abs, 'is not writable; fix its permissions or pass another --data', err);
  }
  return abs;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The command line of a live process (Linux), or undefined where /proc is not available. */
export async function processCommandLine(pid: number): Promise<string | undefined> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ');
  } catch {
    return undefined;
  }
}

/** A held server lock; `release()` removes it. */
export interface DataFolderLock {
  release(): Promise<void>;
}

/**
 * Takes the server lock of the data folder, so two servers never share one embedded
 * PostgreSQL. A lock left by a server that died (`kill -9`) is taken over.
 */
export async function lockDataFolder(dir: string): Promise<DataFolderLock> {
  const file = path.join(dir, DataFiles.lock);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(file, 'wx', 0o644);
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      return {
        release: async () => {
          const owner = await readFile(file, 'utf8').catch(() => '');
          if (Number.parseInt(owner, 10) === process.pid) await rm(file, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw folderError(dir, 'cannot write the server lock', err);
      }
    }
    const pid = Number.parseInt(await readFile(file, 'utf8').catch(() => ''), 10);
    if (Number.isInteger(pid) && pid !== process.pid && processAlive(pid)) {
      const cmd = await processCommandLine(pid);
      // A recycled pid that is not a node process cannot be a server holding the folder.
      if (cmd === undefined || /node|peak/.test(cmd)) {
        throw folderError(
          dir,
          `is in use by another peak server (pid ${pid}); stop it first or pass another --data`,
        );
      }
    }
    // The owner is gone: a stale lock from a crash. Take it over.
    await rm(file, { force: true });
  }
  throw folderError(dir, 'the server lock keeps changing hands; is another server starting?');
}

/**
 * Reads the secret stored in `file`, or generates one with `generate` and stores it with
 * mode 0600. Returns the secret and whether it was created now.
 */
export async function readOrCreateSecret(
  file: string,
  generate: () => string = () => randomBytes(24).toString('base64url'),
): Promise<{ value: string; created: boolean }> {
  try {
    const value = (await readFile(file, 'utf8')).trim();
    if (value.length > 0) {
      await chmod(file, 0o600);
      return { value, created: false };
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw folderError(path.dirname(file), `cannot read ${path.basename(file)}`, err);
    }
  }
  const value = generate();
  await writeSecret(file, value);
  return { value, created: true };
}

/** Writes a secret file with mode 0600 (replacing any earlier one). */
export async function writeSecret(file: string, value: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${value}\n`, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, file);
}
