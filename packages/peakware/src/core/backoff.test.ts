import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Backoff, backoffDelay, retry, sleep } from './backoff.js';

describe('backoff', () => {
  it('grows by the factor up to the cap, without jitter', () => {
    const o = { initialMs: 100, maxMs: 1000, jitter: 'none' } as const;
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5].map((a) => backoffDelay(a, o)),
      [100, 200, 400, 800, 1000, 1000],
    );
    assert.equal(backoffDelay(10_000, o), 1000, 'a long outage stays at the cap');
  });

  it('jitters: equal keeps [d/2, d], full spans [0, d]', () => {
    const low = () => 0;
    const high = () => 0.999_999;
    assert.equal(backoffDelay(2, { initialMs: 100, random: low }), 200);
    assert.ok(backoffDelay(2, { initialMs: 100, random: high }) > 399.99);
    assert.equal(backoffDelay(2, { initialMs: 100, jitter: 'full', random: low }), 0);
  });

  it('Backoff hands out growing delays until reset', () => {
    const b = new Backoff({ initialMs: 50, maxMs: 400, jitter: 'none' });
    assert.deepEqual([b.next(), b.next(), b.next(), b.next(), b.next()], [50, 100, 200, 400, 400]);
    assert.equal(b.attempt, 5);
    b.reset();
    assert.equal(b.next(), 50);
  });
});

describe('retry', () => {
  it('tries again after each failure, waiting the backoff through the injected sleep', async () => {
    const waits: number[] = [];
    let calls = 0;
    const result = await retry(
      async (attempt) => {
        calls++;
        if (attempt < 2) throw new Error(`fail ${attempt}`);
        return 'ok';
      },
      {
        attempts: 5,
        initialMs: 10,
        jitter: 'none',
        sleep: async (ms) => {
          waits.push(ms);
        },
      },
    );
    assert.equal(result, 'ok');
    assert.equal(calls, 3);
    assert.deepEqual(waits, [10, 20]);
  });

  it('gives up after `attempts` and rethrows the last failure', async () => {
    let calls = 0;
    await assert.rejects(
      retry(
        async (attempt) => {
          calls++;
          throw new Error(`fail ${attempt}`);
        },
        { attempts: 3, sleep: async () => undefined },
      ),
      /fail 2/,
    );
    assert.equal(calls, 3);
  });

  it('stops at once on a failure that is not retryable', async () => {
    let calls = 0;
    await assert.rejects(
      retry(
        async () => {
          calls++;
          throw new Error('bad input');
        },
        { attempts: 5, retryable: () => false, sleep: async () => undefined },
      ),
      /bad input/,
    );
    assert.equal(calls, 1);
  });

  it('an abort during the wait rejects with the reason', async () => {
    const abort = new AbortController();
    const reason = new Error('closing');
    const p = retry(
      async () => {
        throw new Error('down');
      },
      { attempts: 5, initialMs: 60_000, signal: abort.signal },
    );
    abort.abort(reason);
    await assert.rejects(p, (err) => err === reason);
  });

  it('sleep rejects at once when its signal has already aborted', async () => {
    const abort = new AbortController();
    abort.abort(new Error('gone'));
    await assert.rejects(sleep(60_000, abort.signal), /gone/);
  });
});
