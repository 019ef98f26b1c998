import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../../test/support/fake-clock.js';
import { BlockError } from './block-error.js';
import type { BreakerStateChange } from './circuit-breaker.js';
import { Guard, type GuardOptions } from './guard.js';

/** A guard on a fake clock: recovery timeouts and response times are stepped, not slept. */
function guardAt(rules: GuardOptions['rules']): { guard: Guard; clock: FakeClock } {
  const clock = new FakeClock();
  return { guard: new Guard({ rules, clock: clock.read }), clock };
}

function transitions(guard: Guard): string[] {
  const seen: string[] = [];
  guard.on('breaker', (c: BreakerStateChange) => seen.push(`${c.from}>${c.to}`));
  return seen;
}

// Stat intervals are aligned buckets (as in Sentinel): a boundary between two calls resets the
// counts, so the tests use an hour-long interval rather than the 1 s default.
const HOUR = 3_600_000;

const fail = () => {
  throw new Error('downstream failed');
};

describe('circuit breakers', () => {
  it('error ratio: closed → open → half-open → open → half-open → closed', async () => {
    const { guard, clock } = guardAt({
      degrade: [
        {
          resource: 'pay',
          strategy: 'error-ratio',
          threshold: 0.5,
          minRequestAmount: 5,
          recoveryTimeoutMs: 300,
          statIntervalMs: HOUR,
        },
      ],
    });
    const seen = transitions(guard);
    // 4 calls do not reach minRequestAmount: still closed.
    for (let i = 0; i < 4; i++) await assert.rejects(guard.run('pay', fail), /downstream failed/);
    assert.deepEqual(guard.breakerStates('pay'), ['closed']);
    await assert.rejects(guard.run('pay', fail), /downstream failed/);
    assert.deepEqual(seen, ['closed>open']);
    await assert.rejects(
      guard.run('pay', () => 1),
      (e: BlockError) => e.kind === 'degrade',
    );

    clock.advance(299);
    assert.throws(() => guard.entry('pay'), BlockError, 'still open 1 ms before the recovery time');
    clock.advance(1);
    // The first call after the recovery time is the probe; while it runs, others are refused.
    const probe = guard.entry('pay');
    assert.deepEqual(seen, ['closed>open', 'open>half-open']);
    assert.throws(
      () => guard.entry('pay'),
      (e: BlockError) => e.kind === 'degrade',
    );
    probe.exit(new Error('still failing'));
    assert.deepEqual(seen.at(-1), 'half-open>open');
    assert.throws(() => guard.entry('pay'), BlockError);

    clock.advance(300);
    assert.equal(await guard.run('pay', () => 'ok'), 'ok');
    assert.deepEqual(seen, [
      'closed>open',
      'open>half-open',
      'half-open>open',
      'open>half-open',
      'half-open>closed',
    ]);
    // Closed again with fresh counts: one failure does not reopen it.
    await assert.rejects(guard.run('pay', fail));
    assert.deepEqual(guard.breakerStates('pay'), ['closed']);
  });

  it('slow-call ratio opens on slow calls and a fast probe closes it', async () => {
    const { guard, clock } = guardAt({
      degrade: [
        {
          resource: 'slow',
          strategy: 'slow-ratio',
          maxRtMs: 20,
          threshold: 0.5,
          minRequestAmount: 3,
          recoveryTimeoutMs: 200,
          statIntervalMs: HOUR,
        },
      ],
    });
    const seen = transitions(guard);
    // Three calls of 40 ms each (over maxRtMs 20): all slow.
    const calls = [1, 2, 3].map(() => guard.entry('slow'));
    clock.advance(40);
    for (const c of calls) c.exit();
    assert.deepEqual(seen, ['closed>open']);
    await assert.rejects(
      guard.run('slow', () => 1),
      BlockError,
    );
    clock.advance(200);
    // A 20 ms probe is not slow (slow means over maxRtMs): it closes the breaker.
    const probe = guard.entry('slow');
    clock.advance(20);
    probe.exit();
    assert.deepEqual(seen, ['closed>open', 'open>half-open', 'half-open>closed']);
  });

  it('sees the response time of synchronous work on the default (ticker) clock', () => {
    const guard = new Guard({
      rules: {
        degrade: [
          {
            resource: 'cpu',
            strategy: 'slow-ratio',
            maxRtMs: 10,
            threshold: 0.5,
            minRequestAmount: 2,
            recoveryTimeoutMs: 1000,
            statIntervalMs: HOUR,
          },
        ],
      },
    });
    // Real time on purpose: the coarse clock is a ticker thread, so it must move while the
    // main thread is busy. 100 ms of spinning is 10x the slow threshold; a loaded 2-core
    // machine may leave the ticker unscheduled for a few tens of ms, which still leaves
    // every call slow (this bounds the RT from below only).
    for (let i = 0; i < 2; i++) {
      const e = guard.entry('cpu');
      const until = Date.now() + 100;
      while (Date.now() < until) {
        // synchronous work, no await in between
      }
      e.exit();
    }
    assert.deepEqual(guard.breakerStates('cpu'), ['open']);
  });

  it('error count opens past the count within the interval', async () => {
    const { guard } = guardAt({
      degrade: [
        {
          resource: 'ec',
          strategy: 'error-count',
          threshold: 2,
          minRequestAmount: 1,
          recoveryTimeoutMs: 1000,
          statIntervalMs: HOUR,
        },
      ],
    });
    for (let i = 0; i < 2; i++) await assert.rejects(guard.run('ec', fail), /downstream/);
    assert.deepEqual(guard.breakerStates('ec'), ['closed']);
    await assert.rejects(guard.run('ec', fail), /downstream/);
    assert.deepEqual(guard.breakerStates('ec'), ['open']);
  });

  it('a breaker keeps its state when an unrelated rule changes', async () => {
    const degrade = [
      {
        resource: 'k',
        strategy: 'error-count' as const,
        threshold: 0,
        minRequestAmount: 1,
        recoveryTimeoutMs: 10_000,
        statIntervalMs: HOUR,
      },
    ];
    const { guard } = guardAt({ degrade });
    await assert.rejects(guard.run('k', fail));
    assert.deepEqual(guard.breakerStates('k'), ['open']);
    guard.loadRules({ degrade, flow: [{ resource: 'other', count: 5 }] });
    assert.deepEqual(guard.breakerStates('k'), ['open']);
  });
});
