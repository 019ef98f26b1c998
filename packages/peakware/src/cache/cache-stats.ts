/**
 * What a cache counts: hits per tier, misses, loads and their failures, stale and grace
 * values served, invalidations sent and received, L2 errors and the breaker, L1's size.
 * Every part of the cache bumps one shared set of counters; `cache-metrics.ts` turns a
 * snapshot into Prometheus families.
 */
import type { LocalCacheStats } from './local-cache.js';

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

/** The counters the cache's parts bump (every {@link CacheStats} field but the derived ones). */
export type CacheCounters = Omit<CacheStats, 'breakerOpen' | 'l1'>;

/** Counters at zero. */
export function newCacheCounters(): CacheCounters {
  return {
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
}

/** A snapshot: the counters, whether L2's breaker is open, and L1's size. */
export function cacheStats(
  counters: CacheCounters,
  breakerOpen: boolean,
  l1: LocalCacheStats,
): CacheStats {
  return {
    ...counters,
    breakerOpen,
    l1: {
      entries: l1.entries,
      bytes: l1.bytes,
      evictions: l1.evictions,
      rejections: l1.rejections,
    },
  };
}
