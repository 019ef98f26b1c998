/**
 * The cache's operation seam, as the data layer's statement seam (`StatementCollector`):
 * every command a cache or a stock engine sends to Redis, and every load a cache runs on a
 * miss, is reported once it ends, with the caller's call context, so telemetry can make it
 * a span of the caller's trace (`cacheSpanCollector` in `peakware/telemetry`) and the
 * topology can draw the service → Redis edge. An L1 hit is not reported: it is a `Map`
 * lookup, and a span per hit would cost more than the hit.
 *
 * Nothing is timed or allocated for this when no collector is set.
 */
import { type CallContext, currentContext } from '../core/context.js';
import { errorMessage } from '../core/errors.js';
import type { RemoteRead, RemoteTier } from './remote-tier.js';

/** What ran: a Redis command of a cache or stock engine, or a cache's load on a miss. */
export type CacheOperation =
  | 'get'
  | 'set'
  | 'set-if-version'
  | 'invalidate'
  | 'invalidate-tag'
  | 'lock'
  | 'unlock'
  | 'load'
  | 'stock-load'
  | 'stock-deduct'
  | 'stock-release'
  | 'stock-read';

/** One finished cache operation. */
export interface CacheOperationEvent {
  /** The cache's (or stock engine's) name. */
  cache: string;
  operation: CacheOperation;
  /** Where it ran: `redis` (a command to the shared tier) or `loader` (the caller's load). */
  tier: 'redis' | 'loader';
  /** The key as stored (with the `shadow:` prefix for stress traffic), the tag, or the SKU. */
  key: string;
  /** The answer in a word, when there is one: `hit` / `miss` for reads, `sold-out`, … */
  outcome?: string;
  /** The Redis server (`host:port`), for a `redis` operation. */
  peer?: string;
  durationMs: number;
  /** The failure's message, when it failed. */
  error?: string;
  /** The caller's call context when the operation started (its span's parent). */
  context: CallContext | undefined;
}

/** Receives every cache operation (telemetry's `cacheSpanCollector` makes each a span). */
export interface CacheCollector {
  record(event: CacheOperationEvent): void;
}

/**
 * Runs `op` and reports it to `collector` (with the duration, the caller's context and the
 * outcome `outcome` derives from the answer); the answer or the failure passes through.
 * One `then`, no async function: this runs once per Redis command of a request.
 */
export function reported<R>(
  collector: CacheCollector,
  base: Omit<CacheOperationEvent, 'durationMs' | 'context' | 'outcome' | 'error'>,
  op: () => Promise<R>,
  outcome?: (r: R) => string | undefined,
): Promise<R> {
  const context = currentContext();
  const started = performance.now();
  let running: Promise<R>;
  try {
    running = op();
  } catch (err) {
    running = Promise.reject(err);
  }
  return running.then(
    (r) => {
      collector.record(eventOf(base, performance.now() - started, context, outcome?.(r)));
      return r;
    },
    (err: unknown) => {
      const event = eventOf(base, performance.now() - started, context, undefined);
      event.error = errorMessage(err);
      collector.record(event);
      throw err;
    },
  );
}

/** The event, built field by field (no spreads: once per Redis command). */
function eventOf(
  base: Omit<CacheOperationEvent, 'durationMs' | 'context' | 'outcome' | 'error'>,
  durationMs: number,
  context: CallContext | undefined,
  outcome: string | undefined,
): CacheOperationEvent {
  const event: CacheOperationEvent = {
    cache: base.cache,
    operation: base.operation,
    tier: base.tier,
    key: base.key,
    durationMs,
    context,
  };
  if (base.peer !== undefined) event.peer = base.peer;
  if (outcome !== undefined) event.outcome = outcome;
  return event;
}

/** Reports the Redis commands of one cache or stock engine (its name and server fixed). */
export class RedisReporter {
  readonly #collector: CacheCollector;
  readonly #base: Pick<CacheOperationEvent, 'cache' | 'tier' | 'peer'>;

