import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type DrillPorts, type DrillSpec, formatDrillReport, runDrill } from './drill-runner.js';

/** Ports over a hand-stepped clock: `errorRate(now)` says what the system does at each moment. */
function ports(errorRate: (atMs: number) => number) {
  let now = 0;
  const log: string[] = [];
  const p: DrillPorts = {
    async inject(_app, faults) {
      log.push(`inject ${faults.length}`);
      return { faults: faults.map((_f, i) => ({ id: `f${i}` })) };
    },
    async stop(_app, drill) {
      log.push(`stop ${drill}`);
      return { stopped: ['f0'] };
    },
    async metrics() {
      return { qps: 100, errorRate: errorRate(now), p99Ms: 20 };
    },
    async custom() {
      return { ok: true, detail: 'books balance' };
    },
    clock: () => now,
    sleep: async (ms) => {
      now += ms;
    },
  };
  return { p, log };
}

const spec: DrillSpec = {
  name: 'd',
  app: 'shop',
  checks: [
    { kind: 'error-rate', service: 'shop.order', max: 0.05 },
    { kind: 'custom', name: 'books' },
  ],
  steps: [
    {
      name: 'fail writes',
      holdMs: 5000,
      faults: [{ kind: 'error', point: 'sql', durationMs: 10_000, scope: { percent: 20 } }],
    },
  ],
  checkEveryMs: 1000,
  recoverMs: 10_000,
};

describe('runDrill', () => {
  it('passes when every check holds, and reports the recovery', async () => {
    const { p, log } = ports(() => 0.01);
    const r = await runDrill(spec, p);
    assert.equal(r.outcome, 'passed');
    assert.equal(r.recoveryMs, 0);
    assert.deepEqual(log, ['inject 1', 'stop d']);
    assert.equal(r.timeline.filter((e) => e.what === 'check').length, 5);
    assert.match(formatDrillReport(r).join('\n'), /PASSED/);
  });

  it('aborts and reverts when a check breaks, and measures the recovery', async () => {
    // errors climb at 3 s into the drill and are back to normal 2 s after the stop
    let stoppedAt = Number.POSITIVE_INFINITY;
    const { p, log } = ports((t) => (t >= 3000 && t < stoppedAt + 2000 ? 0.3 : 0));
    const stop = p.stop;
    p.stop = async (app, drill) => {
      stoppedAt = p.clock();
      return stop(app, drill);
    };
    const r = await runDrill(spec, p);
    assert.equal(r.outcome, 'aborted');
    assert.match(r.broken?.detail ?? '', /30\.0 %/);
    assert.equal(stoppedAt, 3000, 'stopped at the first broken check');
    assert.equal(r.recoveryMs, 2000);
    assert.deepEqual(log, ['inject 1', 'stop d']);
  });

  it('refuses to start when the steady state does not hold', async () => {
    const { p, log } = ports(() => 0.5);
    const r = await runDrill(spec, p);
    assert.equal(r.outcome, 'refused');
    assert.deepEqual(log, []);
  });
});
