/**
 * The multi-level cache against a real redis-server: single-flight per key, L2 shared by
 * instances, invalidation and tags reaching every instance's L1 (also across processes),
 * a load that raced an invalidation never stored, negative caching, stale-while-revalidate
 * and grace on an injected clock, peak switches, hot keys, shadow keys for stress traffic,
 * and Redis killed mid-use (reads fall back to the loader, invalidation says it failed).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import {
  Cache,
  type CacheOptions,
  type RedisServerProcess,
  startRedisServer,
} from '../src/cache/index.js';
import { runWithContext, withContext } from '../src/core/context.js';
import { ErrorCodes, isPeakError } from '../src/core/errors.js';
import { cacheSpanCollector } from '../src/telemetry/cache-tracing.js';
import { formatPrometheus, processMetrics } from '../src/telemetry/prometheus-format.js';
import type { SpanRecord } from '../src/telemetry/span-types.js';
import { Tracer } from '../src/telemetry/tracer.js';
import { writeReachesChildProcess } from './support/cache-child-process.js';
import { peakInProcess } from './support/peak-in-process.js';
import { waitFor } from './support/wait.js';
import { assertPromtoolAccepts } from './telemetry-promtool-check.js';

let redis: RedisServerProcess;
let raw: Redis;
const caches: Cache[] = [];
let names = 0;

function cache(extra: Partial<CacheOptions> & { name?: string } = {}): Cache {
  const c = new Cache({ name: `t${++names}`, redis: redis.url, redisTimeoutMs: 500, ...extra });
  caches.push(c);
  return c;
}

/** Runs one `peak` invocation in this process. */
function peak(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return peakInProcess(argv);
}

function fakeClock(start = Date.now()) {
  const clock = { now: start, fn: () => clock.now };
  return clock;
}

