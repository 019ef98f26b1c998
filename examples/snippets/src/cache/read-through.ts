/**
 * cache: read-through over L1 (in the process) → Redis → your loader. Two `Cache`s on one
 * Redis stand in for two instances of a service: concurrent misses load once, the second
 * instance finds the value in Redis, and an invalidation after a price change reaches the
 * other instance's L1 through Redis pub/sub.
 *
 *   PEAK_REDIS_URL=redis://127.0.0.1:6379 node dist/cache/read-through.js
 *   (without it, a private redis-server from PATH is started and stopped)
 */
import { Cache, type RedisServerProcess, startRedisServer } from 'peakware/cache';
import { check } from '../env.js';

// The "database": a price table and a count of the reads that reached it.
const prices = new Map([['sku-1', 1999]]);
let dbReads = 0;
async function loadProduct(sku: string) {
  dbReads++;
  await new Promise((r) => setTimeout(r, 20)); // a query's time
  const price = prices.get(sku);
  return price === undefined ? undefined : { sku, price };
}

const redisServer: RedisServerProcess | undefined =
  process.env.PEAK_REDIS_URL === undefined ? await startRedisServer() : undefined;
const redis = process.env.PEAK_REDIS_URL ?? redisServer!.url;
const options = { name: `snippet-products-${process.pid}`, redis, ttlMs: 60_000 };
const a = new Cache(options);
const b = new Cache(options);
try {
  await Promise.all([a.ready(), b.ready()]);
  const read = (c: Cache, sku: string) => c.getOrLoad(`product:${sku}`, () => loadProduct(sku));

  // 100 buyers open the product page on instance A at once: one database read.
  const pages = await Promise.all(Array.from({ length: 100 }, () => read(a, 'sku-1')));
  console.log(`100 concurrent reads on A: ${dbReads} database read, price ${pages[0]?.price}`);
  check(dbReads === 1 && pages.every((p) => p?.price === 1999), 'single-flight on A');

  // Instance B finds it in Redis, then in its own L1.
  await read(b, 'sku-1');
  await read(b, 'sku-1');
  const sb = b.stats();
  console.log(`B: ${sb.l2Hits} Redis hit, ${sb.l1Hits} L1 hit, database reads still ${dbReads}`);
  check(sb.l2Hits === 1 && sb.l1Hits === 1 && dbReads === 1, 'B read Redis, then L1');

  // The price changes: write the database, then invalidate once; B's L1 copy goes too.
  prices.set('sku-1', 1499);
  await a.invalidate('product:sku-1');
  const deadline = Date.now() + 5000;
  while (b.stats().invalidationsReceived === 0 && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 5));
  const fresh = await read(b, 'sku-1');
  console.log(`after the change B reads price ${fresh?.price} (database reads: ${dbReads})`);
  check(fresh?.price === 1499 && dbReads === 2, 'the invalidation reached B');

  // A product that does not exist is cached as "not found" too (negativeTtlMs).
  await read(a, 'sku-404');
  await read(a, 'sku-404');
  check(dbReads === 3 && a.stats().negativeHits === 1, '"not found" is cached');
} finally {
  await a.close();
  await b.close();
  await redisServer?.stop();
}
console.log('ok');
