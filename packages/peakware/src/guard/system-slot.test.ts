import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../../test/support/fake-clock.js';
import { waitFor } from '../../test/support/wait.js';
import { BlockError } from './block-error.js';
import type { Entry } from './entry.js';
import { Guard } from './guard.js';

const isSystem = (e: unknown) => e instanceof BlockError && e.kind === 'system';

describe('system protection', () => {
  it('counts inbound calls only, and limits concurrency and QPS', () => {
    const guard = new Guard({
      clock: new FakeClock().read,
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

  it('trips on average RT and recovers once the window has passed', () => {
    const clock = new FakeClock();
    const guard = new Guard({ clock: clock.read, rules: { system: [{ maxAvgRtMs: 20 }] } });
    // Three inbound calls of 40 ms: the average RT (40) is over 20.
    const calls = [1, 2, 3].map(() => guard.entry('slow', { type: 'in' }));
    clock.advance(40);
    for (const c of calls) c.exit();
    assert.throws(() => guard.entry('fast', { type: 'in' }), isSystem);
    guard.entry('fast').exit(); // outbound: not system-protected
    // The window is 1 s in two 500 ms buckets: the slow calls (in the first bucket) count
    // until the third bucket starts, 1000 ms after the first, and then are gone.
    clock.advance(919);
    assert.throws(() => guard.entry('fast', { type: 'in' }), isSystem);
    clock.advance(41);
    guard.entry('fast', { type: 'in' }).exit();
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
      // Until the sampler has seen the lag (at least 600 ms; at most 10 s on a busy machine).
      const start = Date.now();
      while (
        Date.now() - start < 600 ||
        (guard.systemSample().eventLoopLagMs <= 15 && Date.now() - start < 10_000)
      ) {
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
      // Recovery: the loop is idle again; once the sampler sees the lag gone, calls pass.
      await waitFor(
        () => `the sampled lag to fall under 15 ms (${guard.systemSample().eventLoopLagMs} ms)`,
        () => guard.systemSample().eventLoopLagMs < 15,
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
      const start = Date.now();
      while (
        Date.now() - start < 300 ||
        (guard.systemSample().eventLoopLagMs <= 15 && Date.now() - start < 10_000)
      ) {
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
