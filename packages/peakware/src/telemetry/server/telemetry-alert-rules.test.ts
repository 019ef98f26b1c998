import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isPeakError } from '../../core/errors.js';
import { type AlertRuleInput, DEFAULT_BURN_FACTOR, validateRule } from './telemetry-alert-rules.js';

describe('validateRule', () => {
  it('fills the defaults of each kind and keeps only the fields that apply', () => {
    assert.deepEqual(validateRule({ name: 'slow', kind: 'p99', service: 'order', threshold: 25 }), {
      name: 'slow',
      kind: 'p99',
      service: 'order',
      threshold: 25,
      minQps: 0,
      windowSeconds: 60,
      forSeconds: 0,
    });
    assert.deepEqual(
      validateRule({ name: 'slo', kind: 'burn-rate', service: 'order', objective: 0.999 }),
      {
        name: 'slo',
        kind: 'burn-rate',
        service: 'order',
        objective: 0.999,
        threshold: DEFAULT_BURN_FACTOR,
        minQps: 0,
        windowSeconds: 3600,
        shortWindowSeconds: 300,
        forSeconds: 0,
      },
    );
    assert.deepEqual(
      validateRule({
        name: 'lag',
        kind: 'mq-backlog',
        group: 'billing',
        topic: 'orders',
        threshold: 20,
        forSeconds: 5,
        webhook: 'https://hooks.example/alert',
      }),
      {
        name: 'lag',
        kind: 'mq-backlog',
        group: 'billing',
        topic: 'orders',
        threshold: 20,
        minQps: 0,
        windowSeconds: 60,
        forSeconds: 5,
        webhook: 'https://hooks.example/alert',
      },
    );
    const short = validateRule({
      name: 'fast-slo',
      kind: 'burn-rate',
      service: 'order',
      objective: 0.99,
      windowSeconds: 60,
    });
    assert.equal(short.shortWindowSeconds, 5, '1/12 of the long window');
  });

  it('refuses a rule that cannot work, naming the rule and the field', () => {
    const cases: [AlertRuleInput, RegExp][] = [
      [{ name: 'a', kind: 'p99', threshold: 5 }, /alert rule a: a p99 rule needs 'service'/],
      [{ name: 'a', kind: 'p99', service: 's' }, /needs 'threshold' \(ms\)/],
      [{ name: 'a', kind: 'error-rate', service: 's', threshold: 2 }, /fraction 0\.\.1, got 2/],
      [{ name: 'a', kind: 'mq-backlog', group: 'g', threshold: 5 }, /needs 'group'.*and 'topic'/],
      [
        { name: 'a', kind: 'mq-backlog', group: 'g', topic: 't', threshold: 2.5 },
        /whole number of messages/,
      ],
      [
        { name: 'a', kind: 'mq-backlog', group: 'g', topic: 't', service: 's', threshold: 1 },
        /'service' does not apply to an mq-backlog rule/,
      ],
      [
        { name: 'a', kind: 'p99', service: 's', group: 'g', threshold: 1 },
        /'group' belongs to mq-backlog rules, not p99/,
      ],
      [
        { name: 'a', kind: 'burn-rate', service: 's', objective: 1 },
        /strictly between 0 and 1.*got 1/,
      ],
      [{ name: 'a', kind: 'burn-rate', service: 's' }, /needs 'objective'.*got undefined/],
      [
        { name: 'a', kind: 'burn-rate', service: 's', objective: 0.9, threshold: 0 },
        /burn factor 'threshold' must be > 0/,
      ],
      [
        {
          name: 'a',
          kind: 'burn-rate',
          service: 's',
          objective: 0.9,
          windowSeconds: 60,
          shortWindowSeconds: 60,
        },
        /shortWindowSeconds \(60\) must be shorter than windowSeconds \(60\)/,
      ],
      [
        { name: 'a', kind: 'p99', service: 's', threshold: 5, objective: 0.9 },
        /'objective' belongs to burn-rate rules, not p99/,
      ],
      [
        { name: 'a', kind: 'mq-backlog', group: 'g', topic: 't', resource: 'r', threshold: 5 },
        /'resource' \(pushed metrics\) applies to p99, error-rate and burn-rate rules, not mq-backlog/,
      ],
      [
        { name: 'a', kind: 'error-rate', service: 's', resource: 'r', endpoint: 'e', threshold: 1 },
        /'resource' .* or 'endpoint' .*, not both/,
      ],
      [
        { name: 'a', kind: 'p99', service: 's', threshold: 5, webhook: 'ftp://x' },
        /webhook must be an http\(s\) URL, got 'ftp:\/\/x'/,
      ],
    ];
    for (const [input, message] of cases) {
      assert.throws(
        () => validateRule(input),
        (err: unknown) =>
          isPeakError(err, 'PEAK_INVALID_ARGUMENT') && message.test((err as Error).message),
        JSON.stringify(input),
      );
    }
  });
});
