/**
 * CLI contexts, as kubectl has them: a named pair of which server(s) to talk to and which
 * token file to send, kept in one JSON file (`$PEAK_CONFIG_DIR/contexts.json`, default
 * `~/.config/peak/contexts.json`). The context in use is `--context`, else `PEAK_CONTEXT`,
 * else the one `peak context use` chose. An explicit `--server`/`PEAK_SERVER` or
 * `--token`/`PEAK_TOKEN` still wins over the context.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ErrorCodes, PeakError, UsageError } from '../core/errors.js';

/** One context: the server list and the file the admin token is read from. */
export interface CliContext {
  /** One URL or several separated by commas (failover in order). */
  server: string;
  /** An absolute path; absent: the token comes from `--token`, `PEAK_TOKEN` or `--data`. */
  tokenFile?: string;
}

/** The contexts file's content. */
export interface ContextsFile {
  current?: string;
  contexts: Record<string, CliContext>;
}

/** Where the contexts file is, from `PEAK_CONFIG_DIR`, `XDG_CONFIG_HOME` or the home folder. */
export function contextsPath(env: NodeJS.ProcessEnv = process.env): string {
  const dir =
    env.PEAK_CONFIG_DIR ||
    path.join(env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config'), 'peak');
  return path.join(dir, 'contexts.json');
}

/** Reads the contexts file (an absent file is no contexts). */
export async function readContexts(env: NodeJS.ProcessEnv = process.env): Promise<ContextsFile> {
  const file = contextsPath(env);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { contexts: {} };
    throw new PeakError(ErrorCodes.INVALID_ARGUMENT, `cannot read the contexts file ${file}`, {
      cause: err,
    });
  }
  try {
    const parsed = JSON.parse(text) as ContextsFile;
    if (typeof parsed !== 'object' || parsed === null || typeof parsed.contexts !== 'object') {
      throw new Error('no "contexts" object');
    }
    return parsed;
  } catch (err) {
    throw new PeakError(
      ErrorCodes.INVALID_ARGUMENT,
      `the contexts file ${file} is not valid (${(err as Error).message}); fix or remove it`,
      { cause: err },
    );
  }
}

/** Writes the contexts file (mode 0600, replaced atomically). */
export async function writeContexts(
  file: ContextsFile,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const target = contextsPath(env);
  await mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
  const temp = `${target}.${process.pid}.tmp`;
  await writeFile(temp, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
  await rename(temp, target);
}

/** The context in use and its name, or undefined when none is chosen. */
export async function activeContext(
  values: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ name: string; context: CliContext } | undefined> {
  const chosen =
    typeof values.context === 'string' && values.context !== ''
      ? values.context
      : env.PEAK_CONTEXT || undefined;
  const file = await readContexts(env);
  const name = chosen ?? file.current;
  if (name === undefined) return undefined;
  const context = file.contexts[name];
  if (context === undefined) {
    const known = Object.keys(file.contexts);
    throw new UsageError(
      `no context '${name}'${chosen === undefined ? ' (the current one)' : ''} in ${contextsPath(env)}; known: ${known.length > 0 ? known.join(', ') : 'none'} (peak context add NAME --server URL)`,
    );
  }
  return { name, context };
}

/** The context's name given as `--context NAME` or `--context=NAME` in `argv`, if any. */
function contextFlag(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return undefined;
    if (a === '--context') return argv[i + 1];
    if (a.startsWith('--context=')) return a.slice('--context='.length);
  }
  return undefined;
}

/**
 * The environment one `peak` run sees with its context applied: the context's server as
 * `PEAK_SERVER` and its token file as `PEAK_TOKEN_FILE`, each only when not set already (an
 * explicit `--server`/`--token` flag wins over both, as flags win over variables). `name`
 * is the context in use, for messages.
 */
export async function withContext(
  argv: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ env: NodeJS.ProcessEnv; name?: string }> {
  // `peak context ...` manages the file: a broken current context must not block it.
  if (argv[0] === 'context' || argv[0] === 'completion') return { env };
  const active = await activeContext({ context: contextFlag(argv) }, env);
  if (active === undefined) return { env };
  const applied: NodeJS.ProcessEnv = { ...env };
  if (!env.PEAK_SERVER) applied.PEAK_SERVER = active.context.server;
  if (!env.PEAK_TOKEN_FILE && active.context.tokenFile !== undefined)
    applied.PEAK_TOKEN_FILE = active.context.tokenFile;
  return { env: applied, name: active.name };
}
