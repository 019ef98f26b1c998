/**
 * Scaling on a policy across real processes: the control plane's evaluator (every 300 ms
 * here) reads a cpu policy from the config center and the supervisor's CPU figures; load
 * on the service scales it out to max, and once the load stops it scales back in after
 * the scale-down window, each decision recorded with its figures. Bad policies are
 * refused with their path. No timing is asserted: the waits are bounds for a loaded
 * machine.
 */
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { pruneScaleState } from '../src/scale/server/scale-worker.js';
import { APP, type ScaleStack, SERVICE, startScaleStack } from './scale-fixture-stack.js';
import type { PeakProcess } from './support/peak-process.js';
import { waitFor } from './support/wait.js';

describe('scaling policies', { timeout: 240_000 }, () => {
  let stack: ScaleStack;
  let burn: string;
  let supervisor: PeakProcess;

  before(async () => {
    stack = await startScaleStack({
      instances: 1,
      env: { BURN_FILE: 'burn' },
      server: { scale: { intervalMs: 300 } },
    });
    burn = path.join(stack.dir, 'burn');
    supervisor = await stack.supervise();
    await waitFor(
      'one instance running',
      async () => (await stack.instances('running')).length === 1,
    );
  });

  after(async () => {
    await stack?.stop();
  });

  it('refuses a bad policy with its path, through the scale API and through the config center', async () => {
    await assert.rejects(
      stack.admin.scale.setPolicy(APP, SERVICE, { metric: 'cpu', target: 50, min: 4, max: 2 }),
      { code: 'PEAK_SCALE_INVALID', message: /\$\.min must not be above max/ },
    );
    await assert.rejects(
      stack.admin.scale.setPolicy(APP, SERVICE, { metric: 'load' as never, target: 50, max: 2 }),
      {
        code: 'PEAK_SCALE_INVALID',
        message: /\$\.metric must be one of cpu, rt-p99, qps, mq-backlog/,
      },
    );
    await stack.admin.scale.setPolicy(APP, SERVICE, { metric: 'cpu', target: 1000, max: 3 });
    await assert.rejects(
      stack.admin.config.publish(
        { app: APP, group: 'scale', key: SERVICE },
        { value: JSON.stringify({ metric: 'load', target: 50, max: 2 }) },
      ),
      { code: 'PEAK_CONFIG_INVALID', message: /metric/ },
    );
  });

  it('scales out to max under CPU load and back in after the window', async () => {
    await stack.admin.scale.setPolicy(APP, SERVICE, {
      metric: 'cpu',
      // Low, so a loaded machine's share of a core still counts as load (burning 80 %
      // of the wall clock; an idle instance uses 1-3 %).
      target: 10,
      min: 1,
      max: 3,
      step: 2,
      cooldownMs: 1000,
      scaleDownWindowMs: 3000,
    });
    await writeFile(burn, '');
    await waitFor(
      'three instances running',
      async () => (await stack.instances('running')).length === 3,
      60_000,
    );
    const out = (await stack.admin.scale.history(APP, { service: SERVICE })).filter(
      (d) => d.action === 'out',
    );
    assert.ok(out.length >= 1);
    for (const d of out) {
      assert.equal(d.metric, 'cpu');
      assert.ok((d.value ?? 0) > 10, `decided on cpu ${d.value}`);
      assert.ok(d.figures.cpu !== undefined, 'the per-instance CPU figures are recorded');
    }
    assert.equal(out[0]?.desired, 3);
    await rm(burn);
    await waitFor(
      'back to one instance',
      async () => (await stack.instances()).length === 1,
      60_000,
    );
    const [last] = await stack.admin.scale.history(APP, { service: SERVICE, limit: 1 });
    assert.deepEqual([last?.action, last?.desired], ['in', 1]);
    assert.ok((last?.value ?? 100) < 10);
    assert.equal(supervisor.child.exitCode, null);
  });

  it('forgets supervisors silent for a day, keeping the live one', async () => {
    const pool = new pg.Pool({ connectionString: stack.server.postgresUrl(), max: 1 });
    try {
      await pool.query(
        `INSERT INTO peak.scale_supervisors (supervisor_id, app, host, pid, services, instances, reported_at)
         VALUES ('gone/scaletest', $1, 'gone', 1, '[]', '[]', now() - interval '2 days')`,
        [APP],
      );
      await pruneScaleState(pool);
      const ids = (await stack.admin.scale.status(APP)).supervisors.map((x) => x.supervisorId);
      assert.ok(!ids.includes('gone/scaletest'), ids.join());
      assert.equal(ids.length, 1, 'the live supervisor stays');
    } finally {
      await pool.end();
    }
  });
});
