/**
 * Signed app identities (core/identity-token.ts): the control plane issues an app that
 * proves itself with its credential a short-lived identity (10 minutes unless asked for
 * less), signed with the newest key of `peak.identity_keys`, and publishes the public keys
 * (`GET /api/v1/identity/keys`) that RPC providers verify identities with, offline.
 *
 * Keys rotate on demand (`peak app rotate-signing-key`): the new key signs from then on;
 * the old one stops signing and stays published for as long as an identity it signed can
 * live, so no identity in use stops verifying. Every node signs (the private keys are in
 * the database, like everything else a node shares); each reloads the keys every 10 s, so
 * a rotation made on one node reaches the others within that.
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import {
  IDENTITY_AUDIENCE,
  type IdentityJwks,
  type IdentitySigningKey,
  newIdentityKeyPair,
  privateKeyOf,
  publicJwk,
  signIdentity,
} from '../core/identity-token.js';

/** The longest identity the control plane issues, ms (and the default). */
export const MAX_IDENTITY_TTL_MS = 600_000;

/** How long the keys read from the database are used before reading them again, ms. */
const RELOAD_MS = 10_000;

const KEY_LOCK = '7354696303';

interface KeyRow {
  kid: string;
  public_pem: string;
  private_pem: string;
  retired_at: Date | null;
}

/** The keys as loaded from the database. */
interface LoadedKeys {
  at: number;
  signing: IdentitySigningKey;
  jwks: IdentityJwks;
}

/** An issued identity. */
export interface IssuedIdentity {
  token: string;
  app: string;
  kid: string;
  /** Epoch ms. */
  expiresAt: number;
}

/** Issues and publishes identities for one control-plane node. */
export class IdentityIssuer {
  readonly #pool: pg.Pool;
  readonly #now: () => number;
  #loaded: LoadedKeys | undefined;

  constructor(pool: pg.Pool, options: { now?: () => number } = {}) {
    this.#pool = pool;
    this.#now = options.now ?? Date.now;
  }

  /** Makes sure a signing key exists (nodes starting together agree on one). */
  async ensureKey(): Promise<void> {
    await this.#locked(async (client) => {
      const { rowCount } = await client.query(
        'SELECT 1 FROM peak.identity_keys WHERE retired_at IS NULL LIMIT 1',
      );
      if ((rowCount ?? 0) === 0) await this.#insertKey(client);
    });
  }

  /** Adds a new signing key and retires the others (still published while they may verify). */
  async rotate(): Promise<{ kid: string }> {
    const kid = await this.#locked(async (client) => {
      await client.query(
        'UPDATE peak.identity_keys SET retired_at = now() WHERE retired_at IS NULL',
      );
      return this.#insertKey(client);
    });
    this.#loaded = undefined;
    return { kid };
  }

  /** The published public keys (the signing key and those retired within an identity's life). */
  async jwks(): Promise<IdentityJwks> {
    return (await this.#keys()).jwks;
  }

  /** A signed identity of `app`, valid for `ttlMs` (at most {@link MAX_IDENTITY_TTL_MS}). */
  async issue(app: string, ttlMs = MAX_IDENTITY_TTL_MS): Promise<IssuedIdentity> {
    const { signing } = await this.#keys();
    const now = this.#now();
    const iat = Math.floor(now / 1000);
    const exp = Math.floor((now + Math.min(ttlMs, MAX_IDENTITY_TTL_MS)) / 1000);
    const token = signIdentity(signing, {
      iss: 'peak',
      sub: app,
      aud: IDENTITY_AUDIENCE,
      iat,
      exp,
      jti: randomBytes(9).toString('base64url'),
    });
    return { token, app, kid: signing.kid, expiresAt: exp * 1000 };
  }

  async #keys(): Promise<LoadedKeys> {
    const now = this.#now();
    if (this.#loaded !== undefined && now - this.#loaded.at < RELOAD_MS) return this.#loaded;
    const { rows } = await this.#pool.query<KeyRow>(
      `SELECT kid, public_pem, private_pem, retired_at FROM peak.identity_keys
        WHERE retired_at IS NULL OR retired_at > now() - make_interval(secs => $1)
        ORDER BY created_at DESC`,
      [(MAX_IDENTITY_TTL_MS + RELOAD_MS) / 1000 + 60],
    );
    const newest = rows.find((r) => r.retired_at === null) ?? rows[0];
    if (newest === undefined) {
      await this.ensureKey();
      return this.#keys();
    }
    this.#loaded = {
      at: now,
      signing: { kid: newest.kid, privateKey: privateKeyOf(newest.private_pem) },
      jwks: { keys: rows.map((r) => publicJwk(r.kid, r.public_pem)) },
    };
    return this.#loaded;
  }

  async #insertKey(client: pg.PoolClient): Promise<string> {
    const pair = newIdentityKeyPair();
    await client.query(
      'INSERT INTO peak.identity_keys (kid, public_pem, private_pem) VALUES ($1, $2, $3)',
      [pair.kid, pair.publicPem, pair.privatePem],
    );
    return pair.kid;
  }

  async #locked<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [KEY_LOCK]);
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
}
