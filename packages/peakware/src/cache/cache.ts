/**
 * A multi-level cache: L1 in the process (W-TinyLFU, `local-cache.ts`) → L2 shared
 * (Redis, `redis-tier.ts`) → L3 the caller's loader (the database). One request's life:
 *
 *   1. L1: a fresh entry answers at once; a stale one within `staleWhileRevalidateMs` answers
 *      too and starts one background refresh.
 *   2. L2 (skipped while its breaker is open): payload and version stamp in one round trip.
 *   3. The loader, once per key in the process (single-flight), optionally once across
 *      processes (a short Redis lock, `lockMs`); bounded by `loadTimeoutMs` and the call's
 *      deadline. If it fails, a value still within `graceMs` is served instead.
 *   4. The loaded value is written to L2 only if the key's version did not move meanwhile,
 *      and to L1 only if no invalidation arrived meanwhile: a late load never resurrects.
 *
 * `undefined` from a loader means "no such item" and is cached for `negativeTtlMs`.
 * Invalidation is published once and drops the key from every instance's L1. Stress
 * traffic (`peak-stress` in the call context) reads and writes `shadow:` keys only.
 * Values in L1 are shared objects: treat what the cache returns as read-only.
 */
import type { Redis } from 'ioredis';
import { currentContext, remainingTime } from '../core/context.js';
import { ErrorCodes, errorMessage, InvalidArgumentError, PeakError } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { coarseNow } from '../guard/coarse-clock.js';
import type { MetricFamily } from '../telemetry/prometheus-format.js';
import { cacheFamilies } from './cache-metrics.js';
import { HotKeys, type HotKeysOptions } from './hot-keys.js';
import { LocalCache } from './local-cache.js';
import { RedisTier } from './redis-tier.js';
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
  /** L2: a Redis URL or an ioredis client; absent, the cache is L1 only (one process). */
  redis?: string | Redis;
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
}

/** Per-call options of {@link Cache.getOrLoad} and {@link Cache.set}. */
export interface CacheWriteOptions {
  /** Fresh time for this value, ms; default the cache's `ttlMs`. */
  ttlMs?: number;
  /** Tags for {@link Cache.invalidateTag}. */
  tags?: readonly string[];
}

/** Counters since the cache was created. */
export interface CacheStats {
  l1Hits: number;
  l2Hits: number;
  misses: number;
  loads: number;
  loadErrors: number;
  staleServed: number;
  graceServed: number;
  negativeHits: number;
  l2Errors: number;
  /** `invalidate` and `invalidateTag` calls published (or applied locally without Redis). */
  invalidationsSent: number;
  invalidationsReceived: number;
  oversized: number;
  breakerOpen: boolean;
  l1: { entries: number; bytes: number; evictions: number; rejections: number };
}

interface Entry {
  value: unknown;
  negative: boolean;
  freshUntil: number;
  staleUntil: number;
  graceUntil: number;
  version: number;
  tags: readonly string[];
  /** Serialized size, counted against L1's maxBytes. */
  bytes: number;
}

// Fast pre-check (any UTF-16 surrogate unit), then the exact one (a surrogate not in a pair).
const ANY_SURROGATE = /[\uD800-\uDFFF]/;
const LONE_SURROGATE = /\p{Cs}/u;
const NAME = /^[a-z0-9._-]{1,64}$/;
const MAX_KEY_LENGTH = 1024;
const JSON_SERIALIZER = {
  encode: (v: unknown) => JSON.stringify(v),
  decode: (t: string) => JSON.parse(t) as unknown,
};

/** `freshUntil|staleUntil|graceUntil|negative|payload`: parsed without a JSON pass over the header. */
function encodeEnvelope(e: Entry, payload: string): string {
  return `${e.freshUntil}|${e.staleUntil}|${e.graceUntil}|${e.negative ? 1 : 0}|${payload}`;
}

