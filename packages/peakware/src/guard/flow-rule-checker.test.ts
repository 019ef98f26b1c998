import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { withContext } from '../core/context.js';
import { BlockError } from './block-error.js';
import { coarseNow } from './coarse-clock.js';
import { Guard } from './guard.js';

/** Waits until the wall clock is just past a whole second (window buckets are epoch-aligned). */
async function alignToSecond(): Promise<number> {
  const wait = 1000 - (Date.now() % 1000);
  await sleep(wait + 2);
  return Date.now() - (Date.now() % 1000);
}

/**
 * Offers `perSecond` calls per second for `seconds` seconds (in 10 ms ticks) and returns the
 * admitted count for each whole second.
 */
async function overload(
  guard: Guard,
  resource: string,
  perSecond: number,
  seconds: number,
): Promise<number[]> {
  const start = await alignToSecond();
  const admitted = new Array<number>(seconds).fill(0);
  const perTick = perSecond / 100;
  let owed = 0;
  for (;;) {
    // Seconds by the guard's own clock: a ticker thread the OS may run a little late on a
    // loaded machine, so Date.now() seconds can straddle two of the guard's.
    const now = coarseNow();
    const sec = Math.floor((now - start) / 1000);
    if (sec >= seconds) break;
    owed += perTick;
    while (owed >= 1) {
      owed--;
      try {
        guard.entry(resource).exit();
        admitted[sec]!++;
      } catch (err) {
        assert.ok(err instanceof BlockError);
      }
    }
    await sleep(10);
  }
  return admitted;
}

describe('flow rules (real time)', () => {
  it('a QPS limit of N admits N ± 5% per second under 10x overload', async () => {
    const guard = new Guard({ rules: { flow: [{ resource: 'r', count: 100 }] } });
    const perSecond = await overload(guard, 'r', 1000, 3);
    for (const n of perSecond)
      assert.ok(n >= 95 && n <= 105, `admitted ${perSecond.join(', ')} per second`);
    const stats = guard.stats('r');
    assert.ok(stats !== undefined && stats.blockQps > 0);
  });

  it('passes from a past second do not count against the current one', async () => {
    const guard = new Guard({ rules: { flow: [{ resource: 'p', count: 5 }] } });
    const held = [1, 2, 3, 4, 5].map(() => guard.entry('p'));
    assert.throws(() => guard.entry('p'), BlockError);
    await sleep(1100);
    for (const e of held) e.exit();
    for (let i = 0; i < 5; i++) guard.entry('p').exit();
    assert.throws(() => guard.entry('p'), BlockError);
    assert.equal(guard.stats('p')?.passQps, 5);
  });

  it('a concurrency limit admits at most N in flight', () => {
    const guard = new Guard({
      rules: { flow: [{ resource: 'c', count: 3, grade: 'concurrency' }] },
    });
    const held = [guard.entry('c'), guard.entry('c'), guard.entry('c')];
    assert.throws(
      () => guard.entry('c'),
      (e: BlockError) => e.code === 'PEAK_GUARD_BLOCKED' && e.kind === 'flow',
    );
    held[0]!.exit();
    guard.entry('c').exit();
  });

  it('warm-up starts at count / coldFactor and climbs along its curve to count', async () => {
    // count 60, 2 s warm-up, cold factor 3: warning 60 tokens, max 120, slope 2/60/60.
    // Thresholds per second: 20, 1/(40*slope + 1/60) = 25.7, 1/(15*slope + 1/60) = 40, then 60.
    const guard = new Guard({
      rules: {
        flow: [
          { resource: 'w', count: 60, behavior: 'warm-up', warmUpPeriodSec: 2, coldFactor: 3 },
        ],
      },
    });
    const perSecond = await overload(guard, 'w', 600, 5);
    const expected = [20, 25, 40, 60, 60];
    perSecond.forEach((n, i) => {
      const e = expected[i]!;
      assert.ok(
        Math.abs(n - e) <= Math.max(3, e * 0.1),
        `second ${i}: admitted ${n}, curve says ${e} (all: ${perSecond.join(', ')})`,
      );
    });
  });

  it('rate-limiter queueing spaces calls evenly and refuses past the maximum wait', async () => {
    const guard = new Guard({
      rules: {
        flow: [{ resource: 'q', count: 20, behavior: 'rate-limiter', maxQueueingTimeMs: 500 }],
      },
    });
    const starts: number[] = [];
    let blocked = 0;
    await Promise.all(
      Array.from({ length: 20 }, () =>
        guard
          .run('q', () => {
            starts.push(performance.now());
          })
          .catch((err: unknown) => {
            assert.ok(err instanceof BlockError && err.kind === 'flow');
            blocked++;
          }),
      ),
    );
    // 50 ms apart, waits 0..500 ms: 11 admitted, 9 refused.
    assert.equal(starts.length, 11);
    assert.equal(blocked, 9);
    const gaps = starts.slice(1).map((t, i) => t - starts[i]!);
    const sorted = [...gaps].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    assert.ok(
      median >= 45 && median <= 58,
      `median gap ${median.toFixed(1)} ms (gaps ${gaps.map((g) => g.toFixed(0)).join(', ')})`,
    );
    // Each call starts near its slot on the 50 ms grid (a late timer on a busy machine
    // makes one gap long and the next short, but the schedule itself must hold).
    starts.forEach((t, i) => {
      const drift = t - (starts[0]! + 50 * i);
      assert.ok(Math.abs(drift) <= 40, `call ${i} is ${drift.toFixed(1)} ms off its slot`);
    });
  });

  it('warm-up + queueing spaces calls at the cold rate first', () => {
    // count 30, cold factor 3: cold threshold 10/s, so 100 ms apart; 350 ms max wait.
    const guard = new Guard({
      rules: {
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
      },
    });
    const entries = [0, 1, 2, 3].map(() => guard.entry('wq'));
    assert.deepEqual(
      entries.map((e) => Math.round(e.waitMs / 10) * 10),
      [0, 100, 200, 300],
    );
    assert.throws(() => guard.entry('wq'), BlockError);
    for (const e of entries) e.exit();
  });

  it('limits per origin: a named app, default and other', () => {
    const guard = new Guard({
      rules: {
        flow: [
          { resource: 'o', count: 2, limitApp: 'cart' },
          { resource: 'o', count: 1, limitApp: 'other' },
        ],
      },
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
    const guard = new Guard({
      rules: {
        flow: [
          { resource: 'write', count: 3, strategy: 'relate', refResource: 'read' },
          { resource: 'db', count: 1, strategy: 'chain', refResource: 'GET /a' },
        ],
      },
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
    const guard = new Guard({ rules: { flow: [{ resource: 'h', count: 0 }] } });
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
