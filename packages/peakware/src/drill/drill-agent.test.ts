import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InMemoryConfigSource } from '../config/config-source.js';
import { createContext, runWithContext } from '../core/context.js';
import { isPeakError } from '../core/errors.js';
import { type Invocation, runFilters } from '../rpc/rpc-filter.js';
import { type AgentReport, DrillAgent } from './drill-agent.js';
import type { FaultSpec } from './fault-spec.js';
import { rpcFaultFilter } from './rpc-faults.js';

function setup(opts: { reportFails?: () => boolean } = {}) {
  const config = new InMemoryConfigSource();
  let now = 1_700_000_000_000;
  const reports: AgentReport[] = [];
  const agent = new DrillAgent({
    config,
    app: 'shop',
    instanceId: 'inv-1',
    clock: () => now,
    random: () => 0.5,
    unreachableMs: 5000,
    reporter: async (r) => {
      if (opts.reportFails?.() === true) throw new Error('unreachable');
      reports.push(r);
    },
  });
  const publish = (faults: Partial<FaultSpec>[]) =>
    config.set(
      'drill/faults',
      JSON.stringify({
        faults: faults.map((f, i) => ({
          id: `f${i}`,
          kind: 'error',
          point: 'rpc-server',
          durationMs: 10_000,
          boots: [agent.boot],
          createdAt: now,
          ...f,
        })),
      }),
    );
  return { config, agent, publish, reports, advance: (ms: number) => (now += ms) };
}

const call = (service = 'inventory', method = 'reserve'): Invocation => ({
  side: 'provider',
  service,
  version: '1',
  method,
  args: {},
  context: createContext(),
  idempotent: false,
});

describe('DrillAgent', () => {
  it('holds only the faults aimed at its boot, matched by service and method', async () => {
    const { agent, publish } = setup();
    agent.start();
    publish([
      {
        id: 'mine',
        match: { service: 'inventory', method: 'reserve' },
        code: 'PEAK_RPC_UNAVAILABLE',
      },
      { id: 'other', boots: ['someone-else'] },
    ]);
    assert.deepEqual(
      agent.active().map((f) => f.id),
      ['mine'],
    );
    const filter = rpcFaultFilter(agent, 'provider');
    await assert.rejects(
      runFilters([filter], call(), async () => 'ok'),
      (err) => isPeakError(err) && err.code === 'PEAK_RPC_UNAVAILABLE',
    );
    assert.equal(await runFilters([filter], call('inventory', 'release'), async () => 'ok'), 'ok');
    assert.equal(await runFilters([filter], call('order'), async () => 'ok'), 'ok');
    await agent.close();
  });

  it('reverts on expiry, on stop, and never takes an ended fault up again', async () => {
    const { agent, publish, advance } = setup();
    agent.start();
    publish([{ id: 'a', durationMs: 1000 }, { id: 'b' }]);
    assert.equal(agent.active().length, 2);
    advance(1000);
    assert.deepEqual(
      agent.active().map((f) => f.id),
      ['b'],
    );
    publish([{ id: 'a', durationMs: 1000 }]); // b stopped; a already ended stays ended
    assert.equal(agent.active().length, 0);
    const ended = agent.report().ended.map((f) => [f.id, f.ended?.reason]);
    assert.deepEqual(ended, [
      ['a', 'expired'],
      ['b', 'stopped'],
    ]);
    await agent.close();
  });

  it('reverts everything when no report got through for the bound', async () => {
    let down = false;
    const { agent, publish, advance } = setup({ reportFails: () => down });
    agent.start();
    await agent.tick();
    publish([{ id: 'a', durationMs: 60_000 }]);
    down = true;
    advance(4000);
    await agent.tick();
    assert.equal(agent.active().length, 1, 'still within the bound');
    advance(1500);
    await agent.tick();
    assert.equal(agent.active().length, 0);
    assert.equal(agent.report().ended[0]?.ended?.reason, 'unreachable');
    await agent.close();
  });

  it('scopes calls by caller, stress traffic and percentage', async () => {
    const { agent, publish } = setup();
    agent.start();
    publish([
      { id: 'c', scope: { callers: ['gateway'], stressOnly: true } },
      { id: 'p', match: { service: 'p' }, scope: { percent: 40 } },
    ]);
    assert.equal(agent.find('rpc-server', { service: 'x' }), undefined);
    const stressFromGateway = createContext({ stress: true, callerApp: 'gateway' });
    assert.equal(
      runWithContext(stressFromGateway, () => agent.find('rpc-server', { service: 'x' }))?.id,
      'c',
    );
    // random() is 0.5: 50 >= 40, so the 40 % fault skips this call
    assert.equal(agent.find('rpc-server', { service: 'p' }), undefined);
    await agent.close();
  });

  it('reports what it holds, and a new agent (a restart) holds nothing', async () => {
    const { agent, publish, reports, config } = setup();
    agent.start();
    publish([{ id: 'a' }]);
    await agent.tick();
    assert.deepEqual(
      reports.at(-1)?.active.map((f) => f.id),
      ['a'],
    );
    await agent.close();
    const again = new DrillAgent({
      config,
      app: 'shop',
      instanceId: 'inv-1',
      reporter: async () => {},
    });
    again.start();
    assert.equal(again.active().length, 0);
    await again.close();
  });
});
