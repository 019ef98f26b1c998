import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../../test/support/fake-clock.js';
import { overloadOnClock } from '../../test/support/guard-overload.js';
import { withContext } from '../core/context.js';
import { BlockError } from './block-error.js';
import { Guard, type GuardOptions } from './guard.js';

/** A guard on a fake clock: the tests step time, so every count below is exact. */
function guardAt(rules: GuardOptions['rules']): { guard: Guard; clock: FakeClock } {
  const clock = new FakeClock();
  return { guard: new Guard({ rules, clock: clock.read }), clock };
}

describe('flow rules', () => {
  it('a QPS limit of N admits exactly N per second under 10x overload', () => {
    const { guard, clock } = guardAt({ flow: [{ resource: 'r', count: 100 }] });
    const start = clock.now;
    assert.deepEqual(overloadOnClock(guard, clock, 'r', 1000, 3), [100, 100, 100]);
    // The per-second metrics agree: each second 100 passed and the other 900 were refused.
    assert.deepEqual(
      guard
        .metrics(start - 1)
        .filter((m) => m.resource === 'r')
        .map((m) => [m.second - start, m.pass, m.block]),
      [
        [0, 100, 900],
        [1000, 100, 900],
        [2000, 100, 900],
      ],
    );
  });

  it('passes from a past second do not count against the current one', () => {
    const { guard, clock } = guardAt({ flow: [{ resource: 'p', count: 5 }] });
    const held = [1, 2, 3, 4, 5].map(() => guard.entry('p'));
    assert.throws(() => guard.entry('p'), BlockError);
    clock.advance(999);
    assert.throws(() => guard.entry('p'), BlockError, 'still the same one-second window');
    clock.advance(101);
    for (const e of held) e.exit();
    for (let i = 0; i < 5; i++) guard.entry('p').exit();
    assert.throws(() => guard.entry('p'), BlockError);
    assert.equal(guard.stats('p')?.passQps, 5);
  });

  it('a concurrency limit admits at most N in flight', () => {
    const { guard } = guardAt({ flow: [{ resource: 'c', count: 3, grade: 'concurrency' }] });
    const held = [guard.entry('c'), guard.entry('c'), guard.entry('c')];
    assert.throws(
      () => guard.entry('c'),
      (e: BlockError) => e.code === 'PEAK_GUARD_BLOCKED' && e.kind === 'flow',
    );
    held[0]!.exit();
    guard.entry('c').exit();
  });

  it('warm-up starts at count / coldFactor and climbs along its curve to count', () => {
    // count 60, 2 s warm-up, cold factor 3: warning 60 tokens, max 120, slope 2/60/60.
    // Thresholds per second: 20, 1/(40*slope + 1/60) = 25.7, 1/(15*slope + 1/60) = 40, then 60.
    const { guard, clock } = guardAt({
      flow: [{ resource: 'w', count: 60, behavior: 'warm-up', warmUpPeriodSec: 2, coldFactor: 3 }],
    });
    assert.deepEqual(overloadOnClock(guard, clock, 'w', 600, 5), [20, 25, 40, 60, 60]);
  });

  it('rate-limiter queueing spaces calls evenly and refuses past the maximum wait', () => {
    const { guard } = guardAt({
      flow: [{ resource: 'q', count: 20, behavior: 'rate-limiter', maxQueueingTimeMs: 500 }],
    });
    // 20 calls at one instant: one every 50 ms, waits 0..500 ms admitted, the rest refused.
    const waits: number[] = [];
    let blocked = 0;
    for (let i = 0; i < 20; i++) {
      try {
        const e = guard.entry('q');
        waits.push(e.waitMs);
        e.exit();
      } catch (err) {
        assert.ok(err instanceof BlockError && err.kind === 'flow');
        blocked++;
      }
    }
    assert.deepEqual(waits, [0, 50, 100, 150, 200, 250, 300, 350, 400, 450, 500]);
    assert.equal(blocked, 9);
  });

  it('an entry is ready once the guard clock reaches its slot', async () => {
    const { guard, clock } = guardAt({
      flow: [{ resource: 'slot', count: 10, behavior: 'rate-limiter', maxQueueingTimeMs: 1000 }],
    });
    guard.entry('slot').exit();
    const second = guard.entry('slot');
    assert.equal(second.waitMs, 100);
    clock.advance(100);
    const state = await Promise.race([
      second.ready().then(() => 'ready'),
      new Promise((r) => setImmediate(() => r('waiting'))),
    ]);
    assert.equal(state, 'ready', 'ready() measures the wait on the guard clock');
    second.exit();
  });

  it('warm-up + queueing spaces calls at the cold rate first', () => {
    // count 30, cold factor 3: cold threshold 10/s, so 100 ms apart; 350 ms max wait.
    const { guard } = guardAt({
      flow: [
        {
          resource: 'wq',
          count: 30,
          behavior: 'warm-up-rate-limiter',
          warmUpPeriodSec: 2,
          coldFactor: 3,
          maxQueueingTimeMs: 350,
        },
      ],
    });
    const entries = [0, 1, 2, 3].map(() => guard.entry('wq'));
    assert.deepEqual(
      entries.map((e) => e.waitMs),
      [0, 100, 200, 300],
    );
    assert.throws(() => guard.entry('wq'), BlockError);
    for (const e of entries) e.exit();
  });

  it('limits per origin: a named app, default and other', () => {
    const { guard } = guardAt({
      flow: [
        { resource: 'o', count: 2, limitApp: 'cart' },
        { resource: 'o', count: 1, limitApp: 'other' },
      ],
    });
    withContext({ callerApp: 'cart' }, () => {
      guard.entry('o').exit();
      guard.entry('o').exit();
      assert.throws(() => guard.entry('o'), BlockError);
    });
    // 'coupon' is not named: the `other` rule applies to it alone.
    guard.entry('o', { origin: 'coupon' }).exit();
    assert.throws(() => guard.entry('o', { origin: 'coupon' }), BlockError);
    guard.entry('o', { origin: 'promo' }).exit();
    // No origin: neither rule applies.
    for (let i = 0; i < 10; i++) guard.entry('o').exit();
  });

  it('relate reads another resource; chain limits calls through one entrance only', async () => {
    const { guard } = guardAt({
      flow: [
        { resource: 'write', count: 3, strategy: 'relate', refResource: 'read' },
        { resource: 'db', count: 1, strategy: 'chain', refResource: 'GET /a' },
      ],
    });
    guard.entry('write').exit();
    for (let i = 0; i < 3; i++) guard.entry('read').exit();
    assert.throws(() => guard.entry('write'), BlockError);

    await guard.run('GET /a', () => guard.run('db', () => 1));
    await assert.rejects(
      guard.run('GET /a', () => guard.run('db', () => 1)),
      BlockError,
    );
    // Through another entrance the chain rule does not apply.
    for (let i = 0; i < 3; i++) await guard.run('GET /b', () => guard.run('db', () => 1));
  });

  it('runs the block handler and the fallback of a resource', async () => {
    const { guard } = guardAt({ flow: [{ resource: 'h', count: 0 }] });
    guard.setHandlers<string>('h', { onBlock: (err) => `blocked:${err.kind}` });
    assert.equal(await guard.run('h', () => 'ran'), 'blocked:flow');
    guard.setHandlers<string>('f', { fallback: (err) => `fallback:${(err as Error).message}` });
    assert.equal(
      await guard.run('f', () => {
        throw new Error('boom');
      }),
      'fallback:boom',
    );
  });
});