function decodeEnvelope(text: string):
  | {
      freshUntil: number;
      staleUntil: number;
      graceUntil: number;
      negative: boolean;
      payload: string;
    }
  | undefined {
  const a = text.indexOf('|');
  const b = text.indexOf('|', a + 1);
  const c = text.indexOf('|', b + 1);
  const d = text.indexOf('|', c + 1);
  if (a < 0 || b < 0 || c < 0 || d < 0) return undefined;
  const freshUntil = Number(text.slice(0, a));
  const staleUntil = Number(text.slice(a + 1, b));
  const graceUntil = Number(text.slice(b + 1, c));
  if (!Number.isFinite(freshUntil) || !Number.isFinite(staleUntil) || !Number.isFinite(graceUntil))
    return undefined;
  return {
    freshUntil,
    staleUntil,
    graceUntil,
    negative: text[c + 1] === '1',
    payload: text.slice(d + 1),
  };
}

/** A multi-level cache; see the file header for a request's path. */
export class Cache {
  readonly name: string;
  readonly #l1: LocalCache<Entry>;
  readonly #remote: RemoteTier | undefined;
  readonly #ttlMs: number;
  readonly #jitter: number;
  readonly #swrMs: number;
  readonly #graceMs: number;
  readonly #negativeTtlMs: number;
  readonly #maxValueBytes: number;
  readonly #loadTimeoutMs: number;
  readonly #lockMs: number;
  readonly #breakerFailures: number;
  readonly #breakerOpenMs: number;
  readonly #serializer: { encode(value: unknown): string; decode(text: string): unknown };
  readonly #now: () => number;
  readonly #log: Logger;
  readonly #hot: HotKeys | undefined;
  readonly #onInvalidation: ((key: string, version: number) => void) | undefined;
  #settings: Required<Pick<CacheSettings, 'l1Enabled' | 'freezeWrites'>> & { l1TtlMs?: number };
  readonly #inflight = new Map<string, Promise<Entry>>();
  // Invalidations seen while loads were in flight: key → sequence number of the invalidation.
  readonly #tombstones = new Map<string, number>();
  #seq = 0;
  readonly #localTags = new Map<string, Set<string>>();
  #failures = 0;
  #openUntil = 0;
  #closed = false;
  readonly #stats = {
    l1Hits: 0,
    l2Hits: 0,
    misses: 0,
    loads: 0,
    loadErrors: 0,
    staleServed: 0,
    graceServed: 0,
    negativeHits: 0,
    l2Errors: 0,
    invalidationsSent: 0,
    invalidationsReceived: 0,
    oversized: 0,
  };
  readonly #subscribed: Promise<void>;

  constructor(options: CacheOptions) {
    if (!NAME.test(options.name ?? '')) {
      throw new InvalidArgumentError(
        `cache name ${JSON.stringify(options.name)} is invalid: use 1-64 of a-z 0-9 . _ -`,
        { details: { input: 'name' } },
      );
    }
    this.name = options.name;
    this.#now = options.now ?? coarseNow;
    this.#l1 = new LocalCache<Entry>({ ...options.l1, now: this.#now });
    this.#ttlMs = positive('ttlMs', options.ttlMs ?? 60_000);
    this.#jitter = Math.min(0.5, Math.max(0, options.jitter ?? 0.1));
    this.#swrMs = nonNegative('staleWhileRevalidateMs', options.staleWhileRevalidateMs ?? 0);
    this.#graceMs = nonNegative('graceMs', options.graceMs ?? 0);
    this.#negativeTtlMs = nonNegative('negativeTtlMs', options.negativeTtlMs ?? 5000);
    this.#maxValueBytes = positive('maxValueBytes', options.maxValueBytes ?? 1024 * 1024);
    this.#loadTimeoutMs = positive('loadTimeoutMs', options.loadTimeoutMs ?? 5000);
    this.#lockMs = nonNegative('lockMs', options.lockMs ?? 0);
    this.#breakerFailures = positive('breaker.failures', options.breaker?.failures ?? 5);
    this.#breakerOpenMs = positive('breaker.openMs', options.breaker?.openMs ?? 1000);
    this.#serializer = options.serializer ?? JSON_SERIALIZER;
    this.#log = options.logger ?? silentLogger();
    this.#onInvalidation = options.onInvalidation;
    this.#settings = { l1Enabled: true, freezeWrites: false };
    this.configure(options.settings ?? {});
    this.#remote =
      options.remote ??
      (options.redis === undefined
        ? undefined
        : new RedisTier({
            name: options.name,
            redis: options.redis,
            commandTimeoutMs: options.redisTimeoutMs ?? 50,
          }));
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
                this.#l1.clear();
              },
            )
            .catch((err) => {
              this.#log.warn(
                { cache: this.name, err: errorMessage(err) },
                'cache: subscribe failed',
              );
            });
    this.#hot =
      options.hotKeys === undefined || !(this.#remote instanceof RedisTier)
        ? undefined
        : new HotKeys({
            ...options.hotKeys,
            name: options.name,
            redis: this.#remote.client,
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
    const wasEnabled = this.#settings.l1Enabled;
    const l1TtlMs = settings.l1TtlMs === undefined ? this.#settings.l1TtlMs : settings.l1TtlMs;
    this.#settings = {
      l1Enabled: settings.l1Enabled ?? this.#settings.l1Enabled,
      freezeWrites: settings.freezeWrites ?? this.#settings.freezeWrites,
      ...(l1TtlMs == null ? {} : { l1TtlMs }),
    };
    // Copies kept while L1 was off could have missed nothing (invalidations still apply), but
    // a switch back on starts clean so the new TTL holds for every entry.
    if (wasEnabled !== this.#settings.l1Enabled) this.#l1.clear();
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
    const local = this.#useL1(k) ? this.#l1.get(k, now) : undefined;
    if (local !== undefined && now < local.staleUntil) {
      this.#stats.l1Hits++;
      return local.negative ? undefined : (local.value as V);
    }
    const remote = await this.#readRemote(k);
    if (remote !== undefined && now < remote.staleUntil) {
      this.#stats.l2Hits++;
      this.#keepLocal(k, remote, this.#seq);
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
    const local = this.#useL1(k) ? this.#l1.get(k, now) : undefined;
    if (local !== undefined) {
      if (now < local.freshUntil) {
        this.#stats.l1Hits++;
        if (local.negative) this.#stats.negativeHits++;
        return local.negative ? undefined : (local.value as V);
      }
      if (now < local.staleUntil) {
        this.#stats.staleServed++;
        this.#refresh(k, loader, options, local).catch(() => undefined);
        return local.negative ? undefined : (local.value as V);
      }
    }
    const entry = await this.#refresh(k, loader, options, local);
    return entry.negative ? undefined : (entry.value as V);
  }

  /** Stores a value in every tier and drops older copies from every instance's L1. */
  async set(key: string, value: unknown, options: CacheWriteOptions = {}): Promise<void> {
    this.#assertWritable('set', key);
    const k = this.#key(key);
    const tags = this.#tags(options.tags);
    const payload = this.#serializer.encode(value);
    if (payload.length > this.#maxValueBytes) {
      throw new PeakError(
        ErrorCodes.CACHE_VALUE_TOO_LARGE,
        `cache ${this.name}: the value for key ${JSON.stringify(key)} is ${payload.length} bytes serialized, over maxValueBytes ${this.#maxValueBytes}; store less or raise the limit`,
        { details: { key, bytes: payload.length, limit: this.#maxValueBytes } },
      );
    }
    const entry = this.#entry(value, false, options.ttlMs, tags);
    entry.bytes = Math.max(1, payload.length);
    this.#invalidateLocal(k);
    if (this.#remote !== undefined) {
      entry.version = await this.#remote.write(
        k,
        encodeEnvelope(entry, payload),
        this.#remoteTtl(entry),
        tags,
      );
    }
    this.#keepLocal(k, entry, this.#seq);
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
    this.#invalidateLocal(k);
    if (this.#remote !== undefined)
      await this.#remoteOrThrow('invalidate', () => this.#remote!.invalidate([k]));
    this.#stats.invalidationsSent++;
  }

  /** Drops every key written with `tag`, in every tier and instance; how many (L2's count when there is one). */
  async invalidateTag(tag: string): Promise<number> {
    this.#assertWritable('invalidateTag', tag);
    const t = this.#key(tag);
    const local = this.#localTags.get(t);
    let n = 0;
    if (local !== undefined) {
      for (const k of local) {
        this.#invalidateLocal(k);
        n++;
      }
      this.#localTags.delete(t);
    }
    if (this.#remote !== undefined)
      n = await this.#remoteOrThrow('invalidateTag', () => this.#remote!.invalidateTag(t));
    this.#stats.invalidationsSent++;
    return n;
  }

  /** Counters since the cache was created. */
  stats(): CacheStats {
    const l1 = this.#l1.stats();
    return {
      ...this.#stats,
      breakerOpen: this.#now() < this.#openUntil,
      l1: {
        entries: l1.entries,
        bytes: l1.bytes,
        evictions: l1.evictions,
        rejections: l1.rejections,
      },
    };
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

  // --- internals ------------------------------------------------------------------------

  #key(key: string): string {
    if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
      throw new InvalidArgumentError(
        `cache ${this.name}: key must be a string of 1-${MAX_KEY_LENGTH} characters (got ${typeof key === 'string' ? `${key.length}` : typeof key})`,
        { details: { input: 'key' } },
      );
    }
    // A lone surrogate would be sent to Redis as U+FFFD, so two different keys would meet.
    if (ANY_SURROGATE.test(key) && LONE_SURROGATE.test(key)) {
      throw new InvalidArgumentError(
        `cache ${this.name}: key ${JSON.stringify(key)} holds a lone UTF-16 surrogate; use well-formed text`,
        { details: { input: 'key' } },
      );
    }
    const k = currentContext()?.stress === true ? `shadow:${key}` : key;
    this.#hot?.record(k);
    return k;
  }

  #tags(tags: readonly string[] | undefined): string[] {
    return (tags ?? []).map((t) => {
      const k = currentContext()?.stress === true ? `shadow:${t}` : t;
      if (k.length === 0 || k.length > MAX_KEY_LENGTH || LONE_SURROGATE.test(k)) {
        throw new InvalidArgumentError(`cache ${this.name}: tag ${JSON.stringify(t)} is invalid`, {
          details: { input: 'tags' },
        });
      }
      return k;
    });
  }

  #useL1(k: string): boolean {
    return this.#settings.l1Enabled || (this.#hot?.isHot(k) ?? false);
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

  #ttl(ms: number): number {
    return this.#jitter === 0 ? ms : ms * (1 - this.#jitter + 2 * this.#jitter * Math.random());
  }

  #entry(
    value: unknown,
    negative: boolean,
    ttlMs: number | undefined,
    tags: readonly string[],
  ): Entry {
    const now = this.#now();
    const fresh = now + this.#ttl(negative ? this.#negativeTtlMs : (ttlMs ?? this.#ttlMs));
    return {
      value,
      negative,
      freshUntil: fresh,
      staleUntil: fresh + this.#swrMs,
      graceUntil: fresh + this.#graceMs,
      version: 0,
      tags,
      bytes: 1,
    };
  }

  #remoteTtl(e: Entry): number {
    return Math.max(e.staleUntil, e.graceUntil) - this.#now();
  }

  #breakerClosed(): boolean {
    return this.#remote !== undefined && this.#now() >= this.#openUntil;
  }

  #remoteFailed(err: unknown): void {
    this.#stats.l2Errors++;
    if (++this.#failures >= this.#breakerFailures && this.#now() >= this.#openUntil) {
      this.#openUntil = this.#now() + this.#breakerOpenMs;
      this.#log.warn(
        { cache: this.name, err: errorMessage(err), openMs: this.#breakerOpenMs },
        'cache: Redis failing; serving from L1 and the loader',
      );
    }
  }

  async #remoteOrThrow<R>(what: string, op: () => Promise<R>): Promise<R> {
    try {
      const r = await op();
      this.#failures = 0;
      return r;
    } catch (err) {
      this.#remoteFailed(err);
      throw new PeakError(
        ErrorCodes.CACHE_UNAVAILABLE,
        `cache ${this.name}: ${what} could not reach Redis (${errorMessage(err)}); other instances keep their copies until their L1 TTL: retry`,
        { cause: err },
      );
    }
  }

  /** L2's entry (undefined on a miss, a bad payload or a failing Redis), with its version. */
  async #readRemote(k: string): Promise<Entry | undefined> {
    const r = await this.#readRemoteRaw(k);
    return r?.entry;
  }

  async #readRemoteRaw(
    k: string,
  ): Promise<{ entry: Entry | undefined; version: number } | undefined> {
    if (!this.#breakerClosed()) return undefined;
    let read: { payload: string | null; version: number };
    try {
      read = await this.#remote!.read(k);
      this.#failures = 0;
    } catch (err) {
      this.#remoteFailed(err);
      return undefined;
    }
    if (read.payload === null) return { entry: undefined, version: read.version };
    const env = decodeEnvelope(read.payload);
    if (env === undefined) return { entry: undefined, version: read.version };
    let value: unknown;
    try {
      value = env.negative ? undefined : this.#serializer.decode(env.payload);
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

  /** Keeps an entry in L1 unless an invalidation for the key came after `seqAtStart`. */
  #keepLocal(k: string, e: Entry, seqAtStart: number): void {
    if (!this.#useL1(k)) return;
    const t = this.#tombstones.get(k);
    if (t !== undefined && t > seqAtStart) return;
    const l1Ttl = this.#settings.l1TtlMs;
    let until = Math.max(e.staleUntil, e.graceUntil);
    if (l1Ttl !== undefined) {
      const cap = this.#now() + l1Ttl;
      if (cap < until) {
        until = cap;
        e = {
          ...e,
          freshUntil: Math.min(e.freshUntil, cap),
          staleUntil: Math.min(e.staleUntil, cap),
        };
      }
    }
    this.#l1.set(k, e, until, e.bytes);
    for (const tag of e.tags) {
      const set = this.#localTags.get(tag);
      if (set === undefined) this.#localTags.set(tag, new Set([k]));
      else set.add(k);
    }
  }

  #invalidateLocal(k: string): void {
    this.#l1.delete(k);
    if (this.#inflight.size > 0) this.#tombstones.set(k, ++this.#seq);
  }

  #onInvalidate(k: string, version: number): void {
    this.#stats.invalidationsReceived++;
    const local = this.#l1.peek(k);
    // The writer's own copy carries the version its write produced: keep it. Anything else
    // (older, or from a load that raced) goes.
    if (local === undefined || local.version !== version) this.#invalidateLocal(k);
    this.#onInvalidation?.(k, version);
  }

  /** One load per key at a time: L2, then (if needed) the loader; see the file header. */
  #refresh<V>(
    k: string,
    loader: () => Promise<V | undefined>,
    options: CacheWriteOptions,
    local: Entry | undefined,
  ): Promise<Entry> {
    const running = this.#inflight.get(k);
    if (running !== undefined) return running;
    const seqAtStart = this.#seq;
    const p = this.#load(k, loader, options, local, seqAtStart).finally(() => {
      this.#inflight.delete(k);
      if (this.#inflight.size === 0) this.#tombstones.clear();
    });
    this.#inflight.set(k, p);
    return p;
  }

  async #load<V>(
    k: string,
    loader: () => Promise<V | undefined>,
    options: CacheWriteOptions,
    local: Entry | undefined,
    seqAtStart: number,
  ): Promise<Entry> {
    let fallback = local;
    let version = 0;
    const remote = await this.#readRemoteRaw(k);
    if (remote !== undefined) {
      version = remote.version;
      const e = remote.entry;
      const now = this.#now();
      if (e !== undefined && now < e.freshUntil) {
        this.#stats.l2Hits++;
        if (e.negative) this.#stats.negativeHits++;
        this.#keepLocal(k, e, seqAtStart);
        return e;
      }
      if (e !== undefined && (fallback === undefined || e.graceUntil > fallback.graceUntil))
        fallback = e;
    }
    this.#stats.misses++;
    let locked = false;
    if (this.#lockMs > 0 && this.#breakerClosed()) {
      const waited = await this.#awaitPeerLoad(k, seqAtStart);
      if (waited.entry !== undefined) return waited.entry;
      locked = waited.locked;
      version = waited.version ?? version;
    }
    let value: V | undefined;
    try {
      this.#stats.loads++;
      value = await this.#runLoader(k, loader);
    } catch (err) {
      if (locked) this.#remote!.unlock(k).catch(() => undefined);
      this.#stats.loadErrors++;
      if (fallback !== undefined && this.#now() < fallback.graceUntil) {
        this.#stats.graceServed++;
        return fallback;
      }
      throw err;
    }
    const tags = this.#tags(options.tags);
    const entry = this.#entry(value, value === undefined, options.ttlMs, tags);
    let payload = '';
    if (value !== undefined) {
      payload = this.#serializer.encode(value);
      if (payload.length > this.#maxValueBytes) {
        this.#stats.oversized++;
        this.#log.warn(
          { cache: this.name, key: k, bytes: payload.length, limit: this.#maxValueBytes },
          'cache: loaded value over maxValueBytes; served uncached',
        );
        if (locked) this.#remote!.unlock(k).catch(() => undefined);
        return entry;
      }
    }
    if (this.#breakerClosed()) {
      try {
        const stored = await this.#remote!.writeIfVersion(
          k,
          version,
          encodeEnvelope(entry, payload),
          this.#remoteTtl(entry),
          tags,
        );
        this.#failures = 0;
        // An invalidation moved the version while we loaded: the value may be old; give it
        // to this caller but keep it nowhere.
        if (!stored) return entry;
        entry.version = version;
      } catch (err) {
        this.#remoteFailed(err);
      } finally {
        if (locked) this.#remote!.unlock(k).catch(() => undefined);
      }
    }
    entry.bytes = Math.max(1, payload.length);
    this.#keepLocal(k, entry, seqAtStart);
    return entry;
  }

  /**
   * Cross-process single-flight: take the key's lock, or wait (polling L2 every 20 ms) for the
   * holder's value until the lock's time is up, then load anyway.
   */
  async #awaitPeerLoad(
    k: string,
    seqAtStart: number,
  ): Promise<{ entry?: Entry; locked: boolean; version?: number }> {
    try {
      if (await this.#remote!.tryLock(k, this.#lockMs)) return { locked: true };
    } catch (err) {
      this.#remoteFailed(err);
      return { locked: false };
    }
    const end = this.#now() + Math.min(this.#lockMs, remainingTime());
    let version: number | undefined;
    while (this.#now() < end) {
      await new Promise((r) => setTimeout(r, 20));
      const r = await this.#readRemoteRaw(k);
      if (r === undefined) break;
      version = r.version;
      if (r.entry !== undefined && this.#now() < r.entry.freshUntil) {
        this.#stats.l2Hits++;
        this.#keepLocal(k, r.entry, seqAtStart);
        return { entry: r.entry, locked: false };
      }
    }
    return { locked: false, ...(version === undefined ? {} : { version }) };
  }

  async #runLoader<V>(k: string, loader: () => Promise<V | undefined>): Promise<V | undefined> {
    const ms = Math.min(this.#loadTimeoutMs, remainingTime());
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        Promise.resolve().then(loader),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new PeakError(
                  ErrorCodes.CACHE_LOAD_FAILED,
                  `cache ${this.name}: the loader for key ${JSON.stringify(k)} did not answer in ${Math.round(ms)} ms (loadTimeoutMs or the call's deadline)`,
                  { details: { key: k, timeoutMs: ms } },
                ),
              ),
            Math.max(0, ms),
          );
        }),
      ]);
    } catch (err) {
      if (err instanceof PeakError && err.code === ErrorCodes.CACHE_LOAD_FAILED) throw err;
      throw new PeakError(
        ErrorCodes.CACHE_LOAD_FAILED,
        `cache ${this.name}: the loader for key ${JSON.stringify(k)} failed: ${errorMessage(err)}`,
        { cause: err, details: { key: k } },
      );
    } finally {
      clearTimeout(timer);
    }
  }
}

function positive(name: string, v: number): number {
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
