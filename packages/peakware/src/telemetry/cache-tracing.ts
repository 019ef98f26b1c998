/**
 * Cache spans from the cache's operation seam (`Cache` / `RedisStockEngine` option
 * `collector`): one client span per Redis command (`redis get shop-products`, `redis
 * stock-deduct flash`), peer `redis:<host>:<port>` so the topology draws the service →
 * Redis edge, and one internal span per load a miss ran (`cache load shop-products`), each a
 * child of the span that asked. L1 hits are not reported by the cache.
 */
import type { CallContext } from '../core/context.js';
import type { AttributeValue } from './span-types.js';
import type { FinishedSpanInit, Tracer } from './tracer.js';

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
      // Built field by field (this runs once per Redis command); name and attributes only
      // for a span the tracer keeps.
      const done: FinishedSpanInit = {
        kind: redis ? 'client' : 'internal',
        startUs: (performance.timeOrigin + performance.now()) * 1000 - durationUs,
        durationUs,
        attributes: () => spanAttributes(event, redis),
      };
      if (event.context !== undefined) done.parent = event.context;
      if (redis && event.peer !== undefined) done.peerService = `redis:${event.peer}`;
      if (event.error !== undefined) done.error = event.error;
      tracer.recordSpan(
        () => (redis ? `redis ${event.operation} ${event.cache}` : `cache load ${event.cache}`),
        done,
      );
    },
  };
}

function spanAttributes(event: CacheSpanEvent, redis: boolean): Record<string, AttributeValue> {
  const a: Record<string, AttributeValue> = {};
  if (redis) {
    a['db.system'] = 'redis';
    a['db.operation'] = event.operation;
    if (event.peer !== undefined) a['server.address'] = event.peer;
  }
  a['cache.name'] = event.cache;
  a['cache.key'] = event.key.slice(0, KEY_CHARS);
  if (event.outcome !== undefined) a['cache.outcome'] = event.outcome;
  return a;
}
