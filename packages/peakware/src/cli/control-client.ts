/**
 * How CLI commands talk to a running `peak server`: through the typed admin API
 * (`peakware/admin`) and the broker client of `peakware/mq`, both on the one
 * control-plane client (failover across the `--server` list, retries, errors as one-line
 * PeakErrors). The credential comes from `--token` (or `PEAK_TOKEN`); without one, commands
 * that change state read the admin token from the data folder, reads take the admin token
 * or an app credential (`PEAK_CREDENTIAL`, or the local app's in `<data>/credentials/local`),
 * and data-plane commands (`peak mq send|consume`, `peak rpc call`) prefer the app
 * credential.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { AdminClient } from '../admin/admin-client.js';
import { ErrorCodes, PeakError } from '../core/errors.js';
import { parseServers } from '../core/server-list.js';
import { BrokerClient } from '../mq/broker-client.js';
import { DEFAULT_DATA_DIR, DEFAULT_PORT } from '../server/defaults.js';
import type { OptionSpec } from './command.js';
import { noteCredentials } from './credential-note.js';

/** Options shared by every command that calls a server: where, and the credential. */
export const SERVER_OPTIONS: Record<string, OptionSpec> = {
  server: {
    type: 'string',
    valueName: 'URL[,URL]',
    description: 'the peak server to talk to (several: failover in order)',
    default: `http://127.0.0.1:${DEFAULT_PORT}`,
    env: 'PEAK_SERVER',
  },
  context: {
    type: 'string',
    valueName: 'NAME',
    description: 'the context to use: its server and token file (peak context ls); --server wins',
    env: 'PEAK_CONTEXT',
  },
  token: {
    type: 'string',
    valueName: 'TOKEN',
    description:
      'an operator token or app credential (default: --token-file, the data folder, or PEAK_CREDENTIAL)',
    env: 'PEAK_TOKEN',
  },
  'token-file': {
    type: 'string',
    valueName: 'FILE',
    description: "a file holding the admin token (default: the context's)",
    env: 'PEAK_TOKEN_FILE',
  },
  data: {
    type: 'string',
    valueName: 'DIR',
    description: "the server's data folder, to read the admin token or local credential from",
    default: DEFAULT_DATA_DIR,
    env: 'PEAK_DATA',
  },
};

/** Options for commands that change state (the same: the admin token is found the same way). */
export const ADMIN_OPTIONS: Record<string, OptionSpec> = SERVER_OPTIONS;

async function readTrimmed(file: string): Promise<string | undefined> {
  try {
    const text = (await readFile(file, 'utf8')).trim();
    return text.length > 0 ? text : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A credential for a read or a data-plane call, or undefined: `--token`, then the file
 * `--token-file` (or the context) names, then (`prefer` first) the admin token in the data
 * folder or the app credential of PEAK_CREDENTIAL or `<data>/credentials/local`.
 */
export async function findCredential(
  values: Record<string, unknown>,
  prefer: 'operator' | 'app' = 'operator',
): Promise<string | undefined> {
  const servers = String(values.server ?? '').split(',');
  if (typeof values.token === 'string' && values.token.length > 0) {
    noteCredentials({ servers, token: '--token/PEAK_TOKEN' });
    return values.token;
  }
  if (typeof values['token-file'] === 'string' && values['token-file'] !== '') {
    const file = path.resolve(values['token-file']);
    noteCredentials({ servers, token: file });
    return readTrimmed(file);
  }
  const data = path.resolve(String(values.data ?? DEFAULT_DATA_DIR));
  const operator = () => readTrimmed(path.join(data, 'admin-token'));
  const app = async () => {
    const env = process.env.PEAK_CREDENTIAL;
    if (env !== undefined && env.length > 0) return env;
    return readTrimmed(path.join(data, 'credentials', 'local'));
  };
  return prefer === 'operator'
    ? ((await operator()) ?? (await app()))
    : ((await app()) ?? (await operator()));
}

/**
 * Finds the admin token: `--token`/`PEAK_TOKEN`, else the file `--token-file` (or the
 * context) names, else `<data>/admin-token`; records where it came from for the error of a
 * refused token.
 */
export async function findAdminToken(values: Record<string, unknown>): Promise<string> {
  const servers = () => String(values.server ?? '').split(',');
  if (typeof values.token === 'string' && values.token.length > 0) {
    noteCredentials({ servers: servers(), token: '--token/PEAK_TOKEN' });
    return values.token;
  }
  const named = typeof values['token-file'] === 'string' && values['token-file'] !== '';
  const file = named
    ? path.resolve(String(values['token-file']))
    : path.resolve(String(values.data ?? DEFAULT_DATA_DIR), 'admin-token');
  try {
    const token = (await readFile(file, 'utf8')).trim();
    if (token.length > 0) {
      noteCredentials({ servers: servers(), token: file });
      return token;
    }
  } catch {
    // fall through to the error below
  }
  throw new PeakError(
    ErrorCodes.UNAUTHENTICATED,
    named
      ? `no admin token in ${file} (--token-file, PEAK_TOKEN_FILE or the context's token file)`
      : `no admin token: pass --token, set PEAK_TOKEN, use --token-file or a context (peak context add), or point --data at the server's data folder (no token in ${file})`,
  );
}

/** The control-plane nodes `--server` names: one URL, or several separated by commas. */
export function serverList(values: Record<string, unknown>): string[] {
  return parseServers(String(values.server ?? '').split(','), '--server');
}

/**
 * The typed admin API of the server(s) `--server` names. With `admin: true` (commands that
 * change state) the admin token is found first, so a missing one fails before any call;
 * reads send whatever credential {@link findCredential} finds.
 */
export async function adminClient(
  values: Record<string, unknown>,
  options: { admin?: boolean } = {},
): Promise<AdminClient> {
  const token =
    options.admin === true ? await findAdminToken(values) : await findCredential(values);
  return new AdminClient({
    servers: serverList(values),
    ...(token === undefined ? {} : { token }),
    serverName: 'peak server',
    unreachableHint: "is 'peak server' running? Pass --server URL or set PEAK_SERVER",
  });
}

/**
 * The broker's data-plane client (`peak mq send|consume`), with an app credential (see
 * {@link findCredential}) and a topic's consume secret.
 */
export async function brokerClient(
  values: Record<string, unknown>,
  secret?: string,
): Promise<BrokerClient> {
  const token = await findCredential(values, 'app');
  return new BrokerClient({
    servers: serverList(values),
    ...(token === undefined ? {} : { token }),
    ...(secret === undefined ? {} : { secret }),
  });
}
