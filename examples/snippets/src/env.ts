/**
 * What every snippet reads from its environment: the control plane to talk to and, for the
 * ones that need them, the admin token and a PostgreSQL for business data. Defaults fit a
 * local `npx peak server` in `./.peak`. The SDK clients send the app credential of
 * `PEAK_CREDENTIAL` (their default): `PEAK_CREDENTIAL=$(cat .peak/credentials/local)` gives
 * them the local app's, which may do anything an app may.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { AdminClient } from 'peakware/admin';

/** The peak server URL (`PEAK_SERVER`, default http://127.0.0.1:7420). */
export const server = process.env.PEAK_SERVER ?? 'http://127.0.0.1:7420';

/** The admin token: `PEAK_ADMIN_TOKEN`, else the local server's `./.peak/admin-token`. */
export function adminToken(): string {
  return process.env.PEAK_ADMIN_TOKEN ?? readFileSync('.peak/admin-token', 'utf8').trim();
}

/** The control plane's typed admin API, with the admin token. */
export function admin(): AdminClient {
  return new AdminClient({ servers: server, token: adminToken() });
}

/** A PostgreSQL for business data (`PEAK_SNIPPET_POSTGRES`); the data snippet needs one. */
export function postgresUrl(): string {
  const url = process.env.PEAK_SNIPPET_POSTGRES;
  if (url === undefined) {
    throw new Error(
      'set PEAK_SNIPPET_POSTGRES to a postgres:// URL the snippet may create tables in',
    );
  }
  return url;
}

/** Fails the snippet (exit 1) with `message` unless `ok`. */
export function check(ok: boolean, message: string): void {
  if (!ok) throw new Error(`snippet check failed: ${message}`);
}

/** Resolves with `promise`, or fails the snippet naming `what` after `ms`. */
export async function within<T>(what: string, promise: Promise<T>, ms = 15_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`snippet check failed: no ${what} in ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` until it holds, or fails the snippet naming `what` after `ms`. */
export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  ms = 15_000,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`snippet check failed: no ${what} in ${ms} ms`);
    await sleep(100);
  }
}
