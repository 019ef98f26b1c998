/**
 * The guard as the provider-side RPC filter, over real sockets: a service whose work goes
 * through a small pool (2 "connections", 20 ms each) is overloaded by a consumer with 24
 * calls in flight. With a concurrency rule it sheds the excess with PEAK_GUARD_BLOCKED
 * errors the consumer can read, and no admitted call ever waits for the pool; without the
 * guard every call queues at the pool. What that does to latency (the admitted calls' p99
 * against the unguarded median) is measured in `npm run bench -- guard-shedding`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { ErrorCodes, isPeakError } from '../src/core/errors.js';
import { Guard, guardRpcFilter } from '../src/guard/index.js';
import { InMemoryRegistry } from '../src/registry/in-memory-registry.js';
import { defineService, RpcClient, RpcServer } from '../src/rpc/index.js';

const checkout = defineService({
  name: 'shop.checkout',
  version: '1.0.0',
  methods: {
    buy: { input: z.object({ sku: z.string() }), output: z.object({ ok: z.boolean() }) },
  },
});

/**
 * A pool of `size` slots: what a database connection pool does to a service under load.
 * `queued` counts the calls that found every slot taken and had to wait for one.
 */
function pool(size: number) {
  let free = size;
  const waiting: (() => void)[] = [];
  const stats = { queued: 0 };
  const run = async <T>(fn: () => Promise<T>): Promise<T> => {
    if (free > 0) free--;
    else {
      stats.queued++;
      await new Promise<void>((r) => waiting.push(r));
    }
    try {
      return await fn();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else free++;
    }
  };
  return { run, stats };
}

/** Calls for `ms` with `inflight` at a time; latencies of successes and the errors. */
async function load(client: RpcClient, ms: number, inflight: number) {
  const svc = client.service(checkout);
  const latencies: number[] = [];
  const errors: unknown[] = [];
  let next = 0;
  const until = Date.now() + ms;
  const worker = async () => {
    while (Date.now() < until) {
      next++;
      const t = performance.now();
      try {
        await svc.buy({ sku: `sku-${next % 10}` });
        latencies.push(performance.now() - t);
      } catch (err) {
        errors.push(err);
        await sleep(10);
      }
    }
  };
  await Promise.all(Array.from({ length: inflight }, worker));
  return { latencies, errors };
}

describe('guard as an RPC provider filter (real sockets)', { timeout: 60_000 }, () => {
  const registry = new InMemoryRegistry();
  const servers: RpcServer[] = [];
  const pools: Record<string, ReturnType<typeof pool>> = {};
  let guarded: RpcClient;
  let unguarded: RpcClient;
  const guard = new Guard({
    rules: {
      flow: [
        { resource: 'shop.checkout.buy', grade: 'concurrency', count: 2, limitApp: 'default' },
      ],
    },
  });

  before(async () => {
    for (const [group, filters] of [
      ['guarded', [guardRpcFilter(guard)]],
      ['plain', []],
    ] as const) {
      const db = pool(2);
      pools[group] = db;
      const server = new RpcServer({ registry, group, filters: [...filters] });
      server.addService(checkout, {
        buy: () =>
          db.run(async () => {
            await sleep(20);
            return { ok: true };
          }),
      });
      await server.start();
      servers.push(server);
    }
    guarded = new RpcClient({ registry, app: 'gateway', warmupMs: 0, group: 'guarded' });
    unguarded = new RpcClient({ registry, app: 'gateway', warmupMs: 0, group: 'plain' });
  });

  after(async () => {
    await guarded.close();
    await unguarded.close();
    for (const s of servers) await s.stop();
    guard.close();
  });

  it('sheds overload with clear blocked errors; admitted calls never queue at the pool', async () => {
    // Connections up and code warm before measuring.
    await load(guarded, 200, 2);
    await load(unguarded, 200, 2);
    const withGuard = await load(guarded, 1500, 24);
    const without = await load(unguarded, 1500, 24);
    assert.ok(withGuard.errors.length > 0, 'the guard shed nothing');
    for (const err of withGuard.errors) {
      assert.ok(isPeakError(err, ErrorCodes.GUARD_BLOCKED), `unexpected error: ${String(err)}`);
      assert.equal(err.details.kind, 'flow');
      assert.equal(err.details.resource, 'shop.checkout.buy');
      // The client names itself gateway, but nothing proves it: no origin.
      assert.equal(err.details.origin, '');
    }
    assert.ok(withGuard.latencies.length > 0, 'the guard admitted nothing');
    assert.equal(without.errors.length, 0);
    // The rule admits 2 at a time and a call leaves the pool before it leaves the guard, so
    // an admitted call always finds a free slot: its time is the work, never a queue.
    // Without the guard the 24 calls in flight queue behind the pool's 2 slots.
    assert.equal(pools.guarded!.stats.queued, 0, 'an admitted call waited for the pool');
    assert.ok(pools.plain!.stats.queued > 0, 'without the guard nothing queued: no overload');
    assert.equal(guard.stats('shop.checkout.buy')?.concurrency, 0);
  });
});
