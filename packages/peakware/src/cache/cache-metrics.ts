/**
 * A cache's figures as Prometheus families (the text format is telemetry's), labelled by
 * cache name, for a service's `/metrics` beside its other families:
 *
 *   serveMetrics({ render: () => formatPrometheus([...processMetrics(),
 *     ...serviceMetrics.families(), ...products.families()]) })
 */
import type { MetricFamily } from '../telemetry/prometheus-format.js';
import type { CacheStats } from './cache-stats.js';

/** Hot keys named one sample each, at most this many (a label per key). */
const MAX_HOT_KEY_SAMPLES = 20;

/** The families of one cache from its stats and its hot keys. */
export function cacheFamilies(
  name: string,
  s: CacheStats,
  hotKeys: readonly string[],
): MetricFamily[] {
  const labels = { cache: name };
  const one = (metric: string, help: string, type: 'counter' | 'gauge', value: number) => ({
    name: metric,
    help,
    type,
    samples: [{ labels, value }],
  });
  return [
    {
      name: 'peak_cache_hits_total',
      help: 'Reads answered by a cache tier (l1: in the process, l2: Redis).',
      type: 'counter',
      samples: [
        { labels: { ...labels, tier: 'l1' }, value: s.l1Hits },
        { labels: { ...labels, tier: 'l2' }, value: s.l2Hits },
      ],
    },
    one('peak_cache_misses_total', 'Reads no tier could answer fresh.', 'counter', s.misses),
    one(
      'peak_cache_loads_total',
      'Loader calls (reads that went to the database).',
      'counter',
      s.loads,
    ),
    one(
      'peak_cache_load_errors_total',
      'Loader calls that failed or timed out.',
      'counter',
      s.loadErrors,
    ),
    one(
      'peak_cache_stale_served_total',
      'Stale values served while one refresh ran (stale-while-revalidate).',
      'counter',
      s.staleServed,
    ),
    one(
      'peak_cache_grace_served_total',
      'Old values served because the loader failed (grace).',
      'counter',
      s.graceServed,
    ),
    one(
      'peak_cache_negative_hits_total',
      'Reads answered by a cached "not found".',
      'counter',
      s.negativeHits,
    ),
    one(
      'peak_cache_invalidations_sent_total',
      'Invalidations (by key or tag) this instance published.',
      'counter',
      s.invalidationsSent,
    ),
    one(
      'peak_cache_invalidations_received_total',
      'Invalidations the feed delivered to this instance (its own included).',
      'counter',
      s.invalidationsReceived,
    ),
    one(
      'peak_cache_l2_errors_total',
      'Redis commands that failed or timed out.',
      'counter',
      s.l2Errors,
    ),
    one(
      'peak_cache_oversized_total',
      'Loaded values over maxValueBytes, served uncached.',
      'counter',
      s.oversized,
    ),
    one(
      'peak_cache_breaker_open',
      '1 while the Redis breaker is open (reads skip L2), else 0.',
      'gauge',
      s.breakerOpen ? 1 : 0,
    ),
    one('peak_cache_l1_entries', 'Entries in L1 now.', 'gauge', s.l1.entries),
    one('peak_cache_l1_bytes', 'Bytes of serialized values in L1 now.', 'gauge', s.l1.bytes),
    one('peak_cache_l1_evictions_total', 'Entries L1 evicted for room.', 'counter', s.l1.evictions),
    one(
      'peak_cache_l1_rejections_total',
      'New entries L1 refused: less popular than the entry they would evict (W-TinyLFU).',
      'counter',
      s.l1.rejections,
    ),
    one('peak_cache_hot_keys', 'Keys this instance holds as hot now.', 'gauge', hotKeys.length),
    {
      name: 'peak_cache_hot_key',
      help: `1 for each key held as hot now (the first ${MAX_HOT_KEY_SAMPLES}).`,
      type: 'gauge',
      samples: hotKeys
        .slice(0, MAX_HOT_KEY_SAMPLES)
        .map((key) => ({ labels: { ...labels, key }, value: 1 })),
    },
  ];
}
