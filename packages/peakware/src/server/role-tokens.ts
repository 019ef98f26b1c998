/**
 * Operator tokens besides the admin token: named tokens of a role (`admin`, `operator`:
 * config, rules and plans but no credential management, `viewer`: reads only), issued
 * once (the database keeps the SHA-256 only), listed without secrets, revoked by name.
 * Rows of `peak.admin_tokens`, like the admin token (named `admin`, rotated on its own).
 */
import type pg from 'pg';
import { ErrorCodes, PeakError } from '../core/errors.js';
import { generateAdminToken } from './admin-token.js';
import { tokenHash } from './app-credentials.js';
import type { Role } from './authenticator.js';

/** An operator token as listed (never its secret). */
export interface RoleTokenView {
  name: string;
  role: Role;
  createdAt: string;
  createdBy: string;
}

/** Issues a token named `name` of `role`; the token is in this answer only. */
export async function createRoleToken(
  pool: pg.Pool,
  name: string,
  role: Role,
  createdBy: string,
): Promise<{ name: string; role: Role; token: string }> {
  if (name === 'admin') {
    throw new PeakError(
      ErrorCodes.TOKEN_EXISTS,
      "the name 'admin' is the admin token's (rotate it with 'peak token rotate'); choose another",
      { details: { input: 'name' } },
    );
  }
  const token = generateAdminToken();
  const { rowCount } = await pool.query(
    `INSERT INTO peak.admin_tokens (token_hash, created_by, role, name)
     SELECT $1, $2, $3, $4
      WHERE NOT EXISTS (SELECT 1 FROM peak.admin_tokens WHERE name = $4 AND revoked_at IS NULL)`,
    [tokenHash(token), createdBy, role, name],
  );
  if ((rowCount ?? 0) === 0) {
    throw new PeakError(
      ErrorCodes.TOKEN_EXISTS,
      `an operator token named '${name}' exists; revoke it first ('peak token revoke ${name}') or choose another name`,
      { details: { input: 'name' } },
    );
  }
  return { name, role, token };
}

/** The working operator tokens, the admin token first. */
export async function listRoleTokens(pool: pg.Pool): Promise<RoleTokenView[]> {
  const { rows } = await pool.query<{
    name: string;
    role: Role;
    created_at: Date;
    created_by: string;
  }>(
    `SELECT name, role, created_at, created_by FROM peak.admin_tokens
      WHERE revoked_at IS NULL ORDER BY name <> 'admin', name`,
  );
  return rows.map((r) => ({
    name: r.name,
    role: r.role,
    createdAt: r.created_at.toISOString(),
    createdBy: r.created_by,
  }));
}

/** Revokes the token named `name` (not the admin token: rotate that). */
export async function revokeRoleToken(pool: pg.Pool, name: string): Promise<void> {
  if (name === 'admin') {
    throw new PeakError(
      ErrorCodes.INVALID_ARGUMENT,
      "the admin token is not revoked but rotated: 'peak token rotate'",
      { details: { input: 'name' } },
    );
  }
  const { rowCount } = await pool.query(
    'UPDATE peak.admin_tokens SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL',
    [name],
  );
  if ((rowCount ?? 0) === 0) {
    throw new PeakError(ErrorCodes.NOT_FOUND, `no working operator token named '${name}'`);
  }
}
