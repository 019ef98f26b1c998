/**
 * L2 as the cache uses it: the shared tier (`RemoteTier`, Redis by default) behind a
 * breaker. `failures` errors in a row open it for `openMs`: while open, reads skip L2 (the
 * cache serves from L1 and the loader) so a failing Redis never holds a request. Reads come
 * back as entries with the key's version stamp; a bad payload reads as a miss.
 */
import { ErrorCodes, errorMessage, PeakError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { type CacheEntry, decodeEnvelope } from './cache-entry.js';
import type { CacheSerializer } from './cache-options.js';
import type { CacheCounters } from './cache-stats.js';
import type { RemoteTier } from './remote-tier.js';

/** What {@link L2Access} needs besides the tier. */
export interface L2AccessOptions {
  /** The cache's name, for logs and messages. */
  cache: string;
  /** Errors in a row that open the breaker. */
  breakerFailures: number;
  /** How long the breaker stays open, ms. */
  breakerOpenMs: number;
  serializer: CacheSerializer;
  counters: CacheCounters;
  now: () => number;
  logger: Logger;
}

/** A read of L2: the entry (undefined on a miss or a bad payload) and the key's version. */
export interface L2Read {
  entry: CacheEntry | undefined;
  version: number;
}

/** The shared tier behind a breaker. */
export class L2Access {
  /** The tier itself, for the writes and locks the cache makes while the breaker is closed. */
  readonly tier: RemoteTier;
  readonly #o: L2AccessOptions;
  #failures = 0;
  #openUntil = 0;

  constructor(tier: RemoteTier, options: L2AccessOptions) {
    this.tier = tier;
    this.#o = options;
  }

  /** True while the breaker is closed (L2 is tried). */
  available(): boolean {
    return this.#o.now() >= this.#openUntil;
  }

  /** True while the breaker is open. */
  get open(): boolean {
    return this.#o.now() < this.#openUntil;
  }

  /** An L2 command succeeded: the run of failures ends. */
  succeeded(): void {
    this.#failures = 0;
  }

  /** An L2 command failed: counted, and the breaker opens after enough in a row. */
  failed(err: unknown): void {
    this.#o.counters.l2Errors++;
    if (++this.#failures >= this.#o.breakerFailures && this.#o.now() >= this.#openUntil) {
      this.#openUntil = this.#o.now() + this.#o.breakerOpenMs;
      this.#o.logger.warn(
        { cache: this.#o.cache, err: errorMessage(err), openMs: this.#o.breakerOpenMs },
        'cache: Redis failing; serving from L1 and the loader',
      );
    }
  }

  /**
   * Runs a write or invalidation that must reach L2; its failure rejects with
   * PEAK_CACHE_UNAVAILABLE (other instances keep their copies until their L1 TTL: retry).
   */
  async orThrow<R>(what: string, op: () => Promise<R>): Promise<R> {
    try {
      const r = await op();
      this.#failures = 0;
      return r;
    } catch (err) {
      this.failed(err);
      throw new PeakError(
        ErrorCodes.CACHE_UNAVAILABLE,
        `cache ${this.#o.cache}: ${what} could not reach Redis (${errorMessage(err)}); other instances keep their copies until their L1 TTL: retry`,
        { cause: err },
      );
    }
  }

  /** L2's entry for `k` with its version; undefined while the breaker is open or when Redis fails. */
  async read(k: string): Promise<L2Read | undefined> {
    if (!this.available()) return undefined;
    let read: { payload: string | null; version: number };
    try {
      read = await this.tier.read(k);
      this.#failures = 0;
    } catch (err) {
      this.failed(err);
      return undefined;
    }
    if (read.payload === null) return { entry: undefined, version: read.version };
    const env = decodeEnvelope(read.payload);
    if (env === undefined) return { entry: undefined, version: read.version };
    let value: unknown;
    try {
      value = env.negative ? undefined : this.#o.serializer.decode(env.payload);
    } catch {
      return { entry: undefined, version: read.version };
    }
    return {
      entry: {
        value,
        negative: env.negative,
        freshUntil: env.freshUntil,
        staleUntil: env.staleUntil,
        graceUntil: env.graceUntil,
        version: read.version,
        tags: [],
        bytes: Math.max(1, env.payload.length),
      },
      version: read.version,
    };
  }
}