  constructor(collector: CacheCollector, cache: string, peer: string | undefined) {
    this.#collector = collector;
    this.#base = { cache, tier: 'redis', ...(peer === undefined ? {} : { peer }) };
  }

  /**
   * Reports an operation on `key` that started at `started` (`performance.now()`) in
   * `context` and has just ended: for work queued and answered later (a batched deduction
   * keeps its start and context beside it), with no promise or closure of its own.
   */
  report(
    operation: CacheOperation,
    key: string,
    started: number,
    context: CallContext | undefined,
    outcome: string | undefined,
    error?: string,
  ): void {
    const event: CacheOperationEvent = {
      cache: this.#base.cache,
      operation,
      tier: 'redis',
      key,
      durationMs: performance.now() - started,
      context,
    };
    if (this.#base.peer !== undefined) event.peer = this.#base.peer;
    if (outcome !== undefined) event.outcome = outcome;
    if (error !== undefined) event.error = error;
    this.#collector.record(event);
  }

  /** Runs the command `op` on `key` and reports it (see {@link reported}). */
  run<R>(
    operation: CacheOperation,
    key: string,
    op: () => Promise<R>,
    outcome?: (r: R) => string | undefined,
  ): Promise<R> {
    return reported(this.#collector, { ...this.#base, operation, key }, op, outcome);
  }
}

/**
 * The shared tier with every command reported (reads as `hit` or `miss`). The invalidation
 * feed (`subscribe`) and `close` are not commands of a request and pass through unreported.
 */
export class ReportedTier implements RemoteTier {
  readonly #tier: RemoteTier;
  readonly #redis: RedisReporter;

  constructor(tier: RemoteTier, reporter: RedisReporter) {
    this.#tier = tier;
    this.#redis = reporter;
  }

  read(key: string): Promise<RemoteRead> {
    return this.#redis.run(
      'get',
      key,
      () => this.#tier.read(key),
      (r) => (r.payload === null ? 'miss' : 'hit'),
    );
  }

  writeIfVersion(
    key: string,
    version: number,
    payload: string,
    ttlMs: number,
    tags: readonly string[],
  ): Promise<boolean> {
    return this.#redis.run(
      'set-if-version',
      key,
      () => this.#tier.writeIfVersion(key, version, payload, ttlMs, tags),
      (stored) => (stored ? 'stored' : 'version-moved'),
    );
  }

  write(key: string, payload: string, ttlMs: number, tags: readonly string[]): Promise<number> {
    return this.#redis.run('set', key, () => this.#tier.write(key, payload, ttlMs, tags));
  }

  invalidate(keys: readonly string[]): Promise<void> {
    return this.#redis.run('invalidate', keys.join(' '), () => this.#tier.invalidate(keys));
  }

  invalidateTag(tag: string): Promise<number> {
    return this.#redis.run('invalidate-tag', tag, () => this.#tier.invalidateTag(tag));
  }

  tryLock(key: string, ttlMs: number): Promise<boolean> {
    return this.#redis.run(
      'lock',
      key,
      () => this.#tier.tryLock(key, ttlMs),
      (got) => (got ? 'locked' : 'held-elsewhere'),
    );
  }

  unlock(key: string): Promise<void> {
    return this.#redis.run('unlock', key, () => this.#tier.unlock(key));
  }

  subscribe(
    onInvalidate: (key: string, version: number) => void,
    onResync: () => void,
  ): Promise<void> {
    return this.#tier.subscribe(onInvalidate, onResync);
  }

  close(): Promise<void> {
    return this.#tier.close();
  }
}

/** The collector with its failures swallowed: a collector that throws loses its spans, never the caller's answer. */
export function safeCollector(collector: CacheCollector): CacheCollector {
  return {
    record(event) {
      try {
        collector.record(event);
      } catch {
        // ignored (see above)
      }
    },
  };
}
