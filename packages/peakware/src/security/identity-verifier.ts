/**
 * `IdentityVerifier`: how an RPC provider checks its callers' signed identities, offline.
 * It fetches the control plane's public keys (`GET /api/v1/identity/keys`, a JWKS) at
 * start, keeps them, refreshes them every `refreshMs` and whenever a token names a key it
 * does not know (at most once per `unknownKeyRetryMs`, so a flood of forged key ids cannot
 * hammer the control plane), and with `snapshotFile` keeps them on disk too. When the
 * control plane is down it goes on with the keys it has: identities keep verifying until
 * they expire, and a provider restarted during the outage reads its snapshot.
 *
 * Each verified token is cached until it expires (bounded), so a verification costs one
 * Ed25519 check per token, not per call; RPC checks once per connection anyway. It is the
 * `CallerVerifier` of `RpcServerOptions.identity`.
 */

import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import {
  ControlPlaneClient,
  type ControlPlaneOptions,
  serversOf,
} from '../core/control-plane-client.js';
import { errorMessage } from '../core/errors.js';
import {
  checkIdentity,
  decodeIdentity,
  IDENTITY_AUDIENCE,
  type IdentityJwks,
  identityError,
  jwkKey,
} from '../core/identity-token.js';
import { type Logger, silentLogger } from '../core/logger.js';
import type { CallerVerifier, VerifiedCaller } from '../rpc/caller-identity.js';

/** Options of {@link IdentityVerifier}; the defaults are {@link IDENTITY_VERIFIER_DEFAULTS}. */
export interface IdentityVerifierOptions extends ControlPlaneOptions {
  /** Keys to start with (a JWKS), besides those fetched: for tests, or a provider set up offline. */
  keys?: IdentityJwks;
  /** Where to keep the fetched keys, read at start when the control plane does not answer. */
  snapshotFile?: string;
  /** How often the keys are fetched again, ms. */
  refreshMs?: number;
  /** Shortest time between fetches caused by an unknown key id, ms. */
  unknownKeyRetryMs?: number;
  /** Clock difference allowed when checking expiry, ms. */
  clockSkewMs?: number;
  /** Most verified tokens cached. */
  maxCached?: number;
  /** The audience identities must name. */
  audience?: string;
  /** The clock, epoch ms (tests pass their own). */
  now?: () => number;
  logger?: Logger;
}

/** The defaults of {@link IdentityVerifierOptions}, in one place. */
export const IDENTITY_VERIFIER_DEFAULTS = {
  refreshMs: 300_000,
  unknownKeyRetryMs: 30_000,
  clockSkewMs: 5_000,
  maxCached: 10_000,
  audience: IDENTITY_AUDIENCE,
} as const;

const KEYS_ROUTE = '/api/v1/identity/keys';

/** Verifies identities with the control plane's public keys (see the header). */
export class IdentityVerifier implements CallerVerifier {
  readonly #http: ControlPlaneClient | undefined;
  readonly #o: Required<
    Pick<
      IdentityVerifierOptions,
      'refreshMs' | 'unknownKeyRetryMs' | 'clockSkewMs' | 'maxCached' | 'audience' | 'now'
    >
  >;
  readonly #snapshotFile: string | undefined;
  readonly #logger: Logger;
  readonly #keys = new Map<string, KeyObject>();
  readonly #verified = new Map<string, VerifiedCaller>();
  #timer: NodeJS.Timeout | undefined;
  #lastFetch = 0;
  #fetching: Promise<void> | undefined;

