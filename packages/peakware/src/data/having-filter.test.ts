import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bindHaving, compareScalars, evaluateHaving, type HavingExpr } from './having-filter.js';

const col = (column: number) => ({ column });
const lit = (value: string | number | null) => ({ ref: { value } });
const at = (p: number) => p;

describe('HAVING over merged groups', () => {
  it('keeps three-valued logic: NULL comparisons are unknown, AND / OR / NOT / IN / BETWEEN around them', () => {
    const row = ['7', null, '12.50'];
    const gt = (c: number, v: string | number | null): HavingExpr => ({
      k: 'cmp',
      op: '>',
      left: col(c),
      right: lit(v),
    });
    assert.equal(evaluateHaving(gt(0, 5), row, at), true);
    assert.equal(evaluateHaving(gt(0, '10'), row, at), false, 'decimal text compares as numbers');
    assert.equal(evaluateHaving(gt(1, 5), row, at), null);
    assert.equal(evaluateHaving({ k: 'not', part: gt(1, 5) }, row, at), null);
    assert.equal(evaluateHaving({ k: 'and', parts: [gt(0, 10), gt(1, 5)] }, row, at), false);
    assert.equal(evaluateHaving({ k: 'and', parts: [gt(0, 5), gt(1, 5)] }, row, at), null);
    assert.equal(evaluateHaving({ k: 'or', parts: [gt(0, 5), gt(1, 5)] }, row, at), true);
    const inList = (not: boolean, list: (string | number | null)[]): HavingExpr => ({
      k: 'in',
      not,
      left: col(0),
      list: list.map(lit),
    });
    assert.equal(evaluateHaving(inList(false, [1, 7]), row, at), true);
    assert.equal(evaluateHaving(inList(false, [1, null]), row, at), null);
    assert.equal(evaluateHaving(inList(true, [1, null]), row, at), null);
    assert.equal(evaluateHaving(inList(true, [1, 2]), row, at), true);
    const between = (low: string | number | null, high: string | number | null): HavingExpr => ({
      k: 'between',
      not: false,
      left: col(2),
      low: lit(low),
      high: lit(high),
    });
    assert.equal(evaluateHaving(between('12.5', 13), row, at), true);
    assert.equal(evaluateHaving(between(13, null), row, at), false);
    assert.equal(evaluateHaving(between(1, null), row, at), null);
    assert.equal(evaluateHaving({ k: 'null', not: false, operand: col(1) }, row, at), true);
  });

  it('binds parameters once per call', () => {
    const e: HavingExpr = { k: 'cmp', op: '>=', left: col(0), right: { ref: { param: 1 } } };
    assert.equal(evaluateHaving(bindHaving(e, [7], 'q'), ['7'], at), true);
    assert.equal(evaluateHaving(bindHaving(e, [8], 'q'), ['7'], at), false);
    assert.throws(() => bindHaving(e, [], 'q'), /uses \$1 but 0 parameters/);
  });

  it('compares times, decimals beyond doubles, and text', () => {
    assert.ok(compareScalars(new Date('2026-01-02T00:00:00Z'), '2026-01-01T00:00:00Z') > 0);
    assert.ok(compareScalars('12345678901234567890.01', '12345678901234567890.001') > 0);
    assert.ok(compareScalars('paid', 'created') > 0);
  });
});
