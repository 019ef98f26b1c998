/**
 * The multi-level cache against Node's usual choices, in one run on one private
 * redis-server (no persistence, loopback):
 *
 * - **L1 hit**, ns/op over 10 000 stored keys (a product-sized ~200-byte object each), read
 *   in a fixed shuffled order: Peakware's `LocalCache.get` (what a `Cache` hit runs) vs
 *   lru-cache 11 `get` (max 10 000), and the async paths a user calls: `Cache.getOrLoad` vs
 *   bentocache 1.6 `getOrSet` with its memory driver (`maxItems` 10 000, L1 only).
 * - **L1 + L2 `getOrLoad`**: 100 000 keys pre-written to Redis, L1 capped at 10 000
 *   entries, 64 calls in flight over uniformly random keys (so about 90 % of reads go to
 *   Redis; a new key sequence each run, the libraries' order rotating from run to run): Peakware (`Cache` with Redis) vs bentocache (memory L1 + redis L2 + redis bus,
 *   ioredis) vs cache-manager 7 (Keyv over lru-cache 10 000 + Keyv/redis). Ops/s and p99.
 *   Then Peakware alone on a private 3-master Redis Cluster, the same keys and key
 *   sequences: what the cluster's layout (one MGET a key) costs against one Redis.
 * - **Invalidation across 4 instances**: 4 `Cache`s (own Redis connections each, one
 *   process): instance 0 invalidates a key the other three hold; time until each of them has
 *   dropped it (p50/p99 over the samples).
 * - **Hot key**: 4 instances each read one key 400 times per 500 ms window (threshold
 *   1 000 summed): time from the first read until all 4 call it hot.
 */
import { performance } from 'node:perf_hooks';
import KeyvRedis from '@keyv/redis';
import { BentoCache, bentostore } from 'bentocache';
import { memoryDriver } from 'bentocache/drivers/memory';
import { redisBusDriver, redisDriver } from 'bentocache/drivers/redis';
import { createCache } from 'cache-manager';
import { Keyv } from 'keyv';
import { LRUCache } from 'lru-cache';
import {
  Cache,
  LocalCache,
  redisServerAvailable,
  startRedisCluster,
  startRedisServer,
} from 'peakware/cache';
import { type Benchmark, median, round } from '../bench.js';

const product = (i: number) => ({
  sku: `sku-${i}`,
  name: `Product number ${i} in the flash sale`,
  price: 1999 + (i % 100),
  stock: 100 + (i % 7),
  tags: ['sale', 'electronics', `brand-${i % 20}`],
  description: 'x'.repeat(80),
});

function shuffled(n: number): string[] {
  const keys = Array.from({ length: n }, (_, i) => `product:${i}`);
  let seed = 42;
  for (let i = n - 1; i > 0; i--) {
    seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
    const j = seed % (i + 1);
    [keys[i], keys[j]] = [keys[j]!, keys[i]!];
  }
  return keys;
}

/** ns per call of a sync read over `keys`, repeated for `ops` calls. */
function nsPerSync(read: (k: string) => unknown, keys: string[], ops: number): number {
  let sink = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < ops; i++) if (read(keys[i % keys.length]!) !== undefined) sink++;
  const ns = Number(process.hrtime.bigint() - start) / ops;
  if (sink === 0) throw new Error('benchmark read nothing: every read should hit');
  return ns;
}

async function nsPerAsync(read: (k: string) => Promise<unknown>, keys: string[], ops: number) {
  let sink = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < ops; i++) if ((await read(keys[i % keys.length]!)) !== undefined) sink++;
  const ns = Number(process.hrtime.bigint() - start) / ops;
  if (sink === 0) throw new Error('benchmark read nothing: every read should hit');
  return ns;
}

/**
 * `inFlight` workers calling `read` on random keys (an LCG from `seed`) until `ops` calls or
 * `maxMs`; ops/s and p99 ms.
 */
async function closedLoop(
  read: (k: string) => Promise<unknown>,
  keyCount: number,
  ops: number,
  inFlight: number,
  maxMs: number,
  seed: number,
): Promise<{ opsPerSec: number; p99: number }> {
  const lat: number[] = [];
  let issued = 0;
  const start = performance.now();
  const worker = async () => {
    while (issued < ops && performance.now() - start < maxMs) {
      issued++;
      seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
      const t = performance.now();
      const v = await read(`product:${seed % keyCount}`);
      lat.push(performance.now() - t);
      if (v === undefined) throw new Error('a read missed every tier');
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const secs = (performance.now() - start) / 1000;
  lat.sort((a, b) => a - b);
  return { opsPerSec: lat.length / secs, p99: lat[Math.floor(lat.length * 0.99)] ?? Number.NaN };
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * q))] ?? Number.NaN;
};

