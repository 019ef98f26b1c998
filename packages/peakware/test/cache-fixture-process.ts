/**
 * Test fixture: a second process holding a cache on the same Redis. Caches `key` (value
 * v1), prints `cached v1`, then polls its cache and prints `saw <value>` when it changes.
 * `node cache-fixture-process.js <redis-url> <cache-name> <key>`
 */
import { Cache } from '../src/cache/index.js';

const [url, name, key] = process.argv.slice(2) as [string, string, string];
const cache = new Cache({ name, redis: url, redisTimeoutMs: 500 });
await cache.ready();
await cache.getOrLoad(key, async () => 'v1');
console.log('cached v1');
let last = 'v1';
setInterval(async () => {
  const v = await cache.getOrLoad(key, async () => 'reloaded');
  if (v !== last) {
    last = v as string;
    console.log(`saw ${v}`);
  }
}, 5);
