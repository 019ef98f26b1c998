import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../../test/support/fake-clock.js';
import { BlockError } from './block-error.js';
import { Guard } from './guard.js';

function admitted(guard: Guard, resource: string, value: unknown, times: number): number {
  let n = 0;
  for (let i = 0; i < times; i++) {
    try {
      guard.entry(resource, { args: [value, 'x'] }).exit();
      n++;
    } catch (err) {
      assert.ok(err instanceof BlockError && err.kind === 'param');
    }
  }
  return n;
}

describe('hot-parameter limits', () => {
  it('throttles the hot value and leaves the others alone; per-value overrides apply', () => {
    const clock = new FakeClock();
    const guard = new Guard({
      clock: clock.read,
      rules: {
        param: [{ resource: 'item', paramIndex: 0, count: 5, items: [{ value: 42, count: 20 }] }],
      },
    });
    assert.equal(admitted(guard, 'item', 'hot', 100), 5);
    for (let i = 0; i < 50; i++) assert.equal(admitted(guard, 'item', `cold-${i}`, 3), 3);
    assert.equal(admitted(guard, 'item', '42', 100), 20);
    // Once more than a whole period (1 s) has passed the hot value's bucket refills, fully.
    clock.advance(1000);
    assert.equal(admitted(guard, 'item', 'hot', 100), 0);
    clock.advance(1);
    assert.equal(admitted(guard, 'item', 'hot', 100), 5);
  });

  it('limits in-flight calls per value (concurrency grade)', () => {
    const guard = new Guard({
      rules: { param: [{ resource: 'c', paramIndex: -1, count: 1, grade: 'concurrency' }] },
    });
    const a = guard.entry('c', { args: ['sku-1'] });
    assert.throws(() => guard.entry('c', { args: ['sku-1'] }), BlockError);
    guard.entry('c', { args: ['sku-2'] }).exit();
    a.exit();
    guard.entry('c', { args: ['sku-1'] }).exit();
  });

  it('tracks a bounded number of values', () => {
    const guard = new Guard({
      rules: { param: [{ resource: 'b', paramIndex: 0, count: 1, maxTrackedValues: 10 }] },
    });
    for (let i = 0; i < 1000; i++) guard.entry('b', { args: [i] }).exit();
    // The oldest values were dropped, so value 0 starts with a full bucket again.
    guard.entry('b', { args: [0] }).exit();
  });

  it('queues per value with the rate-limiter behaviour', () => {
    const guard = new Guard({
      clock: new FakeClock().read,
      rules: {
        param: [
          {
            resource: 'rl',
            paramIndex: 0,
            count: 10,
            behavior: 'rate-limiter',
            maxQueueingTimeMs: 250,
          },
        ],
      },
    });
    const entries = [0, 1, 2].map(() => guard.entry('rl', { args: ['v'] }));
    assert.deepEqual(
      entries.map((e) => e.waitMs),
      [0, 100, 200],
    );
    // The next one would wait 300 ms > 250 ms: refused. Another value is not queued behind.
    assert.throws(() => guard.entry('rl', { args: ['v'] }), BlockError);
    assert.equal(guard.entry('rl', { args: ['w'] }).waitMs, 0);
    for (const e of entries) e.exit();
  });
});
