import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isPeakError, type PeakError } from '../core/errors.js';
import { RULE_DEFAULTS, type RuleProblem, validateRules } from './rule-validation.js';

/** The problems `validateRules(input)` reports; fails if it accepts the input. */
function problems(input: unknown): RuleProblem[] {
  try {
    validateRules(input);
  } catch (err) {
    assert.ok(isPeakError(err, 'PEAK_GUARD_INVALID_RULES'), `unexpected error: ${String(err)}`);
    return (err as PeakError).details.problems as RuleProblem[];
  }
  assert.fail(`accepted ${JSON.stringify(input)}`);
}

/** Asserts the input is refused with exactly one problem at `path` matching `reason`. */
function refuses(input: unknown, path: string, reason: RegExp): void {
  const found = problems(input);
  assert.equal(found.length, 1, JSON.stringify(found));
  assert.equal(found[0]!.path, path);
  assert.match(found[0]!.reason, reason);
}

describe('validateRules', () => {
  it('fills in the defaults of every kind, written once in RULE_DEFAULTS', () => {
    const resolved = validateRules({
      flow: [{ resource: 'f', count: 10 }],
      degrade: [{ resource: 'd', strategy: 'error-ratio', threshold: 0.5, recoveryTimeoutMs: 5 }],
      param: [{ resource: 'p', paramIndex: 0, count: 3 }],
      system: [{ maxQps: 100 }],
      authority: [{ resource: 'a', strategy: 'deny', origins: ['crawler'] }],
    });
    assert.deepEqual(resolved, {
      flow: [{ resource: 'f', count: 10, ...RULE_DEFAULTS.flow }],
      degrade: [
        {
          resource: 'd',
          strategy: 'error-ratio',
          threshold: 0.5,
          recoveryTimeoutMs: 5,
          ...RULE_DEFAULTS.degrade,
        },
      ],
      param: [{ resource: 'p', paramIndex: 0, count: 3, items: [], ...RULE_DEFAULTS.param }],
      system: [{ maxQps: 100, bbr: true }],
      authority: [{ resource: 'a', strategy: 'deny', origins: ['crawler'] }],
    });
    assert.deepEqual(RULE_DEFAULTS.flow, {
      grade: 'qps',
      limitApp: 'default',
      strategy: 'direct',
      behavior: 'reject',
      warmUpPeriodSec: 10,
      coldFactor: 3,
      maxQueueingTimeMs: 500,
    });
  });

  it('keeps what was given over the defaults, and reads an empty set as no rules', () => {
    const resolved = validateRules({
      flow: [
        {
          resource: 'f',
          count: 5,
          grade: 'qps',
          limitApp: 'cart',
          strategy: 'relate',
          refResource: 'g',
          behavior: 'warm-up',
          warmUpPeriodSec: 2,
          coldFactor: 4,
          cluster: { flowId: 'shop-f', thresholdType: 'avg-local', fallbackToLocalWhenFail: false },
        },
      ],
      param: [{ resource: 'p', paramIndex: -1, count: 1, items: [{ value: 42, count: 9 }] }],
    });
    assert.deepEqual(resolved.flow[0], {
      resource: 'f',
      count: 5,
      grade: 'qps',
      limitApp: 'cart',
      strategy: 'relate',
      refResource: 'g',
      behavior: 'warm-up',
      warmUpPeriodSec: 2,
      coldFactor: 4,
      maxQueueingTimeMs: 500,
      cluster: { flowId: 'shop-f', thresholdType: 'avg-local', fallbackToLocalWhenFail: false },
    });
    assert.deepEqual(resolved.param[0]?.items, [{ value: 42, count: 9 }]);
    assert.deepEqual(validateRules({}), {
      flow: [],
      degrade: [],
      param: [],
      system: [],
      authority: [],
    });
  });

  it('refuses what is not a rule set at all', () => {
    refuses(null, 'rules', /must be an object, got null/);
    refuses([], 'rules', /must be an object, got an array/);
    refuses('flow', 'rules', /must be an object, got "flow"/);
    refuses({ flow: {} }, 'flow', /must be an array of rules, got an object/);
    refuses({ flows: [] }, 'rules.flows', /not a field of this rule.*flow, degrade/);
    refuses({ flow: [7] }, 'flow[0]', /must be an object, got number 7/);
  });

  it('refuses bad flow rules with the path of the field and what it expects', () => {
    refuses({ flow: [{ count: 1 }] }, 'flow[0].resource', /is required \(a non-empty string\)/);
    refuses({ flow: [{ resource: '', count: 1 }] }, 'flow[0].resource', /non-empty string, got ""/);
    refuses({ flow: [{ resource: 'a' }] }, 'flow[0].count', /is required \(a number\)/);
    refuses({ flow: [{ resource: 'a', count: -1 }] }, 'flow[0].count', /must be >= 0, got -1/);
    refuses(
      { flow: [{ resource: 'a', count: Number.POSITIVE_INFINITY }] },
      'flow[0].count',
      /finite number, got number Infinity/,
    );
    refuses({ flow: [{ resource: 'a', count: '5' }] }, 'flow[0].count', /finite number, got "5"/);
    refuses(
      { flow: [{ resource: 'a', count: 1, grade: 'rps' }] },
      'flow[0].grade',
      /one of qps, concurrency, got "rps"/,
    );
    refuses(
      { flow: [{ resource: 'a', count: 1, strategy: 'chain' }] },
      'flow[0].refResource',
      /is required/,
    );
    refuses(
      { flow: [{ resource: 'a', count: 1, coldFactor: 1 }] },
      'flow[0].coldFactor',
      /must be > 1, got 1/,
    );
    refuses(
      { flow: [{ resource: 'a', count: 1, warmUpPeriodSec: 0 }] },
      'flow[0].warmUpPeriodSec',
      /must be > 0, got 0/,
    );
    refuses(
      { flow: [{ resource: 'a', count: 1, grade: 'concurrency', behavior: 'rate-limiter' }] },
      'flow[0].behavior',
      /must be 'reject' for a concurrency rule.*got 'rate-limiter'/,
    );
    refuses(
      { flow: [{ resource: 'a', count: 1, cout: 2 }] },
      'flow[0].cout',
      /not a field of this rule \(fields: resource, count,/,
    );
  });

  it('refuses bad cluster settings and two cluster rules with one flowId', () => {
    refuses(
      { flow: [{ resource: 'a', count: 1, cluster: {} }] },
      'flow[0].cluster.flowId',
      /is required/,
    );
    refuses(
      { flow: [{ resource: 'a', count: 1, cluster: { flowId: 'f', fallbackToLocalWhenFail: 1 } }] },
      'flow[0].cluster.fallbackToLocalWhenFail',
      /must be true or false, got number 1/,
    );
    refuses(
      { flow: [{ resource: 'a', count: 1, grade: 'concurrency', cluster: { flowId: 'f' } }] },
      'flow[0].cluster',
      /applies to qps rules only/,
    );
    refuses(
      {
        flow: [
          { resource: 'a', count: 1, cluster: { flowId: 'f' } },
          { resource: 'b', count: 1, cluster: { flowId: 'f' } },
        ],
      },
      'flow[1].cluster.flowId',
      /'f' is already used by flow\[0\]/,
    );
  });

  it('refuses bad degrade rules; the threshold range depends on the strategy', () => {
    const base = { resource: 'd', recoveryTimeoutMs: 1000 };
    refuses({ degrade: [{ ...base, threshold: 0.5 }] }, 'degrade[0].strategy', /is required/);
    refuses(
      { degrade: [{ ...base, strategy: 'error-ratio', threshold: 1.5 }] },
      'degrade[0].threshold',
      /must be <= 1, got 1.5/,
    );
    assert.equal(
      validateRules({ degrade: [{ ...base, strategy: 'error-count', threshold: 15 }] }).degrade[0]
        ?.threshold,
      15,
      'an error count is not a ratio',
    );
    refuses(
      { degrade: [{ ...base, strategy: 'slow-ratio', threshold: 0.5 }] },
      'degrade[0].maxRtMs',
      /is required/,
    );
    refuses(
      { degrade: [{ resource: 'd', strategy: 'error-count', threshold: 1, recoveryTimeoutMs: 0 }] },
      'degrade[0].recoveryTimeoutMs',
      /must be > 0/,
    );
    refuses(
      { degrade: [{ ...base, strategy: 'error-count', threshold: 1, minRequestAmount: 2.5 }] },
      'degrade[0].minRequestAmount',
      /must be an integer, got 2.5/,
    );
  });

  it('refuses bad hot-parameter, system and authority rules', () => {
    refuses(
      { param: [{ resource: 'p', paramIndex: 0.5, count: 1 }] },
      'param[0].paramIndex',
      /must be an integer/,
    );
    refuses(
      { param: [{ resource: 'p', paramIndex: 0, count: 1, items: [{ value: {}, count: 1 }] }] },
      'param[0].items[0].value',
      /string, number or boolean, got an object/,
    );
    refuses(
      { param: [{ resource: 'p', paramIndex: 0, count: 1, items: [{ value: 'x' }] }] },
      'param[0].items[0].count',
      /is required/,
    );
    refuses(
      {
        param: [
          {
            resource: 'p',
            paramIndex: 0,
            count: 1,
            grade: 'concurrency',
            behavior: 'rate-limiter',
          },
        ],
      },
      'param[0].behavior',
      /must be 'reject' for a concurrency rule/,
    );
    refuses({ system: [{}] }, 'system[0]', /sets no limit: give at least one of maxQps/);
    refuses({ system: [{ bbr: false }] }, 'system[0]', /sets no limit/);
    refuses({ system: [{ maxCpuUsage: 1.2 }] }, 'system[0].maxCpuUsage', /must be <= 1/);
    refuses(
      { authority: [{ resource: 'a', strategy: 'allow' }] },
      'authority[0].origins',
      /array of caller app names, got undefined/,
    );
    refuses(
      { authority: [{ resource: 'a', strategy: 'allow', origins: ['ops', ''] }] },
      'authority[0].origins[1]',
      /non-empty string, got ""/,
    );
    refuses(
      { authority: [{ resource: 'a', strategy: 'block', origins: [] }] },
      'authority[0].strategy',
      /one of allow, deny/,
    );
  });

  it('lists every problem of a set, names the first in the message, and keeps nothing', () => {
    const input = {
      flow: [
        { resource: 'ok', count: 1 },
        { resource: 'b', count: -1 },
      ],
      degrade: [{ resource: 'c', strategy: 'error-ratio', threshold: 2 }],
    };
    assert.throws(
      () => validateRules(input),
      (err: unknown) => {
        assert.ok(isPeakError(err, 'PEAK_GUARD_INVALID_RULES'));
        assert.equal(
          err.message,
          'guard: rule set refused, the rules in force stay: flow[1].count must be >= 0, got -1 (and 2 more problem(s))',
        );
        assert.equal(err.details.path, 'flow[1].count');
        assert.deepEqual(
          (err.details.problems as RuleProblem[]).map((p) => p.path),
          ['flow[1].count', 'degrade[0].threshold', 'degrade[0].recoveryTimeoutMs'],
        );
        return true;
      },
    );
  });
});
