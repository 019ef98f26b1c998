/**
 * Apps and their credentials (`peak app create|rotate|revoke|list`). An app is a name and
 * its grants (app-scopes.ts); a credential is `peakapp_` + 32 random bytes (base64url),
 * shown once when issued. The database keeps its SHA-256 only (a 256-bit random secret
 * needs no slow hash), so any control-plane node checks it with one indexed lookup.
 *
 * Rotation issues a new credential and lets the old ones work for an overlap (default one
 * hour) so running processes can move over; revocation ends one credential or all of an
 * app's at once. The embedded default issues local credentials into the data folder
 * ({@link ensureLocalApp}, files of mode 0600) so one command still starts everything.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type pg from 'pg';
import { ErrorCodes, InvalidArgumentError, PeakError } from '../core/errors.js';
import { formatScope, parseScopes, type Scope } from './app-scopes.js';
import { writeSecret } from './data-folder.js';

/** The prefix of every app credential (admin and role tokens start `peak_`). */
export const APP_CREDENTIAL_PREFIX = 'peakapp_';

/** App names: a letter, then letters, digits, `_ . -` (like service names). */
export const APP_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,127}$/;

/** How long a rotated-out credential keeps working unless the caller says otherwise, ms. */
export const DEFAULT_ROTATION_OVERLAP_MS = 3_600_000;

/** One credential of an app, as lists show it (never the secret). */
export interface AppCredentialView {
  id: string;
  /** The credential's last four characters, to tell credentials apart. */
  hint: string;
  createdAt: string;
  createdBy: string;
  /** When a rotation ends it (it works until then); null: no end. */
  expiresAt: string | null;
  revokedAt: string | null;
  /** Whether it works now. */
  active: boolean;
}

/** An app as lists show it. */
export interface AppView {
  name: string;
  /** Its grants, `kind:pattern`. */
  can: string[];
  createdAt: string;
  createdBy: string;
  credentials: AppCredentialView[];
}

/** A newly issued credential: shown once. */
export interface IssuedCredential {
  app: string;
  credentialId: string;
  credential: string;
}

/** What a credential proves: the app and its grants. */
export interface VerifiedApp {
  app: string;
  scopes: Scope[];
  credentialId: string;
}

