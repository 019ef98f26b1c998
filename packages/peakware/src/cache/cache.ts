/**
 * A multi-level cache: L1 in the process (W-TinyLFU, `local-cache.ts`) → L2 shared
 * (Redis, `redis-tier.ts`) → L3 the caller's loader (the database). One request's life:
 *
 *   1. L1: a fresh entry answers at once; a stale one within `staleWhileRevalidateMs` answers
 *      too and starts one background refresh.
 *   2. L2 (skipped while its breaker is open, `l2-access.ts`): payload and version stamp in
 *      one round trip.
 *   3. The loader, once per key in the process (single-flight), optionally once across
 *      processes (a short Redis lock, `lockMs`); bounded by `loadTimeoutMs` and the call's
 *      deadline. If it fails, a value still within `graceMs` is served instead
 *      (`single-flight-loader.ts`).
 *   4. The loaded value is written to L2 only if the key's version did not move meanwhile,
 *      and to L1 only if no invalidation arrived meanwhile: a late load never resurrects
 *      (`l1-copies.ts`).
 *
 * `undefined` from a loader means "no such item" and is cached for `negativeTtlMs`.
 * Invalidation is published once and drops the key from every instance's L1. Stress
 * traffic (`peak-stress` in the call context) reads and writes `shadow:` keys only
 * (`cache-keys.ts`). Options and their defaults are in `cache-options.ts`, the counters in
 * `cache-stats.ts`. Values in L1 are shared objects: treat what the cache returns as
 * read-only.
 */
import { ErrorCodes, errorMessage, PeakError } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { coarseNow } from '../guard/coarse-clock.js';
import type { MetricFamily } from '../telemetry/prometheus-format.js';
import { EntryLifetimes, encodeEnvelope } from './cache-entry.js';
import {
  type CacheCollector,
  RedisReporter,
  ReportedTier,
  reported,
  safeCollector,
} from './cache-events.js';
import { storedKey, storedTags } from './cache-keys.js';
import { cacheFamilies } from './cache-metrics.js';
import {
  type CacheOptions,
  type CacheSerializer,
  type CacheSettings,
  type CacheWriteOptions,
  checkCacheName,
  JSON_SERIALIZER,
  positive,
  type ResolvedCacheOptions,
  resolveCacheOptions,
} from './cache-options.js';
import {
  type CacheCounters,
  type CacheStats,
  cacheStats,
  newCacheCounters,
} from './cache-stats.js';
import { HotKeys } from './hot-keys.js';
import { L1Copies } from './l1-copies.js';
import { L2Access } from './l2-access.js';
import { redisPeerOf } from './redis-connection.js';
import { RedisTier } from './redis-tier.js';
import type { RemoteTier } from './remote-tier.js';
import { SingleFlightLoader } from './single-flight-loader.js';

/** The Redis server a cache's L2 is on (`host:port`), when it is Redis. */
function peerOf(options: CacheOptions): string | undefined {
  return options.remote !== undefined || options.redis === undefined
    ? undefined
    : redisPeerOf(options.redis);
}

/** A multi-level cache; see the file header for a request's path. */
export class Cache {
  readonly name: string;
  readonly #opts: ResolvedCacheOptions;
  readonly #copies: L1Copies;
  readonly #remote: RemoteTier | undefined;
  readonly #l2: L2Access | undefined;
  readonly #loader: SingleFlightLoader;
  readonly #lifetimes: EntryLifetimes;
  readonly #serializer: CacheSerializer;
  readonly #now: () => number;
  readonly #log: Logger;
  readonly #hot: HotKeys | undefined;
  readonly #onInvalidation: ((key: string, version: number) => void) | undefined;
  readonly #collector: CacheCollector | undefined;
  #settings: Required<Pick<CacheSettings, 'l1Enabled' | 'freezeWrites'>> & { l1TtlMs?: number };
  #closed = false;
  readonly #stats: CacheCounters = newCacheCounters();
  readonly #subscribed: Promise<void>;

