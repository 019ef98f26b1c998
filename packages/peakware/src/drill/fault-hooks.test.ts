import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RemoteTier } from '../cache/remote-tier.js';
import { InMemoryConfigSource } from '../config/config-source.js';
import type { RoutePlan } from '../data/route-plan.js';
import { faultyRemoteTier } from './cache-faults.js';
import { DrillAgent } from './drill-agent.js';
import type { FaultSpec } from './fault-spec.js';
import { faultyHandler, faultySender } from './mq-faults.js';
import { sqlFaultHook } from './sql-faults.js';

function agentWith(faults: Partial<FaultSpec>[]): DrillAgent {
  const config = new InMemoryConfigSource();
  const agent = new DrillAgent({ config, app: 'a', instanceId: 'i', reporter: async () => {} });
  agent.start();
  config.set(
    'drill/faults',
    JSON.stringify({
      faults: faults.map((f, i) => ({
        id: `f${i}`,
        kind: 'error',
        point: 'sql',
        durationMs: 60_000,
        boots: [agent.boot],
        createdAt: 0,
        ...f,
      })),
    }),
  );
  return agent;
}

const plan = (sql: string, write: boolean, tables: string[]): RoutePlan => ({
  sql,
  kind: write ? 'insert' : 'select',
  write,
  units: [{ dataSource: 'ds1', shard: 0, sql, params: [] }],
  merge: undefined,
  tables,
  reason: 'test',
  shadow: false,
});

describe('fault hooks', () => {
  it('sql: fails the matching writes only, with the chosen code', async () => {
    const agent = agentWith([
      { match: { table: 'orders', writesOnly: true, dataSource: 'ds1' }, code: 'PEAK_DATA_ROUTE' },
    ]);
    const hook = sqlFaultHook(agent);
    await assert.rejects(
      async () => hook(plan('INSERT INTO orders VALUES ($1)', true, ['orders'])),
      { code: 'PEAK_DATA_ROUTE' },
    );
    await hook(plan('SELECT * FROM orders', false, ['orders']));
    await hook(plan('INSERT INTO stock VALUES ($1)', true, ['stock']));
    await agent.close();
  });

  it('sql: a statement pattern slows what it matches', async () => {
    const agent = agentWith([{ kind: 'delay', delayMs: 1, match: { statement: '^select' } }]);
    const hook = sqlFaultHook(agent);
    await hook(plan('SELECT 1', false, []));
    assert.equal(agent.active()[0]?.hits, 1);
    await hook(plan('UPDATE t SET a = 1', true, []));
    assert.equal(agent.active()[0]?.hits, 1);
    await agent.close();
  });

  it('mq: a dropped send never reaches the producer; a failing consume throws (nack)', async () => {
    const agent = agentWith([
      { kind: 'drop', point: 'mq-produce', match: { topic: 'orders' } },
      { kind: 'exception', point: 'mq-consume', match: { topic: 'orders', group: 'points' } },
    ]);
    const sent: string[] = [];
    const sender = faultySender(agent, {
      send: async (topic) => {
        sent.push(topic);
        return { id: '1', topic };
      },
    });
    const dropped = await sender.send('orders', { body: 'x' });
    assert.match(dropped.id, /^dropped-by-/);
    await sender.send('payments', { body: 'y' });
    assert.deepEqual(sent, ['payments']);
    let handled = 0;
    const points = faultyHandler(agent, { topic: 'orders', group: 'points' }, () => {
      handled++;
    });
    const other = faultyHandler(agent, { topic: 'orders', group: 'audit' }, () => {
      handled++;
    });
    const msg = {} as Parameters<typeof points>[0];
    await assert.rejects(points(msg), /injected/);
    await other(msg);
    assert.equal(handled, 1);
    await agent.close();
  });

  it('cache: a dropped read is a miss, a failing one throws; other caches untouched', async () => {
    const agent = agentWith([
      { kind: 'drop', point: 'cache', match: { cache: 'products', key: 'p:' } },
      { point: 'cache', match: { cache: 'prices' }, code: 'PEAK_CACHE_UNAVAILABLE' },
    ]);
    const store = new Map<string, string>([
      ['p:1', 'v'],
      ['q:1', 'w'],
    ]);
    const tier = {
      read: async (key: string) => ({ payload: store.get(key) ?? null, version: 1 }),
    } as unknown as RemoteTier;
    const products = faultyRemoteTier(agent, 'products', tier);
    assert.equal((await products.read('p:1')).payload, null);
    assert.equal((await products.read('q:1')).payload, 'w');
    await assert.rejects(faultyRemoteTier(agent, 'prices', tier).read('p:1'), {
      code: 'PEAK_CACHE_UNAVAILABLE',
    });
    assert.equal((await faultyRemoteTier(agent, 'users', tier).read('p:1')).payload, 'v');
    await agent.close();
  });
});