/** SHA-256 of a credential or token. */
export function tokenHash(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

function newCredential(): string {
  return APP_CREDENTIAL_PREFIX + randomBytes(32).toString('base64url');
}

/** Throws PEAK_INVALID_ARGUMENT unless `name` is an app name. */
export function checkAppName(name: string): string {
  if (!APP_NAME.test(name)) {
    throw new InvalidArgumentError(
      `'${name}' is not an app name: a letter, then up to 127 letters, digits or _ . -`,
      { details: { input: 'name' } },
    );
  }
  return name;
}

function appNotFound(name: string): PeakError {
  return new PeakError(
    ErrorCodes.APP_NOT_FOUND,
    `no app '${name}'; create it with 'peak app create ${name} --can <grant>' (see 'peak app list')`,
    { details: { app: name } },
  );
}

async function inTransaction<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const out = await fn(client);
    await client.query('COMMIT');
    return out;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

async function insertCredential(
  client: pg.PoolClient | pg.Pool,
  app: string,
  by: string,
): Promise<IssuedCredential> {
  const credential = newCredential();
  const { rows } = await client.query<{ id: string }>(
    `INSERT INTO peak.app_credentials (app, token_hash, hint, created_by)
     VALUES ($1, $2, $3, $4) RETURNING id::text`,
    [app, tokenHash(credential), credential.slice(-4), by],
  );
  return { app, credentialId: rows[0]!.id, credential };
}

/** Creates an app with its grants and issues its first credential (PEAK_APP_EXISTS if taken). */
export function createApp(
  pool: pg.Pool,
  name: string,
  can: readonly string[],
  by: string,
): Promise<IssuedCredential & { can: string[] }> {
  checkAppName(name);
  if (name.startsWith('peak-')) {
    // The control plane's own callers (the txn coordinator's peak-txn) sign as these names:
    // an app of such a name could pass for them in providers' authority rules.
    throw new InvalidArgumentError(
      `'${name}': app names starting with peak- are the control plane's own (its txn coordinator calls as peak-txn); choose another`,
      { details: { input: 'name' } },
    );
  }
  const scopes = parseScopes(can).map(formatScope);
  return inTransaction(pool, async (client) => {
    const inserted = await client.query(
      `INSERT INTO peak.apps (name, scopes, created_by) VALUES ($1, $2, $3)
       ON CONFLICT (name) DO NOTHING`,
      [name, scopes, by],
    );
    if (inserted.rowCount === 0) {
      throw new PeakError(
        ErrorCodes.APP_EXISTS,
        `app '${name}' exists already; issue it a new credential with 'peak app rotate ${name}' or change its grants with 'peak app scopes ${name} --can ...'`,
        { details: { app: name } },
      );
    }
    return { ...(await insertCredential(client, name, by)), can: scopes };
  });
}

/** Replaces an app's grants; takes effect within the credential cache's lifetime (5 s). */
export async function setAppScopes(
  pool: pg.Pool,
  name: string,
  can: readonly string[],
): Promise<string[]> {
  const scopes = parseScopes(can).map(formatScope);
  const { rowCount } = await pool.query(
    'UPDATE peak.apps SET scopes = $2, updated_at = now() WHERE name = $1',
    [name, scopes],
  );
  if (rowCount === 0) throw appNotFound(name);
  return scopes;
}

/**
 * Issues a new credential; the app's other working credentials keep working for
 * `overlapMs` more (0 ends them now), so processes can move to the new one.
 */
export function rotateAppCredential(
  pool: pg.Pool,
  name: string,
  overlapMs: number,
  by: string,
): Promise<IssuedCredential & { previousExpireAt: string }> {
  return inTransaction(pool, async (client) => {
    const app = await client.query('SELECT 1 FROM peak.apps WHERE name = $1 FOR UPDATE', [name]);
    if (app.rowCount === 0) throw appNotFound(name);
    const { rows } = await client.query<{ at: Date }>(
      `UPDATE peak.app_credentials
          SET expires_at = LEAST(COALESCE(expires_at, 'infinity'), now() + make_interval(secs => $2 / 1000.0))
        WHERE app = $1 AND revoked_at IS NULL
        RETURNING now() + make_interval(secs => $2 / 1000.0) AS at`,
      [name, overlapMs],
    );
    const issued = await insertCredential(client, name, by);
    const at = rows[0]?.at ?? new Date();
    return { ...issued, previousExpireAt: at.toISOString() };
  });
}

/** Revokes one credential of an app (by id) or all of them; returns how many it ended. */
export async function revokeAppCredentials(
  pool: pg.Pool,
  name: string,
  credentialId?: string,
): Promise<number> {
  const exists = await pool.query('SELECT 1 FROM peak.apps WHERE name = $1', [name]);
  if (exists.rowCount === 0) throw appNotFound(name);
  if (credentialId !== undefined && !/^\d{1,18}$/.test(credentialId)) {
    throw new InvalidArgumentError(
      `'${credentialId}' is not a credential id (see 'peak app list')`,
      {
        details: { input: 'credentialId' },
      },
    );
  }
  const { rowCount } = await pool.query(
    `UPDATE peak.app_credentials SET revoked_at = now()
      WHERE app = $1 AND revoked_at IS NULL AND ($2::bigint IS NULL OR id = $2::bigint)`,
    [name, credentialId ?? null],
  );
  if (credentialId !== undefined && rowCount === 0) {
    throw new PeakError(
      ErrorCodes.APP_NOT_FOUND,
      `app '${name}' has no working credential ${credentialId} (see 'peak app list')`,
      { details: { app: name, credentialId } },
    );
  }
  return rowCount ?? 0;
}

interface AppRow {
  name: string;
  scopes: string[];
  created_at: Date;
  created_by: string;
}

interface CredentialRow {
  id: string;
  app: string;
  hint: string;
  created_at: Date;
  created_by: string;
  expires_at: Date | null;
  revoked_at: Date | null;
  active: boolean;
}

/** Every app with its grants and credentials (ids and hints, never secrets). */
export async function listApps(pool: pg.Pool): Promise<AppView[]> {
  const apps = await pool.query<AppRow>(
    'SELECT name, scopes, created_at, created_by FROM peak.apps ORDER BY name',
  );
  const creds = await pool.query<CredentialRow>(
    `SELECT id::text, app, hint, created_at, created_by, expires_at, revoked_at,
            (revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())) AS active
       FROM peak.app_credentials ORDER BY id`,
  );
  const byApp = new Map<string, AppCredentialView[]>();
  for (const c of creds.rows) {
    const list = byApp.get(c.app) ?? [];
    list.push({
      id: c.id,
      hint: c.hint,
      createdAt: c.created_at.toISOString(),
      createdBy: c.created_by,
      expiresAt: c.expires_at?.toISOString() ?? null,
      revokedAt: c.revoked_at?.toISOString() ?? null,
      active: c.active,
    });
    byApp.set(c.app, list);
  }
  return apps.rows.map((a) => ({
    name: a.name,
    can: a.scopes,
    createdAt: a.created_at.toISOString(),
    createdBy: a.created_by,
    credentials: byApp.get(a.name) ?? [],
  }));
}

/** The app a working credential belongs to, with its grants; undefined for any other string. */
export async function verifyAppCredential(
  pool: pg.Pool,
  credential: string,
): Promise<VerifiedApp | undefined> {
  if (!credential.startsWith(APP_CREDENTIAL_PREFIX)) return undefined;
  const { rows } = await pool.query<{ id: string; app: string; scopes: string[] }>(
    `SELECT c.id::text, c.app, a.scopes
       FROM peak.app_credentials c JOIN peak.apps a ON a.name = c.app
      WHERE c.token_hash = $1 AND c.revoked_at IS NULL
        AND (c.expires_at IS NULL OR c.expires_at > now())`,
    [tokenHash(credential)],
  );
  const row = rows[0];
  if (row === undefined) return undefined;
  return { app: row.app, scopes: parseScopes(row.scopes), credentialId: row.id };
}

/**
 * Makes sure app `name` exists with grants `can` and that `file` holds a working credential
 * of it: kept when it still works, else a new one is issued and written (mode 0600). The
 * embedded default's local credentials (the CLI's, the shop's services'). Returns the
 * credential and whether it was issued now.
 */
export async function ensureLocalApp(
  pool: pg.Pool,
  name: string,
  can: readonly string[],
  file: string,
  by: string,
): Promise<{ credential: string; issued: boolean }> {
  checkAppName(name);
  const scopes = parseScopes(can).map(formatScope);
  const existing = await readFile(file, 'utf8').then(
    (t) => t.trim(),
    () => '',
  );
  return inTransaction(pool, async (client) => {
    await client.query(
      `INSERT INTO peak.apps (name, scopes, created_by) VALUES ($1, $2, $3)
       ON CONFLICT (name) DO UPDATE SET scopes = EXCLUDED.scopes, updated_at = now()
       WHERE peak.apps.scopes IS DISTINCT FROM EXCLUDED.scopes`,
      [name, scopes, by],
    );
    if (existing !== '') {
      const { rowCount } = await client.query(
        `SELECT 1 FROM peak.app_credentials
          WHERE app = $1 AND token_hash = $2 AND revoked_at IS NULL
            AND (expires_at IS NULL OR expires_at > now())`,
        [name, tokenHash(existing)],
      );
      if ((rowCount ?? 0) > 0) return { credential: existing, issued: false };
    }
    const issued = await insertCredential(client, name, by);
    await writeSecret(file, issued.credential);
    return { credential: issued.credential, issued: true };
  });
}
