import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type pg from 'pg';
import { waitFor } from '../../../test/support/wait.js';
import { silentLogger } from '../../core/logger.js';
import type { InstanceProbe } from '../../registry/instance-probe.js';
import type { ServiceInstance } from '../../registry/service-instance.js';
import { PolledRegistry } from './polled-registry.js';

const instance = (id: string): ServiceInstance => ({
  instanceId: id,
  service: 'test.branch',
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
const ids = (l: readonly ServiceInstance[]) => l.map((i) => i.instanceId).join(',');

describe("PolledRegistry: the coordinator's view of the providers", () => {
  /** A registry over a store whose listing is `store.list`, polled every 20 ms. */
  function polled(dead: Set<string>) {
    const store = { list: [instance('a'), instance('b')] };
    const probe: InstanceProbe = async (i) => !dead.has(i.instanceId);
    const registry = new PolledRegistry(
      {} as pg.Pool,
      async () => store.list,
      silentLogger(),
      20,
      probe,
    );
    const seen: string[] = [];
    const sub = registry.subscribe('default/test.branch:1.0.0', (l) => seen.push(ids(l)));
    return { store, registry, sub, seen };
  }

  it('holds the known providers when the store lists none (leases lapsed), and takes them back', async () => {
    const { store, registry, sub, seen } = polled(new Set());
    try {
      await waitFor('the first list', async () => ids(sub.current()) === 'a,b');
      store.list = [];
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(ids(sub.current()), 'a,b', `held: ${seen.join(' | ')}`);
      assert.ok(!seen.includes(''), `never served empty: ${seen.join(' | ')}`);
      // The providers register again: the list is the truth once more.
      store.list = [instance('a'), instance('b')];
      await waitFor('the list again', async () => seen.at(-1) === 'a,b');
      store.list = [instance('a')];
      await waitFor('a shrunken list taken as it is', async () => ids(sub.current()) === 'a');
    } finally {
      sub.close();
      await registry.close();
    }
  });

  it('drops a held provider that fails its probe', async () => {
    const dead = new Set(['a']);
    const { store, registry, sub } = polled(dead);
    try {
      await waitFor('the first list', async () => ids(sub.current()) === 'a,b');
      store.list = [];
      await waitFor('only the live one held', async () => ids(sub.current()) === 'b');
    } finally {
      sub.close();
      await registry.close();
    }
  });
});
