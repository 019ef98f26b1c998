import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { waitFor } from '../../test/support/wait.js';
import type { InstanceProbe } from './instance-probe.js';
import { ListProtection } from './list-protection.js';
import type { ServiceInstance } from './service-instance.js';

const instance = (id: string): ServiceInstance => ({
  instanceId: id,
  service: 'test.protect',
  version: '1.0.0',
  group: 'default',
  host: '127.0.0.1',
  port: 1,
  weight: 100,
  tags: [],
  metadata: {},
  status: 'up',
  startedAt: 0,
});
const list = (...ids: string[]) => ids.map(instance);
const ids = (l: readonly ServiceInstance[] | undefined) =>
  (l ?? [])
    .map((i) => i.instanceId)
    .sort()
    .join(',');

describe('ListProtection: empty and shrunken lists from a reconnected stream', () => {
  const open: ListProtection[] = [];
  afterEach(() => {
    for (const p of open.splice(0)) p.close();
  });

  /** A protection whose probe says the instances in `dead` are down; records what it serves. */
  function protection(graceMs = 60_000) {
    const dead = new Set<string>();
    const probed: string[] = [];
    const probe: InstanceProbe = async (i) => {
      probed.push(i.instanceId);
      return !dead.has(i.instanceId);
    };
    const served: ServiceInstance[][] = [];
    const p = new ListProtection(
      { key: 'default/test.protect:1.0.0', share: 0.5, graceMs, probeEveryMs: 10, probe },
      (l) => served.push(l),
    );
    open.push(p);
    return { p, dead, probed, served, last: () => served.at(-1) };
  }

  it('serves the known instances beside a shrunken first list, and drops those whose probe fails', async () => {
    const t = protection();
    t.p.offer(list('a', 'b', 'c', 'd', 'f'), true, undefined);
    assert.equal(ids(t.last()), 'a,b,c,d,f');
    t.dead.add('d');
    // A reconnected stream brings 1 of 5 (under half): the known ones stay, probed.
    t.p.offer(list('a'), true, t.last());
    assert.ok(t.p.holding);
    assert.equal(ids(t.last()), 'a,b,c,d,f');
    await waitFor('the dead instance dropped', () => ids(t.last()) === 'a,b,c,f');
    assert.ok(!t.probed.includes('a'), 'an instance the list holds is not probed');
    // Providers register again one by one: still under half, still merged.
    t.p.offer(list('a', 'e'), false, t.last());
    assert.equal(ids(t.last()), 'a,b,c,e,f');
    // A list with at least half of the known ones is the truth again.
    t.p.offer(list('a', 'b', 'c'), false, t.last());
    assert.ok(!t.p.holding);
    assert.equal(ids(t.last()), 'a,b,c');
  });

  it('holds an empty first list the same way (empty-push protection)', async () => {
    const t = protection();
    t.p.offer(list('a', 'b'), true, undefined);
    t.p.offer([], true, t.last());
    assert.ok(t.p.holding);
    assert.equal(ids(t.last()), 'a,b');
    t.dead.add('a');
    t.dead.add('b');
    await waitFor('every dead instance dropped', () => t.last()?.length === 0);
  });

  it('takes the latest list as it is when the grace period ends', async () => {
    const t = protection(50);
    t.p.offer(list('a', 'b', 'c'), true, undefined);
    t.p.offer(list('a'), true, t.last());
    assert.equal(ids(t.last()), 'a,b,c');
    await waitFor('the grace period over', () => !t.p.holding);
    assert.equal(ids(t.last()), 'a');
  });

  it('takes a shrunken list on a live stream at once (changes there are the truth)', () => {
    const t = protection();
    t.p.offer(list('a', 'b', 'c', 'd'), true, undefined);
    t.p.offer(list('a'), false, t.last());
    assert.ok(!t.p.holding);
    assert.equal(ids(t.last()), 'a');
    assert.deepEqual(t.probed, []);
  });

  it('holds an empty list on a live stream (leases run out while the providers answer)', async () => {
    const t = protection();
    t.p.offer(list('a', 'b'), true, undefined);
    t.p.offer([], false, t.last());
    assert.ok(t.p.holding);
    assert.equal(ids(t.last()), 'a,b');
    // One really left: its probe fails and it goes; the other registers again.
    t.dead.add('b');
    await waitFor('the instance that left dropped', () => ids(t.last()) === 'a');
    t.p.offer(list('a'), false, t.last());
    assert.ok(!t.p.holding);
    assert.equal(ids(t.last()), 'a');
    // Every provider gone: probed away, the consumers end with the empty list.
    t.p.offer([], false, t.last());
    t.dead.add('a');
    await waitFor('the last instance dropped', () => t.last()?.length === 0);
  });

  it('takes a list of at least the threshold share at once, even first on a reconnected stream', () => {
    const t = protection();
    t.p.offer(list('a', 'b', 'c', 'd'), true, undefined);
    t.p.offer(list('a', 'b'), true, t.last());
    assert.ok(!t.p.holding);
    assert.equal(ids(t.last()), 'a,b');
  });
});
