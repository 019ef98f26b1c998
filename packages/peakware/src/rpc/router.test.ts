import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createContext } from '../core/context.js';
import { ErrorCodes, isPeakError } from '../core/errors.js';
import { compileCondition } from './condition-expression.js';
import { ConditionRules } from './router.js';

describe('condition expressions', () => {
  it('evaluates arithmetic, comparisons and logic over call variables', () => {
    const c = compileCondition('userId % 100 < 10');
    assert.equal(c({ userId: 1205 }), true);
    assert.equal(c({ userId: 1250 }), false);
    assert.equal(c({}), false, 'a missing variable never matches');
    const d = compileCondition(
      '(region == "cn" || region == \'hk\') && !(tags.canary == "false") && amount * 2 >= 10.5',
    );
    assert.equal(d({ region: 'hk', tags: {}, amount: 6 }), true);
    assert.equal(d({ region: 'us', tags: {}, amount: 6 }), false);
    assert.equal(compileCondition('-a + 3 == 1')({ a: 2 }), true);
  });

  it('cannot reach outside the variables it is given', () => {
    assert.equal(compileCondition('constructor == "x"')({}), false);
    assert.equal(compileCondition('a.__proto__.x == 1')({ a: {} }), false);
  });

  it('rejects malformed conditions with a clear error', () => {
    for (const bad of ['userId %', 'a == (1', 'a ; b', 'a b', '', 'x = 1']) {
      assert.throws(
        () => compileCondition(bad),
        (err) => isPeakError(err, ErrorCodes.INVALID_ARGUMENT),
        bad,
      );
    }
  });
});

describe('condition rules', () => {
  it('give the first matching rule tag, filtered by service and method', () => {
    const rules = new ConditionRules([
      { service: 'shop.order', method: 'create', when: 'userId % 100 < 10', tag: 'canary' },
      { when: 'caller == "stress-bot"', tag: 'shadow' },
    ]);
    const ctx = createContext({ callerApp: 'web' });
    assert.equal(rules.match('shop.order', 'create', { userId: 3 }, ctx), 'canary');
    assert.equal(rules.match('shop.order', 'cancel', { userId: 3 }, ctx), undefined);
    assert.equal(
      rules.match('shop.cart', 'add', {}, createContext({ callerApp: 'stress-bot' })),
      'shadow',
    );
  });

  it('load replaces all rules at once and keeps the old ones when a new one is invalid', () => {
    const rules = new ConditionRules([{ when: 'true', tag: 'a' }]);
    assert.throws(() =>
      rules.load([
        { when: 'true', tag: 'b' },
        { when: 'oops ==', tag: 'c' },
      ]),
    );
    assert.equal(rules.match('s', 'm', {}, createContext()), 'a');
    rules.load([]);
    assert.equal(rules.match('s', 'm', {}, createContext()), undefined);
  });
});
