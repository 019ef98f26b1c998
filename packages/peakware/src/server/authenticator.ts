/**
 * Who is calling: turns the bearer token of a request into a {@link Caller}, an operator
 * holding a role token (admin, operator, viewer) or an app holding a credential with its
 * grants. Verified tokens are cached for a few seconds (keyed by their SHA-256, never the
 * token), so the SDK's hot routes (sends, acks, token grants) cost one hash and one map
 * lookup, not a database round trip; a revocation or a change of grants reaches every
 * node within that time (at once on the node that made it: {@link Authenticator.forget}).
 */
import type pg from 'pg';
import { tokenHash, verifyAppCredential } from './app-credentials.js';
import type { Scope } from './app-scopes.js';

/** Operator roles, most powerful first: admin > operator > viewer. */
export type Role = 'admin' | 'operator' | 'viewer';

/** Rank of each role: a route needing `operator` admits `operator` and `admin`. */
export const ROLE_RANK: Readonly<Record<Role, number>> = { viewer: 1, operator: 2, admin: 3 };

/** A verified caller of the control plane. */
export type Caller =
  | {
      kind: 'role';
      role: Role;
      /** The token's name (`admin` for the first admin token), or a console user's. */
      name: string;
      /** Who, for the audit: `admin-token`, `token:<name>`, `console:<user>`. */
      who: string;
      /** The credential presented: `admin-token`, `token:<name>`, `console-session`. */
      via: string;
    }
  | {
      kind: 'app';
      app: string;
      scopes: readonly Scope[];
      credentialId: string;
      /** Who, for the audit and logs: `app:<name>`. */
      who: string;
      /** The credential presented: `app-credential`. */
      via: string;
    };

/** A caller holding an operator token (or a console session made from one). */
export type OperatorCaller = Extract<Caller, { kind: 'role' }>;

/** How an operator token appears in the audit: `admin-token` for the first admin token. */
export function roleTokenLabel(role: Role, name: string): string {
  return role === 'admin' && name === 'admin' ? 'admin-token' : `token:${name}`;
}

/** A caller's name for logs and audit lines (its `who`). */
export function callerLabel(caller: Caller): string {
  return caller.who;
}

/** Options of {@link Authenticator}. */
export interface AuthenticatorOptions {
  /** How long a verified token is trusted without asking the database again, ms. Default 5000. */
  cacheMs?: number;
  /** Most tokens cached. Default 10 000. */
  maxCached?: number;
  /** The clock, epoch ms. */
  now?: () => number;
}

/** The role token a hash belongs to, if it works. */
async function verifyRoleToken(
  pool: pg.Pool,
  hash: Buffer,
): Promise<{ role: Role; name: string } | undefined> {
  const { rows } = await pool.query<{ role: Role; name: string }>(
    'SELECT role, name FROM peak.admin_tokens WHERE token_hash = $1 AND revoked_at IS NULL',
    [hash],
  );
  return rows[0];
}

/** Verifies bearer tokens against the database, with a short cache. */
export class Authenticator {
  readonly #pool: pg.Pool;
  readonly #cacheMs: number;
  readonly #maxCached: number;
  readonly #now: () => number;
  readonly #cache = new Map<string, { caller: Caller; until: number }>();

  constructor(pool: pg.Pool, options: AuthenticatorOptions = {}) {
    this.#pool = pool;
    this.#cacheMs = options.cacheMs ?? 5000;
    this.#maxCached = options.maxCached ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  /** The caller `token` proves, or undefined when it is not a working token or credential. */
  async authenticate(token: string): Promise<Caller | undefined> {
    const hash = tokenHash(token);
    const key = hash.toString('base64');
    const hit = this.#cache.get(key);
    const now = this.#now();
    if (hit !== undefined && hit.until > now) return hit.caller;
    let caller: Caller | undefined;
    const app = await verifyAppCredential(this.#pool, token);
    if (app !== undefined) {
      caller = { kind: 'app', ...app, who: `app:${app.app}`, via: 'app-credential' };
    } else {
      const role = await verifyRoleToken(this.#pool, hash);
      if (role !== undefined) {
        const label = roleTokenLabel(role.role, role.name);
        caller = { kind: 'role', ...role, who: label, via: label };
      }
    }
    if (caller === undefined) {
      this.#cache.delete(key);
      return undefined;
    }
    if (this.#cache.size >= this.#maxCached) {
      const oldest = this.#cache.keys().next().value;
      if (oldest !== undefined) this.#cache.delete(oldest);
    }
    this.#cache.set(key, { caller, until: now + this.#cacheMs });
    return caller;
  }

  /** Drops every cached verification (after a revocation, rotation or change of grants). */
  forget(): void {
    this.#cache.clear();
  }
}
