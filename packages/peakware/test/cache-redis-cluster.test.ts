/**
 * The multi-level cache on a real Redis Cluster (three redis-server masters started by
 * `startRedisCluster`): keys spread over every master, one key's payload and version in
 * one slot, batched reads answered per key, invalidation, tags and the version race as on
 * one Redis, hot keys and `peak cache hot`, invalidation reaching another process, and a
 * cluster URL refused where one Redis is needed (the stock engine) or malformed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Cluster, Redis } from 'ioredis';
import pg from 'pg';
import {
  Cache,
  type CacheOptions,
  parseClusterUrl,
  type RedisClusterProcess,
  RedisStockEngine,
  startRedisCluster,
} from '../src/cache/index.js';
import { withContext } from '../src/core/context.js';
import { ErrorCodes, isPeakError } from '../src/core/errors.js';
import { checkIsolation } from '../src/stress/isolation-check.js';
import { writeReachesChildProcess } from './support/cache-child-process.js';
import { peakInProcess } from './support/peak-in-process.js';
import { waitFor } from './support/wait.js';

let cluster: RedisClusterProcess;
/** A plain client per master, to look at what each holds. */
let masters: Redis[];
const caches: Cache[] = [];

function cache(name: string, extra: Partial<CacheOptions> = {}): Cache {
  const c = new Cache({ name, redis: cluster.url, redisTimeoutMs: 500, ...extra });
  caches.push(c);
  return c;
}

/** Every key the masters hold under a prefix, per master. */
async function keysPerMaster(pattern: string): Promise<string[][]> {
  return Promise.all(masters.map((m) => m.keys(pattern)));
}

