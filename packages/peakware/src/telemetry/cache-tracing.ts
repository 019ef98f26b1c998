/**
 * Cache spans from the cache's operation seam (`Cache` / `RedisStockEngine` option
 * `collector`): one client span per Redis command (`redis get shop-products`, `redis
 * stock-deduct flash`), peer `redis:<host>:<port>` so the topology draws the service →
 * Redis edge, and one internal span per load a miss ran (`cache load shop-products`), each a
 * child of the span that asked. L1 hits are not reported by the cache.
 */
import type { CallContext } from '../core/context.js';
import type { Tracer } from './tracer.js';

/**
 * The fields of cache's `CacheOperationEvent` this module reads (declared here, structurally,
 * so telemetry does not depend on cache: cache depends on telemetry, not the other way).
 */
export interface CacheSpanEvent {
  cache: string;
  operation: string;
  tier: 'redis' | 'loader';
  key: string;
  outcome?: string;
  peer?: string;
  durationMs: number;
  error?: string;
  context: CallContext | undefined;
}

/** The longest key kept in a span's `cache.key` attribute. */
const KEY_CHARS = 200;

/** A cache collector (cache's `CacheCollector`) that makes each operation a span. */
export function cacheSpanCollector(tracer: Tracer): { record(event: CacheSpanEvent): void } {
  return {
    record(event: CacheSpanEvent): void {
      const durationUs = event.durationMs * 1000;
      const redis = event.tier === 'redis';
      // Name and attributes are built only for a span the tracer keeps.
      tracer.recordSpan(
        () => (redis ? `redis ${event.operation} ${event.cache}` : `cache load ${event.cache}`),
        {
          kind: redis ? 'client' : 'internal',
          startUs: (performance.timeOrigin + performance.now()) * 1000 - durationUs,
          durationUs,
          ...(event.context === undefined ? {} : { parent: event.context }),
          ...(redis && event.peer !== undefined ? { peerService: `redis:${event.peer}` } : {}),
          ...(event.error === undefined ? {} : { error: event.error }),
          attributes: () => ({
            ...(redis ? { 'db.system': 'redis', 'db.operation': event.operation } : {}),
            ...(redis && event.peer !== undefined ? { 'server.address': event.peer } : {}),
            'cache.name': event.cache,
            'cache.key': event.key.slice(0, KEY_CHARS),
            ...(event.outcome === undefined ? {} : { 'cache.outcome': event.outcome }),
          }),
        },
      );
    },
  };
}
