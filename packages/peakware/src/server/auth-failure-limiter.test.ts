import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AuthFailureLimiter } from './auth-failure-limiter.js';

describe('AuthFailureLimiter', () => {
  it('refuses an address after maxFailures in the window, until the oldest leaves it', () => {
    let now = 1_000_000;
    const limiter = new AuthFailureLimiter({ maxFailures: 3, windowMs: 1000, now: () => now });
    for (let i = 0; i < 3; i++) {
      assert.equal(limiter.retryAfterMs('10.0.0.1'), 0);
      limiter.fail('10.0.0.1');
      now += 100;
    }
    // Failures at 0, 100, 200 ms; now 300: the first leaves the window at 1000.
    assert.equal(limiter.retryAfterMs('10.0.0.1'), 700);
    assert.equal(limiter.retryAfterMs('10.0.0.2'), 0, 'other addresses are not affected');
    now += 700;
    assert.equal(limiter.retryAfterMs('10.0.0.1'), 0);
    assert.equal(limiter.failures, 3);
    assert.equal(limiter.refused, 1);
  });

  it('tracks a bounded number of addresses, dropping the oldest', () => {
    const limiter = new AuthFailureLimiter({ maxFailures: 1, maxAddresses: 2, now: () => 5 });
    limiter.fail('a');
    limiter.fail('b');
    limiter.fail('c');
    assert.equal(limiter.retryAfterMs('a'), 0, 'a was dropped to make room');
    assert.ok(limiter.retryAfterMs('b') > 0);
    assert.ok(limiter.retryAfterMs('c') > 0);
  });
});
