/**
 * How CLI commands talk to a running `peak server`: JSON over HTTP, the admin token found
 * from `--token`, `PEAK_TOKEN` or the data folder, and failures as one-line PeakErrors.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { type ErrorCode, ErrorCodes, errorMessage, PeakError } from '../core/errors.js';
import { DEFAULT_DATA_DIR, DEFAULT_PORT } from '../server/defaults.js';
import type { OptionSpec } from './command.js';

/** Options shared by every command that calls a server. */
export const SERVER_OPTIONS: Record<string, OptionSpec> = {
  server: {
    type: 'string',
    valueName: 'URL',
    description: 'the peak server to talk to',
    default: `http://127.0.0.1:${DEFAULT_PORT}`,
    env: 'PEAK_SERVER',
  },
};

/** Options for commands that change state: the admin token and where to find it. */
export const ADMIN_OPTIONS: Record<string, OptionSpec> = {
  ...SERVER_OPTIONS,
  token: {
    type: 'string',
    valueName: 'TOKEN',
    description: 'the admin token (default: read from <data>/admin-token)',
    env: 'PEAK_TOKEN',
  },
  data: {
    type: 'string',
    valueName: 'DIR',
    description: "the server's data folder, to read the admin token from",
    default: DEFAULT_DATA_DIR,
    env: 'PEAK_DATA',
  },
};

/** Finds the admin token: the explicit one, or the one in the data folder. */
export async function findAdminToken(values: Record<string, unknown>): Promise<string> {
  if (typeof values.token === 'string' && values.token.length > 0) return values.token;
  const file = path.resolve(String(values.data ?? DEFAULT_DATA_DIR), 'admin-token');
  try {
    const token = (await readFile(file, 'utf8')).trim();
    if (token.length > 0) return token;
  } catch {
    // fall through to the error below
  }
  throw new PeakError(
    ErrorCodes.UNAUTHENTICATED,
    `no admin token: pass --token, set PEAK_TOKEN, or point --data at the server's data folder (no token in ${file})`,
  );
}

/** Options of one request. */
export interface RequestOptions {
  token?: string;
  body?: unknown;
  timeoutMs?: number;
}

/** Calls the server and returns its JSON; a failure becomes a PeakError naming the cause. */
export async function requestJson<T>(
  server: string,
  method: string,
  route: string,
  options: RequestOptions = {},
): Promise<T> {
  let url: URL;
  try {
    url = new URL(route, server);
  } catch {
    throw new PeakError(ErrorCodes.USAGE, `--server: not a valid URL: ${server}`, {
      details: { input: '--server' },
    });
  }
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers: {
        accept: 'application/json',
        ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }),
      },
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? errorMessage(err);
    throw new PeakError(
      ErrorCodes.SERVER_UNREACHABLE,
      `cannot reach peak server at ${url.origin} (${cause}); is 'peak server' running? Pass --server URL or set PEAK_SERVER`,
      { cause: err },
    );
  }
  const text = await response.text();
  let body: unknown;
  try {
    body = text.length === 0 ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (!response.ok) {
    const error = (body as { error?: { code?: string; message?: string } } | undefined)?.error;
    throw new PeakError(
      (error?.code as ErrorCode | undefined) ?? ErrorCodes.INTERNAL,
      error?.message ?? `${method} ${route} answered HTTP ${response.status}`,
      { details: { status: response.status } },
    );
  }
  return body as T;
}
