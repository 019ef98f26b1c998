/**
 * The admin token that every mutating API route requires. Created at first start and shown
 * once; the database keeps only its SHA-256 (so any control-plane node can check it), and
 * the data folder keeps the token itself in a 0600 file for the local CLI. Comparison is
 * constant-time; the token never reaches a log line.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type pg from 'pg';
import { writeSecret } from './data-folder.js';

const PREFIX = 'peak_';
const LOCK_KEY = '7354696302';

/** A new random admin token: `peak_` + 32 random bytes, base64url. */
export function generateAdminToken(): string {
  return PREFIX + randomBytes(32).toString('base64url');
}

function hash(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Result of {@link ensureAdminToken}: the token only when it was created by this call. */
export interface EnsureTokenResult {
  created: boolean;
  token?: string;
}

/** Runs `fn` in a transaction holding the admin-token lock (nodes starting together agree). */
async function underTokenLock<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY]);
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** Stores a new token's hash and writes the token to `tokenFile` (0600); returns the token. */
async function issue(client: pg.PoolClient, tokenFile: string, createdBy: string): Promise<string> {
  const token = generateAdminToken();
  await client.query('INSERT INTO peak.admin_tokens (token_hash, created_by) VALUES ($1, $2)', [
    hash(token),
    createdBy,
  ]);
  await writeSecret(tokenFile, token);
  return token;
}

/**
 * Makes sure an active admin token exists. When none does, creates one, stores its hash,
 * writes it to `tokenFile` (0600) and returns it so the caller can show it once.
 */
export function ensureAdminToken(
  pool: pg.Pool,
  tokenFile: string,
  createdBy: string,
): Promise<EnsureTokenResult> {
  return underTokenLock(pool, async (client) => {
    const { rowCount } = await client.query(
      "SELECT 1 FROM peak.admin_tokens WHERE revoked_at IS NULL AND name = 'admin' LIMIT 1",
    );
    if ((rowCount ?? 0) > 0) return { created: false };
    return { created: true, token: await issue(client, tokenFile, createdBy) };
  });
}

/**
 * Replaces the admin token (name `admin`) with a new one, returned once and written to
 * `tokenFile`; other operator tokens (role-tokens.ts) stay.
 */
export function rotateAdminToken(
  pool: pg.Pool,
  tokenFile: string,
  createdBy: string,
): Promise<string> {
  return underTokenLock(pool, async (client) => {
    await client.query(
      "UPDATE peak.admin_tokens SET revoked_at = now() WHERE revoked_at IS NULL AND name = 'admin'",
    );
    return issue(client, tokenFile, createdBy);
  });
}

/** Checks a presented token against the active ones, in constant time per comparison. */
export async function verifyAdminToken(pool: pg.Pool, presented: string): Promise<boolean> {
  const candidate = hash(presented);
  const { rows } = await pool.query<{ token_hash: Buffer }>(
    'SELECT token_hash FROM peak.admin_tokens WHERE revoked_at IS NULL',
  );
  let ok = false;
  // Compare against every active hash, so timing does not reveal which (if any) matched.
  for (const row of rows) {
    if (row.token_hash.length === candidate.length && timingSafeEqual(row.token_hash, candidate)) {
      ok = true;
    }
  }
  return ok;
}