describe('cache with a real Redis', { timeout: 120_000 }, () => {
  before(async () => {
    redis = await startRedisServer();
    raw = new Redis(redis.url);
  });
  after(async () => {
    for (const c of caches) await c.close();
    raw.disconnect();
    await redis.stop();
  });

  it('loads once per key for concurrent callers, and a second instance reads it from L2', async () => {
    const a = cache({ name: 'shared1' });
    const b = cache({ name: 'shared1' });
    await Promise.all([a.ready(), b.ready()]);
    let loads = 0;
    const loader = async () => {
      loads++;
      await new Promise((r) => setTimeout(r, 20));
      return { sku: 'p1', price: 199 };
    };
    const got = await Promise.all(Array.from({ length: 50 }, () => a.getOrLoad('p1', loader)));
    assert.equal(loads, 1);
    for (const g of got) assert.deepEqual(g, { sku: 'p1', price: 199 });
    assert.deepEqual(await b.getOrLoad('p1', loader), { sku: 'p1', price: 199 });
    assert.equal(loads, 1, 'b found it in Redis');
    assert.equal(b.stats().l2Hits, 1);
    await b.getOrLoad('p1', loader);
    assert.equal(b.stats().l1Hits, 1, 'then in its own L1');
  });

  it('reads asked for in one turn share batched MGETs, each answered with its own key', async () => {
    const a = cache({ name: 'batch' });
    await a.ready();
    // 1 200 keys: three MGETs of at most 512; every third key absent, some invalidated first.
    for (let i = 0; i < 1200; i++) if (i % 3 !== 0) await a.set(`b${i}`, { i });
    for (let i = 1; i < 1200; i += 30) await a.invalidate(`b${i}`);
    const b = cache({ name: 'batch' });
    await b.ready();
    const got = await Promise.all(Array.from({ length: 1200 }, (_, i) => b.get(`b${i}`)));
    got.forEach((g, i) => {
      const expected = i % 3 === 0 || i % 30 === 1 ? undefined : { i };
      assert.deepEqual(g, expected, `key b${i}`);
    });
    assert.equal(b.stats().l2Hits, 1200 - 400 - 40);
  });

  it('an invalidation on one instance drops the key from every instance, and set() replaces it everywhere', async () => {
    const a = cache({ name: 'inv' });
    const b = cache({ name: 'inv' });
    await Promise.all([a.ready(), b.ready()]);
    let price = 100;
    const loader = async () => ({ price });
    assert.deepEqual(await b.getOrLoad('p', loader), { price: 100 });
    price = 120;
    await a.invalidate('p');
    await waitFor('b dropped p', async () => (await b.getOrLoad('p', loader))?.price === 120);
    await a.set('p', { price: 130 });
    await waitFor(
      'b saw the set',
      async () => (await b.get<{ price: number }>('p'))?.price === 130,
    );
    assert.deepEqual(await a.get('p'), { price: 130 }, 'the writer keeps its own copy');
  });

  it('invalidates by tag in every instance', async () => {
    const a = cache({ name: 'tags' });
    const b = cache({ name: 'tags' });
    await Promise.all([a.ready(), b.ready()]);
    for (const k of ['x1', 'x2', 'y1']) {
      await b.getOrLoad(k, async () => k, { tags: [k.startsWith('x') ? 'shop:x' : 'shop:y'] });
    }
    assert.equal(await a.invalidateTag('shop:x'), 2);
    await waitFor(
      'b dropped x1 and x2',
      async () => (await b.get('x1')) === undefined && (await b.get('x2')) === undefined,
    );
    assert.equal(await b.get('y1'), 'y1');
  });

  it('a load that raced an invalidation is given to its caller but stored nowhere', async () => {
    const a = cache({ name: 'race' });
    const b = cache({ name: 'race' });
    await Promise.all([a.ready(), b.ready()]);
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const slow = a.getOrLoad('k', async () => {
      await gate;
      return 'old';
    });
    await new Promise((r) => setTimeout(r, 20));
    await b.invalidate('k'); // the data changed while a was loading
    await waitFor('a heard the invalidation', () => a.stats().invalidationsReceived >= 1);
    release();
    assert.equal(await slow, 'old');
    assert.equal(await a.get('k'), undefined, 'not in L1 or L2');
    assert.equal(await a.getOrLoad('k', async () => 'new'), 'new');
  });

  it('caches "not found" for negativeTtlMs', async () => {
    const clock = fakeClock();
    const c = cache({ name: 'neg', negativeTtlMs: 1000, jitter: 0, now: clock.fn });
    let loads = 0;
    const loader = async () => {
      loads++;
      return undefined;
    };
    assert.equal(await c.getOrLoad('missing', loader), undefined);
    assert.equal(await c.getOrLoad('missing', loader), undefined);
    assert.equal(loads, 1);
    clock.now += 1001;
    await c.getOrLoad('missing', loader);
    assert.equal(loads, 2);
  });

  it('serves stale while one refresh runs, and a grace value when the loader fails', async () => {
    const clock = fakeClock();
    const c = cache({
      name: 'swr',
      ttlMs: 1000,
      jitter: 0,
      staleWhileRevalidateMs: 1000,
      graceMs: 5000,
      now: clock.fn,
    });
    let version = 1;
    let fail = false;
    let loads = 0;
    const loader = async () => {
      loads++;
      if (fail) throw new Error('database down');
      return version;
    };
    assert.equal(await c.getOrLoad('v', loader), 1);
    version = 2;
    clock.now += 1500; // stale, within SWR
    assert.equal(await c.getOrLoad('v', loader), 1, 'stale served at once');
    await waitFor('the refresh stored 2', async () => (await c.getOrLoad('v', loader)) === 2);
    fail = true;
    clock.now += 3000; // past fresh and SWR, within grace
    assert.equal(await c.getOrLoad('v', loader), 2, 'grace value served when the loader fails');
    assert.ok(c.stats().graceServed >= 1);
    clock.now += 10_000; // past grace
    await assert.rejects(
      c.getOrLoad('v', loader),
      (e: unknown) =>
        isPeakError(e, ErrorCodes.CACHE_LOAD_FAILED) && /database down/.test((e as Error).message),
    );
    assert.ok(loads >= 4);
  });

  it('times out a hanging loader', async () => {
    const c = cache({ name: 'hang', loadTimeoutMs: 50 });
    await assert.rejects(
      c.getOrLoad('k', () => new Promise(() => undefined)),
      (e: unknown) =>
        isPeakError(e, ErrorCodes.CACHE_LOAD_FAILED) &&
        /did not answer in 50 ms/.test((e as Error).message),
    );
  });

  it('refuses bad keys and oversized values with clear errors, and stores nothing', async () => {
    const c = cache({ name: 'bad', maxValueBytes: 100 });
    await assert.rejects(
      c.set('big', 'x'.repeat(200)),
      (e: unknown) =>
        isPeakError(e, ErrorCodes.CACHE_VALUE_TOO_LARGE) &&
        /maxValueBytes 100/.test((e as Error).message),
    );
    assert.equal(await raw.exists('peak:cache:bad:k:big'), 0);
    await assert.rejects(c.get(''), (e: unknown) => isPeakError(e, ErrorCodes.INVALID_ARGUMENT));
    await assert.rejects(
      c.get('a\uD800b'),
      (e: unknown) =>
        isPeakError(e, ErrorCodes.INVALID_ARGUMENT) && /surrogate/.test((e as Error).message),
    );
    // Odd but valid bytes are fine, and round-trip through Redis and the invalidation feed.
    const odd = 'k\n\t"|{}\u0000é😀';
    await c.set(odd, 1);
    assert.equal(await cache({ name: 'bad' }).get(odd), 1);
    const uncached = await c.getOrLoad('loaded-big', async () => 'y'.repeat(200));
    assert.equal(uncached?.length, 200, 'an oversized loaded value is served, uncached');
    assert.equal(c.stats().oversized, 1);
    assert.throws(
      () => new Cache({ name: 'Bad Name' }),
      (e: unknown) => isPeakError(e, ErrorCodes.INVALID_ARGUMENT),
    );
  });

  it('peak switches: L1 off sends reads to Redis, frozen writes are refused', async () => {
    const c = cache({ name: 'switch' });
    await c.getOrLoad('k', async () => 1);
    c.configure({ l1Enabled: false });
    await c.getOrLoad('k', async () => 2);
    assert.equal(c.stats().l2Hits, 1);
    c.configure({ l1Enabled: true, l1TtlMs: 60_000, freezeWrites: true });
    await assert.rejects(c.set('k', 3), (e: unknown) =>
      isPeakError(e, ErrorCodes.CACHE_WRITES_FROZEN),
    );
    await assert.rejects(c.invalidate('k'), (e: unknown) =>
      isPeakError(e, ErrorCodes.CACHE_WRITES_FROZEN),
    );
    assert.equal(await c.get('k'), 1);
    assert.deepEqual(c.settings(), { l1Enabled: true, l1TtlMs: 60_000, freezeWrites: true });
  });

  it('stress traffic reads and writes shadow keys only', async () => {
    const c = cache({ name: 'stress' });
    await withContext({ stress: true }, () => c.set('p1', 'shadow value'));
    assert.equal(await raw.exists('peak:cache:stress:k:p1'), 0, 'no real key touched');
    assert.equal(await raw.exists('peak:cache:stress:k:shadow:p1'), 1);
    assert.equal(await c.getOrLoad('p1', async () => 'real value'), 'real value');
    assert.equal(await withContext({ stress: true }, () => c.get('p1')), 'shadow value');
  });

  it('finds hot keys across instances and serves them from L1 even with L1 off', async () => {
    const opts = {
      name: 'hot',
      hotKeys: { threshold: 200, windowMs: 200 },
      settings: { l1Enabled: false },
    };
    const a = cache(opts);
    const b = cache(opts);
    await a.set('hot-item', 'x');
    // Each instance alone stays under the threshold; together they pass it.
    await waitFor('both instances see hot-item as hot', async () => {
      for (let i = 0; i < 150; i++) {
        await a.get('hot-item');
        await b.get('hot-item');
      }
      return a.hotKeys().includes('hot-item') && b.hotKeys().includes('hot-item');
    });
    const before = b.stats().l1Hits;
    await b.get('hot-item');
    await b.get('hot-item');
    assert.ok(b.stats().l1Hits > before, 'served from L1');
    assert.ok(!a.hotKeys().includes('cold-item'));

    // The same sorted sets, read from outside: peak cache hot.
    const cli = await peak(
      'cache',
      'hot',
      '--redis',
      redis.url,
      '--name',
      'hot',
      '--threshold',
      '200',
      '--window-ms',
      '200',
      '--windows',
      '10',
      '--json',
    );
    assert.equal(cli.code, 0, cli.stderr);
    const report = JSON.parse(cli.stdout) as {
      keys: { key: string; last: number; max: number; hot: boolean }[];
    };
    const row = report.keys.find((k) => k.key === 'hot-item');
    assert.ok(row?.hot === true && row.max >= 200, cli.stdout);
    // And on /metrics.
    const text = formatPrometheus(b.families());
    assert.match(text, /peak_cache_hot_key\{cache="hot",key="hot-item"\} 1/);
    assert.match(text, /peak_cache_hot_keys\{cache="hot"\} 1/);
  });

  it('peak cache hot says what is wrong with its input or the Redis', async () => {
    const noRedis = await peak('cache', 'hot', '--name', 'x');
    assert.equal(noRedis.code, 2);
    assert.match(noRedis.stderr, /--redis URL/);
    const badName = await peak('cache', 'hot', '--redis', redis.url, '--name', 'No Such');
    assert.equal(badName.code, 2);
    assert.match(badName.stderr, /--name/);
    const down = await peak('cache', 'hot', '--redis', 'redis://127.0.0.1:1', '--name', 'x');
    assert.equal(down.code, 1);
    assert.match(down.stderr, /cannot reach Redis.*PEAK_CACHE_UNAVAILABLE/);
    const none = await peak('cache', 'hot', '--redis', redis.url, '--name', 'never-used');
    assert.equal(none.code, 0);
    assert.match(none.stdout, /no key reported/);
  });

  it('exposes its figures as Prometheus families that promtool accepts', async () => {
    const c = cache({ name: 'metrics' });
    await c.ready();
    await c.getOrLoad('m1', async () => 1); // miss + load
    await c.getOrLoad('m1', async () => 1); // L1 hit
    await c.getOrLoad('nothing', async () => undefined); // negative
    await c.getOrLoad('nothing', async () => undefined); // negative hit
    await c.invalidate('m1');
    await waitFor(
      'the feed to deliver the invalidation',
      () => c.stats().invalidationsReceived >= 1,
    );
    const text = formatPrometheus([...processMetrics(), ...c.families()]);
    assertPromtoolAccepts(text, 'the cache families');
    const sample = (name: string, labels = 'cache="metrics"') =>
      Number(new RegExp(`^${name}\\{${labels}\\} (\\S+)$`, 'm').exec(text)?.[1]);
    assert.equal(sample('peak_cache_hits_total', 'cache="metrics",tier="l1"'), 2);
    assert.equal(sample('peak_cache_loads_total'), 2);
    assert.equal(sample('peak_cache_negative_hits_total'), 1);
    assert.equal(sample('peak_cache_invalidations_sent_total'), 1);
    assert.ok(sample('peak_cache_invalidations_received_total') >= 1);
    assert.equal(sample('peak_cache_breaker_open'), 0);
    assert.equal(sample('peak_cache_l1_entries'), 1, 'the negative entry; m1 was dropped');
    assert.equal(sample('peak_cache_hot_keys'), 0);
  });

  it("reports its Redis commands and loads as spans of the caller's trace; L1 hits are not reported", async () => {
    const spans: SpanRecord[] = [];
    const tracer = new Tracer({ service: 'shop.order', sink: { add: (s) => spans.push(s) } });
    const collector = cacheSpanCollector(tracer);
    const a = cache({ name: 'traced', collector });
    const b = cache({ name: 'traced', collector });
    await Promise.all([a.ready(), b.ready()]);
    const request = tracer.startSpan('place');
    await runWithContext(request.context, async () => {
      assert.deepEqual(await a.getOrLoad('p:1', async () => ({ cents: 500 })), { cents: 500 });
      assert.deepEqual(await a.getOrLoad('p:1', async () => assert.fail('L1 answers')), {
        cents: 500,
      });
      assert.deepEqual(await b.getOrLoad('p:1', async () => assert.fail('L2 answers')), {
        cents: 500,
      });
      assert.equal(await a.getOrLoad('p:none', async () => undefined), undefined);
    });
    request.end();
    await waitFor('seven cache spans', () => spans.filter((s) => s.name !== 'place').length >= 7);
    const port = new URL(redis.url).port;
    const seen = spans
      .filter((s) => s.name !== 'place')
      .map((s) => `${s.name} ${s.attributes['cache.key']} ${s.attributes['cache.outcome']}`)
      .sort();
    assert.deepEqual(seen, [
      'cache load traced p:1 loaded',
      'cache load traced p:none not-found',
      'redis get traced p:1 hit',
      'redis get traced p:1 miss',
      'redis get traced p:none miss',
      'redis set-if-version traced p:1 stored',
      'redis set-if-version traced p:none stored',
    ]);
    for (const s of spans.filter((x) => x.name !== 'place')) {
      assert.equal(s.traceId, request.context.traceId, `${s.name} is in the caller's trace`);
      assert.equal(s.parentSpanId, request.context.spanId, `${s.name} is a child of its caller`);
      assert.equal(s.service, 'shop.order');
      if (s.name.startsWith('redis ')) {
        assert.equal(s.kind, 'client');
        assert.equal(s.peerService, `redis:127.0.0.1:${port}`);
        assert.equal(s.attributes['db.system'], 'redis');
      } else {
        assert.equal(s.kind, 'internal');
        assert.equal(s.peerService, undefined);
      }
    }

    // A command Redis does not answer in time is a failed span (and the caller still gets its value).
    spans.length = 0;
    const slow = cache({ name: 'traced-slow', collector, redisTimeoutMs: 30 });
    await slow.ready();
    await raw.call('CLIENT', 'PAUSE', '300', 'ALL');
    assert.equal(
      await runWithContext(request.context, () => slow.getOrLoad('q', async () => 7)),
      7,
    );
    await new Promise((r) => setTimeout(r, 350));
    const failed = spans.find((s) => s.name === 'redis get traced-slow');
    assert.ok(failed, `a span for the timed-out read: ${spans.map((s) => s.name).join(', ')}`);
    assert.equal(failed.error, true);
    assert.match(String(failed.errorMessage), /timed out|timeout/i);
  });

  it('invalidation reaches another process', async () => {
    const c = cache({ name: 'proc' });
    await c.ready();
    await writeReachesChildProcess(c, redis.url, 'proc');
  });

  it('falls back to the loader when Redis dies, and says an invalidation could not be sent', async () => {
    const own = await startRedisServer();
    const c = new Cache({
      name: 'down',
      redis: own.url,
      redisTimeoutMs: 100,
      breaker: { failures: 2, openMs: 60_000 },
    });
    caches.push(c);
    await c.ready();
    assert.equal(await c.getOrLoad('a', async () => 1), 1);
    await own.kill();
    let loads = 0;
    for (let i = 0; i < 5; i++) {
      assert.equal(await c.getOrLoad(`b${i}`, async () => ++loads), loads);
    }
    assert.equal(loads, 5);
    assert.equal(c.stats().breakerOpen, true);
    assert.equal(await c.getOrLoad('a', async () => 99), 1, 'L1 still answers');
    await assert.rejects(
      c.invalidate('a'),
      (e: unknown) =>
        isPeakError(e, ErrorCodes.CACHE_UNAVAILABLE) && /retry/.test((e as Error).message),
    );
    await own.stop();
  });

  it('a port already taken is refused with the reason redis-server gives', async () => {
    const holder = net.createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', () => r()));
    const taken = (holder.address() as net.AddressInfo).port;
    try {
      await assert.rejects(
        startRedisServer({ port: taken, startTimeoutMs: 5000 }),
        (e: unknown) =>
          isPeakError(e, ErrorCodes.CACHE_UNAVAILABLE) &&
          new RegExp(`port ${taken}.*address already in use`, 'is').test((e as Error).message),
      );
    } finally {
      await new Promise<void>((r) => holder.close(() => r()));
    }
  });
});