  constructor(options: CacheOptions) {
    checkCacheName(options.name);
    this.name = options.name;
    this.#now = options.now ?? coarseNow;
    this.#copies = new L1Copies({
      ...(options.l1 === undefined ? {} : { l1: options.l1 }),
      now: this.#now,
      isHot: (k) => this.#hot?.isHot(k) ?? false,
    });
    this.#opts = resolveCacheOptions(options);
    this.#lifetimes = new EntryLifetimes(this.#opts, this.#now);
    this.#serializer = options.serializer ?? JSON_SERIALIZER;
    this.#log = options.logger ?? silentLogger();
    this.#onInvalidation = options.onInvalidation;
    this.#settings = { l1Enabled: true, freezeWrites: false };
    this.configure(options.settings ?? {});
    this.#collector =
      options.collector === undefined ? undefined : safeCollector(options.collector);
    const remote =
      options.remote ??
      (options.redis === undefined
        ? undefined
        : new RedisTier({
            name: options.name,
            redis: options.redis,
            commandTimeoutMs: options.redisTimeoutMs ?? 50,
          }));
    this.#remote =
      remote === undefined || this.#collector === undefined
        ? remote
        : new ReportedTier(remote, new RedisReporter(this.#collector, this.name, peerOf(options)));
    this.#l2 =
      this.#remote === undefined
        ? undefined
        : new L2Access(this.#remote, {
            cache: this.name,
            breakerFailures: this.#opts.breakerFailures,
            breakerOpenMs: this.#opts.breakerOpenMs,
            serializer: this.#serializer,
            counters: this.#stats,
            now: this.#now,
            logger: this.#log,
          });
    this.#loader = new SingleFlightLoader({
      cache: this.name,
      copies: this.#copies,
      l2: this.#l2,
      lifetimes: this.#lifetimes,
      serializer: this.#serializer,
      counters: this.#stats,
      maxValueBytes: this.#opts.maxValueBytes,
      loadTimeoutMs: this.#opts.loadTimeoutMs,
      lockMs: this.#opts.lockMs,
      now: this.#now,
      logger: this.#log,
    });
    this.#subscribed =
      this.#remote === undefined
        ? Promise.resolve()
        : this.#remote
            .subscribe(
              (key, version) => this.#onInvalidate(key, version),
              () => {
                this.#log.warn(
                  { cache: this.name },
                  'cache: invalidation feed reconnected; L1 dropped',
                );
                this.#copies.clear();
              },
            )
            .catch((err) => {
              this.#log.warn(
                { cache: this.name, err: errorMessage(err) },
                'cache: subscribe failed',
              );
            });
    this.#hot =
      options.hotKeys === undefined || !(remote instanceof RedisTier)
        ? undefined
        : new HotKeys({
            ...options.hotKeys,
            name: options.name,
            redis: remote.client,
            now: this.#now,
          });
  }

  /** Resolves once the invalidation feed is subscribed (tests and startup checks). */
  ready(): Promise<void> {
    return this.#subscribed;
  }

  /** Applies run-time switches (from the config center); unset fields keep their value. */
  configure(settings: CacheSettings): void {
    if (settings.l1TtlMs != null) positive('settings.l1TtlMs', settings.l1TtlMs);
    const l1TtlMs = settings.l1TtlMs === undefined ? this.#settings.l1TtlMs : settings.l1TtlMs;
    this.#settings = {
      l1Enabled: settings.l1Enabled ?? this.#settings.l1Enabled,
      freezeWrites: settings.freezeWrites ?? this.#settings.freezeWrites,
      ...(l1TtlMs == null ? {} : { l1TtlMs }),
    };
    this.#copies.configure(this.#settings.l1Enabled, this.#settings.l1TtlMs);
  }

  /** The switches in force. */
  settings(): CacheSettings {
    return { ...this.#settings };
  }

  /** The keys the hot-key detector currently calls hot (empty when detection is off). */
  hotKeys(): string[] {
    return this.#hot?.current() ?? [];
  }

  /** The value if cached (L1, then L2) and not past its stale-while-revalidate window. */
  async get<V>(key: string): Promise<V | undefined> {
    const k = this.#key(key);
    const now = this.#now();
    const local = this.#copies.get(k, now);
    if (local !== undefined && now < local.staleUntil) {
      this.#stats.l1Hits++;
      return local.negative ? undefined : (local.value as V);
    }
    const remote = (await this.#l2?.read(k))?.entry;
    if (remote !== undefined && now < remote.staleUntil) {
      this.#stats.l2Hits++;
      this.#copies.keep(k, remote, this.#copies.seq);
      return remote.negative ? undefined : (remote.value as V);
    }
    this.#stats.misses++;
    return undefined;
  }

  /**
   * The cached value, or the loader's result (cached). `undefined` from the loader means "not
   * found" and is cached for `negativeTtlMs`. Fails with `PEAK_CACHE_LOAD_FAILED` when the
   * loader throws or times out and no grace value is left.
   */
  async getOrLoad<V>(
    key: string,
    loader: () => Promise<V | undefined>,
    options: CacheWriteOptions = {},
  ): Promise<V | undefined> {
    const k = this.#key(key);
    const now = this.#now();
    const local = this.#copies.get(k, now);
    if (local !== undefined) {
      if (now < local.freshUntil) {
        this.#stats.l1Hits++;
        if (local.negative) this.#stats.negativeHits++;
        return local.negative ? undefined : (local.value as V);
      }
      if (now < local.staleUntil) {
        this.#stats.staleServed++;
        this.#loader
          .refresh(k, this.#reportedLoader(k, loader), options, local)
          .catch(() => undefined);
        return local.negative ? undefined : (local.value as V);
      }
    }
    const entry = await this.#loader.refresh(k, this.#reportedLoader(k, loader), options, local);
    return entry.negative ? undefined : (entry.value as V);
  }

  /**
   * Stores a value in every tier and drops older copies from every instance's L1. Rejects
   * with `PEAK_CACHE_UNAVAILABLE` when Redis cannot be told (as `invalidate`).
   */
  async set(key: string, value: unknown, options: CacheWriteOptions = {}): Promise<void> {
    this.#assertWritable('set', key);
    const k = this.#key(key);
    const tags = storedTags(this.name, options.tags);
    const payload = this.#serializer.encode(value);
    if (payload.length > this.#opts.maxValueBytes) {
      throw new PeakError(
        ErrorCodes.CACHE_VALUE_TOO_LARGE,
        `cache ${this.name}: the value for key ${JSON.stringify(key)} is ${payload.length} bytes serialized, over maxValueBytes ${this.#opts.maxValueBytes}; store less or raise the limit`,
        { details: { key, bytes: payload.length, limit: this.#opts.maxValueBytes } },
      );
    }
    const entry = this.#lifetimes.create(value, false, options.ttlMs, tags);
    entry.bytes = Math.max(1, payload.length);
    this.#copies.drop(k);
    const l2 = this.#l2;
    if (l2 !== undefined) {
      // Like invalidate: a Redis that cannot be told is PEAK_CACHE_UNAVAILABLE (and counts
      // for the breaker), not the client's own error.
      entry.version = await l2.orThrow('set', () =>
        l2.tier.write(k, encodeEnvelope(entry, payload), this.#lifetimes.remoteTtl(entry), tags),
      );
    }
    this.#copies.keep(k, entry, this.#copies.seq);
  }

  /** Same as {@link invalidate}. */
  delete(key: string): Promise<void> {
    return this.invalidate(key);
  }

  /**
   * Drops the key from L2 and from every instance's L1 (published once; p99 well under
   * 100 ms on one network). Rejects with `PEAK_CACHE_UNAVAILABLE` when Redis cannot be told:
   * other instances then keep their copy until its L1 TTL, so retry (or send the
   * invalidation as a reliable message).
   */
  async invalidate(key: string): Promise<void> {
    this.#assertWritable('invalidate', key);
    const k = this.#key(key);
    this.#copies.drop(k);
    if (this.#l2 !== undefined)
      await this.#l2.orThrow('invalidate', () => this.#l2!.tier.invalidate([k]));
    this.#stats.invalidationsSent++;
  }

  /** Drops every key written with `tag`, in every tier and instance; how many (L2's count when there is one). */
  async invalidateTag(tag: string): Promise<number> {
    this.#assertWritable('invalidateTag', tag);
    const t = this.#key(tag);
    let n = this.#copies.dropTag(t);
    if (this.#l2 !== undefined)
      n = await this.#l2.orThrow('invalidateTag', () => this.#l2!.tier.invalidateTag(t));
    this.#stats.invalidationsSent++;
    return n;
  }

  /** Counters since the cache was created. */
  stats(): CacheStats {
    return cacheStats(this.#stats, this.#l2?.open ?? false, this.#copies.stats());
  }

  /**
   * The cache's figures as Prometheus families labelled `cache="<name>"` (hits per tier,
   * loads, stale and grace served, invalidations, breaker, L1 entries and bytes, hot keys),
   * for a service's `/metrics`; see `cache-metrics.ts`.
   */
  families(): MetricFamily[] {
    return cacheFamilies(this.name, this.stats(), this.hotKeys());
  }

  /** Stops hot-key reporting and closes the connections the cache opened. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#hot?.close();
    await this.#remote?.close();
  }

  /** The loader, reported as a `load` when a collector is set. */
  #reportedLoader<V>(
    k: string,
    loader: () => Promise<V | undefined>,
  ): () => Promise<V | undefined> {
    const collector = this.#collector;
    if (collector === undefined) return loader;
    return () =>
      reported(
        collector,
        { cache: this.name, operation: 'load', tier: 'loader', key: k },
        loader,
        (v) => (v === undefined ? 'not-found' : 'loaded'),
      );
  }

  /** The stored key (shadow prefix for stress traffic), counted by the hot-key detector. */
  #key(key: string): string {
    const k = storedKey(this.name, key);
    this.#hot?.record(k);
    return k;
  }

  #assertWritable(what: string, key: string): void {
    if (this.#settings.freezeWrites) {
      throw new PeakError(
        ErrorCodes.CACHE_WRITES_FROZEN,
        `cache ${this.name}: ${what}(${JSON.stringify(key)}) refused: writes are frozen for the promotion window (settings.freezeWrites); unfreeze it in the config center`,
        { details: { key } },
      );
    }
  }

  #onInvalidate(k: string, version: number): void {
    this.#stats.invalidationsReceived++;
    const local = this.#copies.peek(k);
    // The writer's own copy carries the version its write produced: keep it. Anything else
    // (older, or from a load that raced) goes.
    if (local === undefined || local.version !== version) this.#copies.drop(k);
    this.#onInvalidation?.(k, version);
  }
}
