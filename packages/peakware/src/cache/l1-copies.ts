/**
 * Which copies a cache keeps in its process (L1, `local-cache.ts`), and how invalidations
 * reach them. L1 serves a key while `l1Enabled` (a run-time switch) or while the key is hot;
 * `l1TtlMs` caps every copy's life. A load records the invalidation sequence number when it
 * starts; an invalidation that arrives while loads run leaves a tombstone, and a load's
 * result is kept only if no invalidation of its key came after it started: a late load
 * never resurrects the value an invalidation just removed. Tags map to the keys written
 * with them, so `invalidateTag` drops this instance's copies without asking L2.
 */
import type { CacheEntry } from './cache-entry.js';
import { LocalCache, type LocalCacheStats } from './local-cache.js';

/** What {@link L1Copies} takes: L1's bounds, the clock, and the hot-key test. */
export interface L1CopiesOptions {
  l1?: { maxEntries?: number; maxBytes?: number };
  now: () => number;
  /** Whether a stored key is hot now (hot keys use L1 even while it is switched off). */
  isHot: (k: string) => boolean;
}

/** A cache's L1 copies, tombstones and local tag index. */
export class L1Copies {
  readonly #l1: LocalCache<CacheEntry>;
  readonly #now: () => number;
  readonly #isHot: (k: string) => boolean;
  #enabled = true;
  #ttlMs: number | undefined;
  // Invalidations seen while loads were in flight: key → sequence number of the invalidation.
  readonly #tombstones = new Map<string, number>();
  #seq = 0;
  #loads = 0;
  readonly #tags = new Map<string, Set<string>>();

  constructor(options: L1CopiesOptions) {
    this.#now = options.now;
    this.#l1 = new LocalCache<CacheEntry>({ ...options.l1, now: options.now });
    this.#isHot = options.isHot;
  }

  /** Sets the switches (`ttlMs` undefined: no cap); a change of `enabled` starts L1 empty. */
  configure(enabled: boolean, ttlMs: number | undefined): void {
    const wasEnabled = this.#enabled;
    this.#enabled = enabled;
    this.#ttlMs = ttlMs;
    // Copies kept while L1 was off could have missed nothing (invalidations still apply), but
    // a switch back on starts clean so the new TTL holds for every entry.
    if (wasEnabled !== enabled) this.#l1.clear();
  }

  /** The invalidation sequence number now: a copy kept with it survives no later invalidation. */
  get seq(): number {
    return this.#seq;
  }

  /** Whether L1 serves `k` now (switched on, or the key is hot). */
  uses(k: string): boolean {
    return this.#enabled || this.#isHot(k);
  }

  /** The copy of `k`, if L1 serves it and holds one that has not expired. */
  get(k: string, now: number): CacheEntry | undefined {
    return this.uses(k) ? this.#l1.get(k, now) : undefined;
  }

  /** The copy of `k` without touching recency or expiry. */
  peek(k: string): CacheEntry | undefined {
    return this.#l1.peek(k);
  }

  /** Keeps an entry in L1 unless an invalidation for the key came after `seqAtStart`. */
  keep(k: string, e: CacheEntry, seqAtStart: number): void {
    if (!this.uses(k)) return;
    const t = this.#tombstones.get(k);
    if (t !== undefined && t > seqAtStart) return;
    const l1Ttl = this.#ttlMs;
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
      const set = this.#tags.get(tag);
      if (set === undefined) this.#tags.set(tag, new Set([k]));
      else set.add(k);
    }
  }

  /** Drops the copy of `k`; while loads run, leaves a tombstone so none of them keeps it. */
  drop(k: string): void {
    this.#l1.delete(k);
    if (this.#loads > 0) this.#tombstones.set(k, ++this.#seq);
  }

  /** Drops the copies of every key written with stored tag `t`; how many keys it named. */
  dropTag(t: string): number {
    const keys = this.#tags.get(t);
    if (keys === undefined) return 0;
    let n = 0;
    for (const k of keys) {
      this.drop(k);
      n++;
    }
    this.#tags.delete(t);
    return n;
  }

  /** A load starts; returns the sequence number its result is checked against. */
  beginLoad(): number {
    this.#loads++;
    return this.#seq;
  }

  /** A load ended; with none left running the tombstones go. */
  endLoad(): void {
    if (--this.#loads === 0) this.#tombstones.clear();
  }

  /** Drops every copy (the invalidation feed may have missed messages). */
  clear(): void {
    this.#l1.clear();
  }

  /** L1's own figures. */
  stats(): LocalCacheStats {
    return this.#l1.stats();
  }
}