  constructor(options: IdentityVerifierOptions = {}) {
    const d = IDENTITY_VERIFIER_DEFAULTS;
    const hasServers = options.servers !== undefined || options.server !== undefined;
    this.#http = hasServers
      ? new ControlPlaneClient({
          servers: serversOf(options, 'IdentityVerifier'),
          ...(options.token === undefined ? {} : { token: options.token }),
          timeoutMs: 5000,
        })
      : undefined;
    this.#o = {
      refreshMs: options.refreshMs ?? d.refreshMs,
      unknownKeyRetryMs: options.unknownKeyRetryMs ?? d.unknownKeyRetryMs,
      clockSkewMs: options.clockSkewMs ?? d.clockSkewMs,
      maxCached: options.maxCached ?? d.maxCached,
      audience: options.audience ?? d.audience,
      now: options.now ?? Date.now,
    };
    this.#snapshotFile = options.snapshotFile;
    this.#logger = options.logger ?? silentLogger();
    if (options.keys !== undefined) this.#addKeys(options.keys);
  }

  /**
   * Fetches the keys (or, when no control plane answers, reads the snapshot) and refreshes
   * them every `refreshMs` from then on. Resolves either way; verification fails with
   * `unknown-key` until some key is known.
   */
  async start(): Promise<void> {
    try {
      await this.refresh();
    } catch (err) {
      this.#logger.warn(
        { err: errorMessage(err) },
        'identity keys: the control plane did not answer; using the snapshot',
      );
      this.#readSnapshot();
    }
    if (this.#http !== undefined && this.#timer === undefined) {
      this.#timer = setInterval(() => {
        this.refresh().catch((err) =>
          this.#logger.warn(
            { err: errorMessage(err) },
            'identity keys: refresh failed; keeping the keys in hand',
          ),
        );
      }, this.#o.refreshMs);
      this.#timer.unref();
    }
  }

  /** Fetches the published keys now (they add to those known; none is dropped on a failure). */
  refresh(): Promise<void> {
    if (this.#http === undefined) return Promise.resolve();
    this.#fetching ??= (async () => {
      this.#lastFetch = this.#o.now();
      try {
        const jwks = await this.#http!.get<IdentityJwks>(KEYS_ROUTE, { retry: false });
        this.#keys.clear();
        this.#addKeys(jwks);
        if (this.#snapshotFile !== undefined) {
          await writeFile(this.#snapshotFile, JSON.stringify(jwks)).catch((err) =>
            this.#logger.warn({ err: errorMessage(err) }, 'identity keys: snapshot not written'),
          );
        }
      } finally {
        this.#fetching = undefined;
      }
    })();
    return this.#fetching;
  }

  /** The key ids known now. */
  get keyIds(): string[] {
    return [...this.#keys.keys()];
  }

  /**
   * The caller `token` proves. Synchronous when the token was verified before or its key is
   * known; a promise when the key must be fetched first. Throws (or rejects with)
   * PEAK_UNAUTHENTICATED naming why: `malformed`, `unknown-key`, `forged`, `expired`,
   * `audience`.
   */
  verify(token: string): VerifiedCaller | Promise<VerifiedCaller> {
    const now = this.#o.now();
    const hit = this.#verified.get(token);
    if (hit !== undefined) {
      if (hit.expiresAt + this.#o.clockSkewMs > now) return hit;
      this.#verified.delete(token);
    }
    const decoded = decodeIdentity(token);
    if (this.#keys.has(decoded.kid)) return this.#check(token, decoded);
    const canFetch = this.#http !== undefined && now - this.#lastFetch >= this.#o.unknownKeyRetryMs;
    const unknown = () =>
      identityError(
        'unknown-key',
        `the caller identity is signed with key ${decoded.kid}, which the control plane does not publish (known: ${this.keyIds.join(', ') || 'none'})`,
      );
    if (!canFetch) throw unknown();
    return this.refresh().then(
      () => {
        if (!this.#keys.has(decoded.kid)) throw unknown();
        return this.#check(token, decoded);
      },
      () => {
        throw unknown();
      },
    );
  }

  /** Stops refreshing. */
  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #check(token: string, decoded: ReturnType<typeof decodeIdentity>): VerifiedCaller {
    const claims = checkIdentity(decoded, this.#keys.get(decoded.kid)!, {
      audience: this.#o.audience,
      nowMs: this.#o.now(),
      skewMs: this.#o.clockSkewMs,
    });
    const caller: VerifiedCaller = { app: claims.sub, expiresAt: claims.exp * 1000 };
    if (this.#verified.size >= this.#o.maxCached) {
      const oldest = this.#verified.keys().next().value;
      if (oldest !== undefined) this.#verified.delete(oldest);
    }
    this.#verified.set(token, caller);
    return caller;
  }

  #addKeys(jwks: IdentityJwks): void {
    for (const jwk of jwks.keys ?? []) {
      try {
        this.#keys.set(jwk.kid, jwkKey(jwk));
      } catch (err) {
        this.#logger.warn({ err: errorMessage(err), kid: jwk.kid }, 'identity keys: key skipped');
      }
    }
  }

  #readSnapshot(): void {
    if (this.#snapshotFile === undefined) return;
    try {
      this.#addKeys(JSON.parse(readFileSync(this.#snapshotFile, 'utf8')) as IdentityJwks);
    } catch {
      // No snapshot yet: verification fails with unknown-key until the keys arrive.
    }
  }
}
