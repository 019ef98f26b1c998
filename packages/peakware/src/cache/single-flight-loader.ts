/**
 * A miss's way to a value: once per key in the process (single-flight), L2 first, then the
 * caller's loader, optionally once across processes (a short Redis lock, `lockMs`: the
 * others poll L2 for the holder's value). The loader is bounded by `loadTimeoutMs` and the
 * call's deadline; if it fails, a value still within `graceMs` is served instead. The loaded
 * value goes to L2 only if the key's version did not move meanwhile (compare-and-set), and
 * to L1 only if no invalidation arrived meanwhile. A value over `maxValueBytes` is served
 * uncached.
 */
import { remainingTime } from '../core/context.js';
import { ErrorCodes, errorMessage, PeakError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { type CacheEntry, type EntryLifetimes, encodeEnvelope } from './cache-entry.js';
import { storedTags } from './cache-keys.js';
import type { CacheSerializer, CacheWriteOptions } from './cache-options.js';
import type { CacheCounters } from './cache-stats.js';
import type { L1Copies } from './l1-copies.js';
import type { L2Access } from './l2-access.js';

/** What a {@link SingleFlightLoader} works with: the cache's tiers, counters and limits. */
export interface SingleFlightLoaderOptions {
  /** The cache's name, for logs and messages. */
  cache: string;
  copies: L1Copies;
  /** L2; absent when the cache is L1 only. */
  l2: L2Access | undefined;
  lifetimes: EntryLifetimes;
  serializer: CacheSerializer;
  counters: CacheCounters;
  maxValueBytes: number;
  loadTimeoutMs: number;
  lockMs: number;
  now: () => number;
  logger: Logger;
}

/** One load per key at a time, shared by every caller that misses on it meanwhile. */
export class SingleFlightLoader {
  readonly #o: SingleFlightLoaderOptions;
  readonly #inflight = new Map<string, Promise<CacheEntry>>();

  constructor(options: SingleFlightLoaderOptions) {
    this.#o = options;
  }

  /**
   * The entry for stored key `k`: the running load's, or a new load's (L2, then the
   * loader). `local` is the expired or stale L1 copy, a grace fallback if the loader fails.
   */
  refresh<V>(
    k: string,
    loader: () => Promise<V | undefined>,
    options: CacheWriteOptions,
    local: CacheEntry | undefined,
  ): Promise<CacheEntry> {
    const running = this.#inflight.get(k);
    if (running !== undefined) return running;
    const copies = this.#o.copies;
    const seqAtStart = copies.beginLoad();
    const p = this.#load(k, loader, options, local, seqAtStart).finally(() => {
      this.#inflight.delete(k);
      copies.endLoad();
    });
    this.#inflight.set(k, p);
    return p;
  }

  async #load<V>(
    k: string,
    loader: () => Promise<V | undefined>,
    options: CacheWriteOptions,
    local: CacheEntry | undefined,
    seqAtStart: number,
  ): Promise<CacheEntry> {
    const { copies, l2, counters } = this.#o;
    let fallback = local;
    let version = 0;
    const remote = await l2?.read(k);
    if (remote !== undefined) {
      version = remote.version;
      const e = remote.entry;
      const now = this.#o.now();
      if (e !== undefined && now < e.freshUntil) {
        counters.l2Hits++;
        if (e.negative) counters.negativeHits++;
        copies.keep(k, e, seqAtStart);
        return e;
      }
      if (e !== undefined && (fallback === undefined || e.graceUntil > fallback.graceUntil))
        fallback = e;
    }
    counters.misses++;
    let locked = false;
    if (this.#o.lockMs > 0 && l2?.available()) {
      const waited = await this.#awaitPeerLoad(l2, k, seqAtStart);
      if (waited.entry !== undefined) return waited.entry;
      locked = waited.locked;
      version = waited.version ?? version;
    }
    let value: V | undefined;
    try {
      counters.loads++;
      value = await this.#runLoader(k, loader);
    } catch (err) {
      if (locked) l2!.tier.unlock(k).catch(() => undefined);
      counters.loadErrors++;
      if (fallback !== undefined && this.#o.now() < fallback.graceUntil) {
        counters.graceServed++;
        return fallback;
      }
      throw err;
    }
    const tags = storedTags(this.#o.cache, options.tags);
    const entry = this.#o.lifetimes.create(value, value === undefined, options.ttlMs, tags);
    let payload = '';
    if (value !== undefined) {
      payload = this.#o.serializer.encode(value);
      if (payload.length > this.#o.maxValueBytes) {
        counters.oversized++;
        this.#o.logger.warn(
          { cache: this.#o.cache, key: k, bytes: payload.length, limit: this.#o.maxValueBytes },
          'cache: loaded value over maxValueBytes; served uncached',
        );
        if (locked) l2!.tier.unlock(k).catch(() => undefined);
        return entry;
      }
    }
    if (l2?.available()) {
      try {
        const stored = await l2.tier.writeIfVersion(
          k,
          version,
          encodeEnvelope(entry, payload),
          this.#o.lifetimes.remoteTtl(entry),
          tags,
        );
        l2.succeeded();
        // An invalidation moved the version while we loaded: the value may be old; give it
        // to this caller but keep it nowhere.
        if (!stored) return entry;
        entry.version = version;
      } catch (err) {
        l2.failed(err);
      } finally {
        if (locked) l2.tier.unlock(k).catch(() => undefined);
      }
    }
    entry.bytes = Math.max(1, payload.length);
    copies.keep(k, entry, seqAtStart);
    return entry;
  }

  /**
   * Cross-process single-flight: take the key's lock, or wait (polling L2 every 20 ms) for the
   * holder's value until the lock's time is up, then load anyway.
   */
  async #awaitPeerLoad(
    l2: L2Access,
    k: string,
    seqAtStart: number,
  ): Promise<{ entry?: CacheEntry; locked: boolean; version?: number }> {
    const { now, lockMs } = this.#o;
    try {
      if (await l2.tier.tryLock(k, lockMs)) return { locked: true };
    } catch (err) {
      l2.failed(err);
      return { locked: false };
    }
    const end = now() + Math.min(lockMs, remainingTime());
    let version: number | undefined;
    while (now() < end) {
      await new Promise((r) => setTimeout(r, 20));
      const r = await l2.read(k);
      if (r === undefined) break;
      version = r.version;
      if (r.entry !== undefined && now() < r.entry.freshUntil) {
        this.#o.counters.l2Hits++;
        this.#o.copies.keep(k, r.entry, seqAtStart);
        return { entry: r.entry, locked: false };
      }
    }
    return { locked: false, ...(version === undefined ? {} : { version }) };
  }

  async #runLoader<V>(k: string, loader: () => Promise<V | undefined>): Promise<V | undefined> {
    const ms = Math.min(this.#o.loadTimeoutMs, remainingTime());
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
                  `cache ${this.#o.cache}: the loader for key ${JSON.stringify(k)} did not answer in ${Math.round(ms)} ms (loadTimeoutMs or the call's deadline)`,
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
        `cache ${this.#o.cache}: the loader for key ${JSON.stringify(k)} failed: ${errorMessage(err)}`,
        { cause: err, details: { key: k } },
      );
    } finally {
      clearTimeout(timer);
    }
  }
}
