import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { BlockError } from './block-error.js';
import type { Entry } from './entry.js';
import { Guard } from './guard.js';

const isSystem = (e: unknown) => e instanceof BlockError && e.kind === 'system';

describe('system protection (real time)', () => {
  it('counts inbound calls only, and limits concurrency and QPS', () => {
    const guard = new Guard({
      rules: { system: [{ maxConcurrency: 2 }, { maxQps: 5, maxConcurrency: 10 }] },
    });
    const a = guard.entry('x', { type: 'in' });
    const b = guard.entry('y', { type: 'in' });
    assert.throws(() => guard.entry('z', { type: 'in' }), isSystem);
    // Outbound calls are not system-protected.
    guard.entry('z').exit();
    a.exit();
    b.exit();
    for (let i = 0; i < 3; i++) guard.entry('x', { type: 'in' }).exit();
    assert.throws(() => guard.entry('x', { type: 'in' }), isSystem);
  });

  it('trips on average RT and recovers once the window has passed', async () => {
    const guard = new Guard({ rules: { system: [{ maxAvgRtMs: 20 }] } });
    await Promise.all([1, 2, 3].map(() => guard.run('slow', () => sleep(40), { type: 'in' })));
    await assert.rejects(
      guard.run('fast', () => 1, { type: 'in' }),
      isSystem,
    );
    await sleep(1100);
    assert.equal(await guard.run('fast', () => 1, { type: 'in' }), 1);
  });

  it('trips on event-loop lag when calls queue (BBR), and recovers when the lag is gone', async () => {
    const guard = new Guard({
      systemSampleIntervalMs: 50,
      rules: { system: [{ maxEventLoopLagMs: 15 }] },
    });
    try {
      // Saturate: calls stay in flight while the event loop is blocked in 40 ms slices.
      const inflight: Entry[] = [];
      for (let i = 0; i < 5; i++) inflight.push(guard.entry('busy', { type: 'in' }));
      const until = Date.now() + 600;
      while (Date.now() < until) {
        const sliceEnd = Date.now() + 40;
        while (Date.now() < sliceEnd) {
          // busy
        }
        await new Promise((r) => setImmediate(r));
      }
      assert.ok(
        guard.systemSample().eventLoopLagMs > 15,
        `lag ${guard.systemSample().eventLoopLagMs}`,
      );
      assert.throws(() => guard.entry('busy', { type: 'in' }), isSystem);
      for (const e of inflight) e.exit();
      // Recovery: the loop is idle again, the next samples show little lag.
      await sleep(300);
      assert.ok(
        guard.systemSample().eventLoopLagMs < 15,
        `lag ${guard.systemSample().eventLoopLagMs}`,
      );
      guard.entry('busy', { type: 'in' }).exit();
    } finally {
      guard.close();
    }
  });

  it('lag alone does not trip while calls are not queueing (BBR passes)', async () => {
    const guard = new Guard({
      systemSampleIntervalMs: 50,
      rules: { system: [{ maxEventLoopLagMs: 15 }] },
    });
    try {
      const until = Date.now() + 300;
      while (Date.now() < until) {
        const sliceEnd = Date.now() + 40;
        while (Date.now() < sliceEnd) {
          // busy
        }
        await new Promise((r) => setImmediate(r));
      }
      assert.ok(
        guard.systemSample().eventLoopLagMs > 15,
        `lag ${guard.systemSample().eventLoopLagMs}`,
      );
      // One call in flight (nothing queueing): BBR lets it through.
      guard.entry('calm', { type: 'in' }).exit();
    } finally {
      guard.close();
    }
  });
});