describe('cache on a real Redis Cluster', { timeout: 120_000 }, () => {
  before(async () => {
    cluster = await startRedisCluster({ masters: 3 });
    masters = cluster.nodes.map((n) => new Redis(n.url));
  });
  after(async () => {
    for (const c of caches) await c.close();
    for (const m of masters ?? []) m.disconnect();
    await cluster?.stop();
  });

  it('spreads keys over every master, a key payload and version on one', async () => {
    const a = cache('spread');
    const b = cache('spread');
    await Promise.all([a.ready(), b.ready()]);
    let loads = 0;
    const loader = (i: number) => async () => {
      loads++;
      return { sku: `p${i}`, price: i };
    };
    // 300 keys loaded by a, concurrently (one turn's reads batched, per key on a cluster).
    const got = await Promise.all(
      Array.from({ length: 300 }, (_, i) => a.getOrLoad(`p${i}`, loader(i))),
    );
    for (const [i, g] of got.entries()) assert.deepEqual(g, { sku: `p${i}`, price: i });
    assert.equal(loads, 300);
    // A load's value goes to L2 behind its answer.
    await waitFor(
      "a's 300 values in the cluster",
      async () => (await keysPerMaster('peak:cache:spread:k:*')).flat().length === 300,
    );
    // b finds every one in the cluster, none loaded again.
    const fromB = await Promise.all(
      Array.from({ length: 300 }, (_, i) => b.getOrLoad(`p${i}`, loader(i))),
    );
    for (const [i, g] of fromB.entries()) assert.deepEqual(g, { sku: `p${i}`, price: i });
    assert.equal(loads, 300, 'b read them all from L2');
    assert.equal(b.stats().l2Hits, 300);
    const held = await keysPerMaster('peak:cache:spread:k:*');
    assert.equal(held.flat().length, 300);
    for (const [i, keys] of held.entries())
      assert.ok(keys.length > 50, `master ${i} holds ${keys.length} of 300 keys`);
    // A key's payload and its version stamp sit on the same master (one slot).
    await a.invalidate('p7');
    await waitFor('b heard it', async () => (await b.get('p7')) === undefined);
    await a.set('p7', { sku: 'p7', price: 70 });
    const owner = held.findIndex((keys) => keys.includes('peak:cache:spread:k:{p7}'));
    assert.ok(owner >= 0);
    assert.equal(await masters[owner]!.exists('peak:cache:spread:v:{p7}'), 1);
    assert.equal(await masters[owner]!.exists('peak:cache:spread:k:{p7}'), 1);
  });

  it('writes and invalidations sent in one turn each reach their own master', async () => {
    const a = cache('burst');
    const b = cache('burst');
    await Promise.all([a.ready(), b.ready()]);
    // One turn: the scripts of 300 keys go out together, pipelined per master.
    await Promise.all(Array.from({ length: 300 }, (_, i) => a.set(`w${i}`, { i })));
    const got = await Promise.all(Array.from({ length: 300 }, (_, i) => b.get(`w${i}`)));
    for (const [i, g] of got.entries()) assert.deepEqual(g, { i }, `w${i}`);
    await Promise.all(Array.from({ length: 150 }, (_, i) => a.invalidate(`w${i * 2}`)));
    await waitFor('b dropped the even ones', async () => {
      const left = await Promise.all(Array.from({ length: 300 }, (_, i) => b.get(`w${i}`)));
      return left.every((v, i) => (i % 2 === 0 ? v === undefined : v !== undefined));
    });
    assert.equal(a.stats().l2Errors + b.stats().l2Errors, 0);
  });

  it('invalidates and replaces a key in every instance', async () => {
    const a = cache('inv');
    const b = cache('inv');
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
  });

  it('invalidates by tag across masters, each member once', async () => {
    const a = cache('tags');
    const b = cache('tags');
    await Promise.all([a.ready(), b.ready()]);
    const xs = Array.from({ length: 40 }, (_, i) => `x${i}`);
    for (const k of [...xs, 'y1'])
      await b.getOrLoad(k, async () => k, { tags: [k.startsWith('x') ? 'shop:x' : 'shop:y'] });
    // The members live on every master; the tag's set on one.
    const held = await keysPerMaster('peak:cache:tags:k:*');
    assert.ok(
      held.every((keys) => keys.length > 0),
      'members on every master',
    );
    assert.equal(await a.invalidateTag('shop:x'), 40);
    await waitFor('b dropped every x', async () => {
      const left = await Promise.all(xs.map((k) => b.get(k)));
      return left.every((v) => v === undefined);
    });
    assert.equal(await b.get('y1'), 'y1');
    assert.equal(await a.invalidateTag('shop:x'), 0, 'the set went with the invalidation');
  });

  it('a load that raced an invalidation is given to its caller but stored nowhere', async () => {
    const a = cache('race');
    const b = cache('race');
    await Promise.all([a.ready(), b.ready()]);
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const slow = a.getOrLoad(
      'k',
      async () => {
        await gate;
        return 'old';
      },
      { tags: ['race-tag'] },
    );
    await new Promise((r) => setTimeout(r, 20));
    await b.invalidateTag('race-tag'); // nothing tagged yet: the version stays
    await b.invalidate('k'); // the data changed while a was loading
    await waitFor('a heard the invalidation', () => a.stats().invalidationsReceived >= 1);
    release();
    assert.equal(await slow, 'old');
    assert.equal(await a.get('k'), undefined, 'not in L1 or L2');
    assert.equal(await a.getOrLoad('k', async () => 'new'), 'new');
  });

  it('single-flights a load across processes with a lock on the key slot', async () => {
    const a = cache('lock', { lockMs: 2000 });
    const b = cache('lock', { lockMs: 2000 });
    await Promise.all([a.ready(), b.ready()]);
    let loads = 0;
    const loader = async () => {
      loads++;
      await new Promise((r) => setTimeout(r, 100));
      return 'v';
    };
    const [x, y] = await Promise.all([a.getOrLoad('l', loader), b.getOrLoad('l', loader)]);
    assert.equal(x, 'v');
    assert.equal(y, 'v');
    assert.equal(loads, 1, 'the second instance waited for the first one load');
  });

  it('finds hot keys across instances, and peak cache hot reads them from the cluster', async () => {
    const opts = { hotKeys: { threshold: 200, windowMs: 200 }, settings: { l1Enabled: false } };
    const a = cache('hot', opts);
    const b = cache('hot', opts);
    await a.set('hot-item', 'x');
    await waitFor('both instances see hot-item as hot', async () => {
      for (let i = 0; i < 150; i++) {
        await a.get('hot-item');
        await b.get('hot-item');
      }
      return a.hotKeys().includes('hot-item') && b.hotKeys().includes('hot-item');
    });
    const {
      code,
      stdout: out,
      stderr,
    } = await peakInProcess([
      'cache',
      'hot',
      '--redis',
      cluster.url,
      '--name',
      'hot',
      '--threshold',
      '200',
      '--window-ms',
      '200',
      '--windows',
      '10',
      '--json',
    ]);
    assert.equal(code, 0, stderr);
    const report = JSON.parse(out) as { keys: { key: string; hot: boolean }[] };
    assert.ok(report.keys.find((k) => k.key === 'hot-item')?.hot, out);
  });

  it('invalidation reaches another process on the cluster', async () => {
    const c = cache('proc');
    await c.ready();
    await writeReachesChildProcess(c, cluster.url, 'proc');
  });

  it('stress traffic writes shadow keys only, and the isolation check finds leaks on every master', async () => {
    const c = cache('stress');
    await c.ready();
    await withContext({ stress: true }, async () => {
      for (let i = 0; i < 30; i++) await c.set(`buyer-9${i}`, 'shadow value');
    });
    const probes = { cacheKeys: [{ cache: 'stress', pattern: 'buyer-9*' }], topics: false };
    const client = new Cluster(parseClusterUrl(cluster.url).nodes);
    try {
      const clean = await checkIsolation({ runId: 'r1', sinceMs: 0 }, probes, { redis: client });
      assert.equal(clean.ok, true, JSON.stringify(clean));
      assert.deepEqual(clean.checked.caches, [
        { cache: 'stress', pattern: 'buyer-9*', realKeys: 0, shadowKeys: 30 },
      ]);
      // Two stress keys written as real ones: the leak is found, wherever their slots are.
      await c.set('buyer-91', 'leaked');
      await c.set('buyer-97', 'leaked');
      const leaked = await checkIsolation({ runId: 'r1', sinceMs: 0 }, probes, { redis: client });
      assert.equal(leaked.ok, false);
      assert.deepEqual(leaked.leaks[0]?.samples?.sort(), ['buyer-91', 'buyer-97']);
    } finally {
      client.disconnect();
    }
  });

  it('refuses a cluster where one Redis is needed, and a malformed cluster URL', () => {
    assert.throws(
      () =>
        new RedisStockEngine({
          redis: cluster.url,
          pool: new pg.Pool({ connectionString: 'postgres://127.0.0.1:1/none' }),
        }),
      (e: unknown) =>
        isPeakError(e, ErrorCodes.USAGE) &&
        /runs on one Redis .* not a Redis Cluster/.test(String(e)),
    );
    assert.deepEqual(parseClusterUrl('rediss+cluster://u:p%40ss@10.0.0.1:7000,[::1]:7001'), {
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '::1', port: 7001 },
      ],
      username: 'u',
      password: 'p@ss',
      tls: true,
    });
    for (const bad of ['redis+cluster://', 'redis+cluster://h:0', 'redis+cluster://h:1,:2'])
      assert.throws(
        () => new Cache({ name: 'bad', redis: bad }),
        (e: unknown) =>
          isPeakError(e, ErrorCodes.INVALID_ARGUMENT) &&
          /Redis Cluster URL .*redis\+cluster:\/\/host:port/.test((e as Error).message),
        bad,
      );
  });
});

