/** A cache's options and run-time switches, with every default written once. */
import { InvalidArgumentError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { CacheCollector } from './cache-events.js';
import type { HotKeysOptions } from './hot-keys.js';
import type { RedisClient } from './redis-connection.js';
import type { RemoteTier } from './remote-tier.js';

/** The switches the config center may flip at run time (the seed's promotion window). */
export interface CacheSettings {
  /** Serve from L1; default true. Off, every read goes to L2 (hot keys still use L1). */
  l1Enabled?: boolean;
  /** How long an L1 copy lives at most, ms; default the entry's own TTL. `null` lifts the cap. */
  l1TtlMs?: number | null;
  /** Refuse set / delete / invalidate (data changes closed for the peak); default false. */
  freezeWrites?: boolean;
}

/** Options of {@link Cache}; every default is written here. */
export interface CacheOptions {
  /** The cache's name: the Redis key namespace and invalidation channel. `[a-z0-9._-]+`. */
  name: string;
  /**
   * L2: a Redis URL (`redis://`), a Redis Cluster URL (`redis+cluster://host:port,host:port`)
   * or an ioredis client or cluster client; absent, the cache is L1 only (one process).
   */
  redis?: string | RedisClient;
  /** Or any other shared tier (instead of `redis`). */
  remote?: RemoteTier;
  /** How long a value is fresh, ms; default 60 000. */
  ttlMs?: number;
  /** TTLs are spread by ± this fraction so keys loaded together do not expire together; default 0.1. */
  jitter?: number;
  /** After it goes stale a value is still served this long while one refresh runs; default 0. */
  staleWhileRevalidateMs?: number;
  /** After it goes stale a value is kept this long to serve when the loader fails; default 0. */
  graceMs?: number;
  /** How long "not found" (a loader's `undefined`) is cached, ms; default 5 000. */
  negativeTtlMs?: number;
  /** Largest serialized value stored, bytes (UTF-16 units); default 1 MiB. */
  maxValueBytes?: number;
  /** L1 bounds: entries (default 10 000) and bytes (default 64 MiB). */
  l1?: { maxEntries?: number; maxBytes?: number };
  /** Initial run-time switches; see {@link CacheSettings}. */
  settings?: CacheSettings;
  /** A loader slower than this fails (grace value served if any); default 5 000 ms. */
  loadTimeoutMs?: number;
  /** Per-command Redis timeout when the cache opens the connection; default 50 ms. */
  redisTimeoutMs?: number;
  /** Cross-process single-flight: hold a Redis lock this long per load; default 0 (off). */
  lockMs?: number;
  /** L2 breaker: this many failures in a row open it (default 5) for `openMs` (default 1 000). */
  breaker?: { failures?: number; openMs?: number };
  /** Hot-key detection (needs Redis); off by default. */
  hotKeys?: Omit<HotKeysOptions, 'name' | 'redis' | 'now' | 'onChange'>;
  /** Value encoding for L2 and size accounting; default JSON. */
  serializer?: { encode(value: unknown): string; decode(text: string): unknown };
  /** The clock, epoch ms; default the guard's coarse clock (Date.now from a ticker thread, at most ~1 ms old). */
  now?: () => number;
  /** Called for each invalidation the feed delivers, after L1 handled it (metrics, benchmarks). */
  onInvalidation?: (key: string, version: number) => void;
  /** Where warnings go; default silent. */
  logger?: Logger;
  /**
   * Receives every Redis command of this cache and every load on a miss (L1 hits are not
   * reported), e.g. `cacheSpanCollector(tracer)` from `peakware/telemetry` to see them as
   * spans of the caller's trace; default none.
   */
  collector?: CacheCollector;
}

/** Per-call options of {@link Cache.getOrLoad} and {@link Cache.set}. */
export interface CacheWriteOptions {
  /** Fresh time for this value, ms; default the cache's `ttlMs`. */
  ttlMs?: number;
  /** Tags for {@link Cache.invalidateTag}. */
  tags?: readonly string[];
}

/** How values are encoded for L2 and sized for L1 (`decode` may throw on text it did not write). */
export type CacheSerializer = NonNullable<CacheOptions['serializer']>;

/** The default serializer: JSON. */
export const JSON_SERIALIZER: CacheSerializer = {
  encode: (v: unknown) => JSON.stringify(v),
  decode: (t: string) => JSON.parse(t) as unknown,
};

/** The numbers of {@link CacheOptions}, defaults filled in and checked. */
export interface ResolvedCacheOptions {
  ttlMs: number;
  jitter: number;
  staleWhileRevalidateMs: number;
  graceMs: number;
  negativeTtlMs: number;
  maxValueBytes: number;
  loadTimeoutMs: number;
  lockMs: number;
  breakerFailures: number;
  breakerOpenMs: number;
}

const NAME = /^[a-z0-9._-]{1,64}$/;

/** Throws PEAK_INVALID_ARGUMENT unless `name` is 1-64 of a-z 0-9 . _ -. */
export function checkCacheName(name: string | undefined): void {
  if (!NAME.test(name ?? '')) {
    throw new InvalidArgumentError(
      `cache name ${JSON.stringify(name)} is invalid: use 1-64 of a-z 0-9 . _ -`,
      { details: { input: 'name' } },
    );
  }
}

/** Fills in the defaults of the numeric options and checks them, naming the first bad one. */
export function resolveCacheOptions(options: CacheOptions): ResolvedCacheOptions {
  return {
    ttlMs: positive('ttlMs', options.ttlMs ?? 60_000),
    jitter: Math.min(0.5, Math.max(0, options.jitter ?? 0.1)),
    staleWhileRevalidateMs: nonNegative(
      'staleWhileRevalidateMs',
      options.staleWhileRevalidateMs ?? 0,
    ),
    graceMs: nonNegative('graceMs', options.graceMs ?? 0),
    negativeTtlMs: nonNegative('negativeTtlMs', options.negativeTtlMs ?? 5000),
    maxValueBytes: positive('maxValueBytes', options.maxValueBytes ?? 1024 * 1024),
    loadTimeoutMs: positive('loadTimeoutMs', options.loadTimeoutMs ?? 5000),
    lockMs: nonNegative('lockMs', options.lockMs ?? 0),
    breakerFailures: positive('breaker.failures', options.breaker?.failures ?? 5),
    breakerOpenMs: positive('breaker.openMs', options.breaker?.openMs ?? 1000),
  };
}

/** `v` if it is a positive number; throws PEAK_INVALID_ARGUMENT naming the option otherwise. */
export function positive(name: string, v: number): number {
  if (!Number.isFinite(v) || v <= 0) {
    throw new InvalidArgumentError(`cache option ${name} must be a positive number (got ${v})`, {
      details: { input: name },
    });
  }
  return v;
}

function nonNegative(name: string, v: number): number {
  if (!Number.isFinite(v) || v < 0) {
    throw new InvalidArgumentError(`cache option ${name} must be 0 or more (got ${v})`, {
      details: { input: name },
    });
  }
  return v;
}
