import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createContext } from '../core/context.js';
import type { ServiceInstance } from '../registry/service-instance.js';
import { Endpoint } from './endpoint.js';
import {
  ConsistentHashBalancer,
  LeastActiveBalancer,
  type LoadBalancer,
  P2cEwmaBalancer,
  SmoothRoundRobinBalancer,
  WeightedRandomBalancer,
} from './load-balancer.js';
import { RpcConnection } from './rpc-connection.js';
import type { Invocation } from './rpc-filter.js';

function endpoint(id: string, weight: number, startedAt = 0, warmupMs = 0): Endpoint {
  const instance: ServiceInstance = {
    instanceId: id,
    service: 's',
    version: '1.0.0',
    group: 'default',
    host: '127.0.0.1',
    port: 1000 + Number(id.replace(/\D/g, '') || 0),
    weight,
    tags: [],
    metadata: {},
    status: 'up',
    startedAt,
  };
  return new Endpoint(instance, new RpcConnection(instance.host, instance.port), warmupMs);
}

function invocation(args: unknown = {}): Invocation {
  return {
    side: 'consumer',
    service: 's',
    version: '1.0.0',
    method: 'm',
    args,
    context: createContext(),
    idempotent: true,
  };
}

function counts(lb: LoadBalancer, eps: Endpoint[], n: number, args?: (i: number) => unknown) {
  const c = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const e = lb.select(eps, invocation(args?.(i)));
    c.set(e.instance.instanceId, (c.get(e.instance.instanceId) ?? 0) + 1);
  }
  return c;
}

describe('load balancers', () => {
  it('weighted random follows the weights', () => {
    const eps = [endpoint('a1', 100), endpoint('b2', 300)];
    const c = counts(new WeightedRandomBalancer(), eps, 20_000);
    const share = (c.get('b2') ?? 0) / 20_000;
    assert.ok(share > 0.7 && share < 0.8, `b share ${share}`);
  });

  it('smooth round robin is exact and interleaved (5:1:1 → a a b a c a a)', () => {
    const eps = [endpoint('a1', 5), endpoint('b2', 1), endpoint('c3', 1)];
    const lb = new SmoothRoundRobinBalancer();
    const seq = Array.from(
      { length: 7 },
      () => lb.select(eps, invocation()).instance.instanceId[0],
    ).join('');
    assert.equal(seq, 'aabacaa');
  });

  it('weights changed at runtime apply to the next pick', () => {
    const eps = [endpoint('a1', 100), endpoint('b2', 100)];
    const lb = new SmoothRoundRobinBalancer();
    eps[1]!.instance = { ...eps[1]!.instance, weight: 0 };
    const c = counts(lb, eps, 100);
    assert.equal(c.get('b2'), undefined);
  });

  it('warm-up ramps a new instance from a small share to its full weight', () => {
    const now = Date.now();
    const cold = endpoint('a1', 100, now - 1000, 10_000);
    const warm = endpoint('b2', 100, now - 60_000, 10_000);
    assert.ok(cold.weight(now) >= 9 && cold.weight(now) <= 11, String(cold.weight(now)));
    assert.equal(warm.weight(now), 100);
    assert.equal(cold.weight(now + 9000), 100);
    const c = counts(new SmoothRoundRobinBalancer(), [cold, warm], 1100);
    assert.ok((c.get('a1') ?? 0) < 200, `cold got ${c.get('a1')}`);
  });

  it('least-active picks the endpoint with fewest calls in flight', () => {
    const eps = [endpoint('a1', 100), endpoint('b2', 100), endpoint('c3', 100)];
    eps[0]!.active = 5;
    eps[1]!.active = 1;
    eps[2]!.active = 3;
    assert.equal(new LeastActiveBalancer().select(eps, invocation()).instance.instanceId, 'b2');
  });

  it('p2c-ewma steers away from a slow instance', () => {
    const eps = [endpoint('a1', 100), endpoint('b2', 100)];
    for (let i = 0; i < 10; i++) {
      eps[0]!.record(100);
      eps[1]!.record(2);
    }
    const c = counts(new P2cEwmaBalancer(), eps, 1000);
    assert.equal(c.get('b2'), 1000);
  });

  it('consistent hash is sticky per key and moves few keys when an instance leaves', () => {
    const eps = [
      endpoint('a1', 100),
      endpoint('b2', 100),
      endpoint('c3', 100),
      endpoint('d4', 100),
    ];
    const lb = new ConsistentHashBalancer({ field: 'userId' });
    const before = new Map<number, string>();
    for (let u = 0; u < 2000; u++)
      before.set(u, lb.select(eps, invocation({ userId: u })).instance.instanceId);
    for (let u = 0; u < 200; u++)
      assert.equal(lb.select(eps, invocation({ userId: u })).instance.instanceId, before.get(u));
    const spread = new Set(before.values());
    assert.equal(spread.size, 4);
    const fewer = eps.filter((e) => e.instance.instanceId !== 'c3');
    let moved = 0;
    for (let u = 0; u < 2000; u++) {
      const now = lb.select(fewer, invocation({ userId: u })).instance.instanceId;
      if (before.get(u) !== 'c3' && now !== before.get(u)) moved++;
    }
    assert.equal(moved, 0, 'keys not on the removed instance stay where they were');
  });
});
