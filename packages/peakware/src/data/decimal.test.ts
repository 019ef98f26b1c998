import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addDecimal, compareDecimal, divideDecimal } from './decimal.js';

describe('decimal', () => {
  it('adds, compares and divides exactly beyond 2^53', () => {
    assert.equal(addDecimal('9007199254740993', '1'), '9007199254740994');
    assert.equal(addDecimal('1.25', '-0.5'), '0.75');
    assert.equal(addDecimal('-1.25', '0.5'), '-0.75');
    assert.equal(addDecimal('0.1', '0.2'), '0.3');
    assert.equal(compareDecimal('10.5', '9.75'), 1);
    assert.equal(compareDecimal('-2', '-10'), 1);
    assert.equal(compareDecimal('3.10', '3.1'), 0);
    assert.equal(divideDecimal('3', '2'), '1.5000000000000000');
    assert.equal(divideDecimal('10', '3', 4), '3.3333');
    assert.equal(divideDecimal('-2', '3', 2), '-0.67');
  });
});