export const benchmark: Benchmark = {
  name: 'cache',
  description:
    'peakware/cache: L1 hit ns/op vs lru-cache and bentocache memory; L1+Redis getOrLoad ops/s and p99 vs bentocache and cache-manager; invalidation and hot-key propagation across 4 instances',
  async run({ runs, quick, progress }) {
    if (!redisServerAvailable())
      throw new Error('redis-server is not on PATH (apt-get install redis-server)');
    const redis = await startRedisServer();
    const port = redis.port;
    const figures: Record<string, number> = {};
    const ratios: Record<string, number> = {};
    const table: (string | number)[][] = [['measure', 'peakware', 'peer', 'value', 'ratio']];
    const notes: string[] = [];
    try {
      // --- L1 hits -----------------------------------------------------------------------
      const keys = shuffled(10_000);
      const l1 = new LocalCache<unknown>({ maxEntries: 10_000 });
      const lru = new LRUCache<string, object>({ max: 10_000 });
      const cache = new Cache({ name: 'bench-l1', l1: { maxEntries: 10_000 } });
      const bentoL1 = new BentoCache({
        default: 'm',
        stores: { m: bentostore().useL1Layer(memoryDriver({ maxItems: 10_000 })) },
      });
      for (let i = 0; i < keys.length; i++) {
        const k = `product:${i}`;
        l1.set(k, product(i), Date.now() + 3_600_000, 200);
        lru.set(k, product(i));
        await cache.getOrLoad(k, async () => product(i), { ttlMs: 3_600_000 });
        await bentoL1.getOrSet({ key: k, factory: () => product(i), ttl: '1h' });
      }
      const syncOps = quick ? 300_000 : 3_000_000;
      const asyncOps = quick ? 100_000 : 1_000_000;
      const r = {
        l1: [] as number[],
        lru: [] as number[],
        cache: [] as number[],
        bento: [] as number[],
      };
      for (let run = 0; run < runs; run++) {
        progress(`L1 hits run ${run + 1}/${runs}`);
        r.l1.push(nsPerSync((k) => l1.get(k), keys, syncOps));
        r.lru.push(nsPerSync((k) => lru.get(k), keys, syncOps));
        r.cache.push(
          await nsPerAsync((k) => cache.getOrLoad(k, async () => undefined), keys, asyncOps),
        );
        r.bento.push(
          await nsPerAsync(
            (k) => bentoL1.getOrSet({ key: k, factory: () => undefined }),
            keys,
            asyncOps,
          ),
        );
      }
      await bentoL1.disconnectAll();
      await cache.close();
      figures['l1.peakware.nsPerHit'] = round(median(r.l1));
      figures['l1.lruCache.nsPerHit'] = round(median(r.lru));
      figures['l1.peakwareCache.nsPerGetOrLoad'] = round(median(r.cache));
      figures['l1.bentocache.nsPerGetOrSet'] = round(median(r.bento));
      ratios['l1.lruCache/peakware.nsPerHit'] = round(median(r.lru) / median(r.l1));
      ratios['l1.bentocache/peakware.nsPerGetOrLoad'] = round(median(r.bento) / median(r.cache));
      table.push([
        'L1 hit, sync get (ns)',
        round(median(r.l1)),
        'lru-cache',
        round(median(r.lru)),
        round(median(r.lru) / median(r.l1)),
      ]);
      table.push([
        'L1 hit, async getOrLoad (ns)',
        round(median(r.cache)),
        'bentocache memory',
        round(median(r.bento)),
        round(median(r.bento) / median(r.cache)),
      ]);

      // --- L1 + L2 -----------------------------------------------------------------------
      const keyCount = 100_000;
      const url = redis.url;
      const peak = new Cache({
        name: 'bench-l2',
        redis: url,
        l1: { maxEntries: 10_000 },
        ttlMs: 3_600_000,
        redisTimeoutMs: 1000,
      });
      await peak.ready();
      const bento = new BentoCache({
        default: 'r',
        stores: {
          r: bentostore()
            .useL1Layer(memoryDriver({ maxItems: 10_000 }))
            .useL2Layer(redisDriver({ connection: { host: '127.0.0.1', port } }))
            .useBus(redisBusDriver({ connection: { host: '127.0.0.1', port } })),
        },
      });
      const manager = createCache({
        stores: [
          new Keyv({ store: new LRUCache<string, object>({ max: 10_000 }) }),
          new Keyv({ store: new KeyvRedis(url), namespace: 'cm' }),
        ],
      });
      progress(`writing ${keyCount} keys to Redis through each library`);
      for (let i = 0; i < keyCount; i += 500) {
        const batch = Array.from({ length: Math.min(500, keyCount - i) }, (_, j) => i + j);
        await Promise.all(
          batch.map(async (n) => {
            const k = `product:${n}`;
            await peak.set(k, product(n), { ttlMs: 3_600_000 });
            await bento.set({ key: k, value: product(n), ttl: '1h' });
            await manager.set(k, product(n), 3_600_000);
          }),
        );
      }
      const l2Ops = quick ? 20_000 : 100_000;
      const maxMs = quick ? 5000 : 15_000;
      const loader = async () => product(-1); // never needed: every key is in Redis
      type Run = { opsPerSec: number; p99: number };
      const res = { peak: [] as Run[], bento: [] as Run[], cm: [] as Run[] };
      for (let run = 0; run < runs; run++) {
        progress(`L1+L2 run ${run + 1}/${runs}`);
        // Each run reads a new key sequence (the same for the three libraries): a repeated
        // sequence would favour a frequency-based L1 over the peers' LRUs. The order of the
        // libraries rotates so none always runs first or after another's garbage.
        const seed = 7 + run * 1_000_003;
        const order: (() => Promise<void>)[] = [
          async () => {
            res.peak.push(
              await closedLoop((k) => peak.getOrLoad(k, loader), keyCount, l2Ops, 64, maxMs, seed),
            );
          },
          async () => {
            res.bento.push(
              await closedLoop(
                (k) => bento.getOrSet({ key: k, factory: loader, ttl: '1h' }),
                keyCount,
                l2Ops,
                64,
                maxMs,
                seed,
              ),
            );
          },
          async () => {
            res.cm.push(
              await closedLoop(
                (k) => manager.wrap(k, loader, 3_600_000),
                keyCount,
                l2Ops,
                64,
                maxMs,
                seed,
              ),
            );
          },
        ];
        for (let i = 0; i < order.length; i++) await order[(run + i) % order.length]!();
      }
      const med = (xs: { opsPerSec: number; p99: number }[], f: 'opsPerSec' | 'p99') =>
        median(xs.map((x) => x[f]));
      for (const [label, xs] of [
        ['peakware', res.peak],
        ['bentocache', res.bento],
        ['cacheManager', res.cm],
      ] as const) {
        figures[`l2.${label}.opsPerSec`] = round(med(xs, 'opsPerSec'));
        figures[`l2.${label}.p99Ms`] = round(med(xs, 'p99'));
      }
      ratios['l2.peakware/bentocache.opsPerSec'] = round(
        med(res.peak, 'opsPerSec') / med(res.bento, 'opsPerSec'),
      );
      ratios['l2.peakware/cacheManager.opsPerSec'] = round(
        med(res.peak, 'opsPerSec') / med(res.cm, 'opsPerSec'),
      );
      ratios['l2.bentocache/peakware.p99'] = round(med(res.bento, 'p99') / med(res.peak, 'p99'));
      table.push([
        'L1+Redis getOrLoad ops/s (p99 ms)',
        `${round(med(res.peak, 'opsPerSec'))} (${round(med(res.peak, 'p99'))})`,
        'bentocache',
        `${round(med(res.bento, 'opsPerSec'))} (${round(med(res.bento, 'p99'))})`,
        round(med(res.peak, 'opsPerSec') / med(res.bento, 'opsPerSec')),
      ]);
      table.push([
        '',
        '',
        'cache-manager',
        `${round(med(res.cm, 'opsPerSec'))} (${round(med(res.cm, 'p99'))})`,
        round(med(res.peak, 'opsPerSec') / med(res.cm, 'opsPerSec')),
      ]);
      notes.push(
        `L1+Redis: ${peak.stats().l1Hits} L1 hits and ${peak.stats().l2Hits} Redis hits for Peakware over all runs; loads ${peak.stats().loads}`,
      );
      await peak.close();
      await bento.disconnectAll();
      await manager.disconnect();

      // --- the same reads on a Redis Cluster (3 masters) -----------------------------------
      // Peakware alone: what the cluster layout costs (one MGET a key, pipelined per master,
      // against one MGET a batch on one Redis), with the same keys, runs and seeds.
      progress(`starting a 3-master Redis Cluster; writing ${keyCount} keys`);
      const cluster = await startRedisCluster({ masters: 3 });
      try {
        const onCluster = new Cache({
          name: 'bench-l2',
          redis: cluster.url,
          l1: { maxEntries: 10_000 },
          ttlMs: 3_600_000,
          redisTimeoutMs: 1000,
        });
        await onCluster.ready();
        for (let i = 0; i < keyCount; i += 500)
          await Promise.all(
            Array.from({ length: Math.min(500, keyCount - i) }, (_, j) =>
              onCluster.set(`product:${i + j}`, product(i + j), { ttlMs: 3_600_000 }),
            ),
          );
        const onClusterRuns: Run[] = [];
        for (let run = 0; run < runs; run++) {
          progress(`L1+Redis Cluster run ${run + 1}/${runs}`);
          onClusterRuns.push(
            await closedLoop(
              (k) => onCluster.getOrLoad(k, loader),
              keyCount,
              l2Ops,
              64,
              maxMs,
              7 + run * 1_000_003,
            ),
          );
        }
        figures['l2.peakwareCluster.opsPerSec'] = round(med(onClusterRuns, 'opsPerSec'));
        figures['l2.peakwareCluster.p99Ms'] = round(med(onClusterRuns, 'p99'));
        ratios['l2.peakwareCluster/peakware.opsPerSec'] = round(
          med(onClusterRuns, 'opsPerSec') / med(res.peak, 'opsPerSec'),
        );
        table.push([
          'same, on a 3-master Redis Cluster',
          `${round(med(onClusterRuns, 'opsPerSec'))} (${round(med(onClusterRuns, 'p99'))})`,
          'peakware, one Redis',
          `${round(med(res.peak, 'opsPerSec'))} (${round(med(res.peak, 'p99'))})`,
          round(med(onClusterRuns, 'opsPerSec') / med(res.peak, 'opsPerSec')),
        ]);
        notes.push(
          `L1+Redis Cluster: ${onCluster.stats().l2Hits} Redis hits, loads ${onCluster.stats().loads}, L2 errors ${onCluster.stats().l2Errors}`,
        );
        await onCluster.close();
      } finally {
        await cluster.stop();
      }

      // --- invalidation across 4 instances ----------------------------------------------
      const heard = new Map<string, number[]>();
      const instances = Array.from(
        { length: 4 },
        (_, i) =>
          new Cache({
            name: 'bench-inv',
            redis: url,
            redisTimeoutMs: 1000,
            onInvalidation: (k) => {
              if (i > 0) heard.get(k)?.push(performance.now());
            },
          }),
      );
      await Promise.all(instances.map((c) => c.ready()));
      const samples = quick ? 100 : 500;
      const delays: number[] = [];
      progress(`invalidation: ${samples} keys across 4 instances`);
      for (let s = 0; s < samples; s++) {
        const k = `inv:${s}`;
        for (const c of instances) await c.getOrLoad(k, async () => s);
        heard.set(k, []);
        const t0 = performance.now();
        await instances[0]!.invalidate(k);
        const end = Date.now() + 2000;
        while (heard.get(k)!.length < 3 && Date.now() < end)
          await new Promise((r) => setImmediate(r));
        for (const t of heard.get(k)!) delays.push(t - t0);
        for (const c of instances.slice(1)) {
          if (c.stats().l1.entries > 0 && (await c.get(k)) !== undefined)
            throw new Error(`instance kept ${k}`);
        }
      }
      figures['invalidation.p50Ms'] = round(quantile(delays, 0.5));
      figures['invalidation.p99Ms'] = round(quantile(delays, 0.99));
      figures['invalidation.delivered'] = delays.length;
      table.push([
        'invalidation across 4 instances p50 / p99 (ms)',
        `${round(quantile(delays, 0.5))} / ${round(quantile(delays, 0.99))}`,
        'goal',
        '≤ 100 ms p99',
        '',
      ]);
      for (const c of instances) await c.close();

      // --- hot key ----------------------------------------------------------------------
      const hotMs: number[] = [];
      for (let run = 0; run < Math.min(runs, 3); run++) {
        progress(`hot key run ${run + 1}`);
        const hot = Array.from(
          { length: 4 },
          () =>
            new Cache({
              name: `bench-hot${run}`,
              redis: url,
              redisTimeoutMs: 1000,
              hotKeys: { threshold: 1000, windowMs: 500 },
            }),
        );
        await hot[0]!.set('hot', 1);
        const t0 = performance.now();
        let reads = 0;
        while (!hot.every((c) => c.hotKeys().includes('hot')) && performance.now() - t0 < 5000) {
          // About 400 reads per instance per 500 ms window: 1 600 summed, over the threshold.
          for (const c of hot) await c.get('hot');
          reads++;
          await new Promise((r) => setTimeout(r, 1));
        }
        const took = performance.now() - t0;
        if (!hot.every((c) => c.hotKeys().includes('hot')))
          throw new Error('hot key never detected');
        hotMs.push(took);
        notes.push(
          `hot key run ${run + 1}: ${reads} reads per instance before all four called it hot`,
        );
        for (const c of hot) await c.close();
      }
      figures['hotKey.msToAllInstances'] = round(median(hotMs));
      table.push([
        'hot key known to all 4 instances (ms from first read)',
        round(median(hotMs)),
        'goal',
        '≤ 1 000 ms after it turns hot',
        '',
      ]);
      notes.push(
        'Instances are separate Cache objects with their own Redis connections in one process; redis-server without persistence on loopback.',
      );
    } finally {
      await redis.stop();
    }
    return { figures, ratios, table, notes };
  },
};