describe('cache on a Redis Cluster when a master dies', { timeout: 120_000 }, () => {
  let failover: RedisClusterProcess;
  const own: Cache[] = [];
  before(async () => {
    // A replica per master, failed over one second after its master stops answering.
    failover = await startRedisCluster({ masters: 3, replicas: 1, nodeTimeoutMs: 1000 });
  });
  after(async () => {
    for (const c of own) await c.close();
    await failover?.stop();
  });

  it('serves every read through a kill -9 of a master, then runs on its promoted replica', async () => {
    const open = () => {
      const c = new Cache({ name: 'fo', redis: failover.url, redisTimeoutMs: 300 });
      own.push(c);
      return c;
    };
    const a = open();
    const b = open();
    await Promise.all([a.ready(), b.ready()]);
    for (let i = 0; i < 100; i++) await a.set(`k${i}`, { i });
    // Every write is on the replicas before the kill (replication is asynchronous).
    for (const n of failover.nodes) {
      const m = new Redis(n.url);
      try {
        assert.equal(await m.call('WAIT', '1', '5000'), 1);
      } finally {
        m.disconnect();
      }
    }
    await failover.nodes[0]!.kill();
    const killedAt = Date.now();
    // Reads go on (L1, else Redis, else the loader), none fails, each bounded; writes fail
    // fast until a replica takes over, then succeed again.
    let reads = 0;
    let slowest = 0;
    let writable: number | undefined;
    while (writable === undefined && Date.now() - killedAt < 20_000) {
      const t = Date.now();
      const i = reads % 100;
      assert.deepEqual(await b.getOrLoad(`k${i}`, async () => ({ i })), { i });
      slowest = Math.max(slowest, Date.now() - t);
      reads++;
      try {
        await a.set('probe', Date.now());
        writable = Date.now() - killedAt;
      } catch (err) {
        // Whatever the cluster answered meanwhile (CLUSTERDOWN, MOVED, a closed link).
        assert.ok(isPeakError(err, ErrorCodes.CACHE_UNAVAILABLE), String(err));
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(writable !== undefined, 'writes came back within 20 s of the kill');
    // A read waits on its command timeouts (an L2 read and the loaded value's write, 300 ms
    // each), not on the failover (ioredis alone retries a command through it); the bound
    // here is loose so a busy machine does not fail it, a read held by the failover would.
    assert.ok(slowest < 5000, `slowest read ${slowest} ms`);
    const promoted = new Redis(failover.replicas[0]![0]!.url);
    try {
      assert.match(await promoted.info('replication'), /role:master/);
    } finally {
      promoted.disconnect();
    }
    // Nothing written before the kill was lost: a fresh instance finds all 100 in Redis.
    const c = open();
    await c.ready();
    let loads = 0;
    for (let i = 0; i < 100; i++)
      assert.deepEqual(
        await c.getOrLoad(`k${i}`, async () => {
          loads++;
          return { i };
        }),
        { i },
      );
    assert.equal(loads, 0, 'every key survived on the promoted replica');
    // And invalidations reach the other instances again.
    await a.set('after', 'v2');
    await waitFor(
      'b saw the write after the failover',
      async () => (await b.get('after')) === 'v2',
    );
  });
});
