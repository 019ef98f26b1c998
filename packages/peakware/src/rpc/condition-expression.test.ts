import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isPeakError } from '../core/errors.js';
import { compileCondition, hashKey } from './condition-expression.js';

const when = (source: string, vars: Record<string, unknown> = {}) => compileCondition(source)(vars);

/** Asserts `source` is refused with PEAK_INVALID_ARGUMENT and a message matching `message`. */
function refuses(source: string, message: RegExp): void {
  assert.throws(
    () => compileCondition(source),
    (err: unknown) =>
      isPeakError(err, 'PEAK_INVALID_ARGUMENT') && message.test((err as Error).message),
    source,
  );
}

describe('compileCondition', () => {
  it('routes by the rules the docs show', () => {
    const canary = compileCondition('sku == "vip" || userId % 100 < 10');
    assert.equal(canary({ sku: 'vip', userId: 55 }), true);
    assert.equal(canary({ sku: 'std', userId: 1207 }), true);
    assert.equal(canary({ sku: 'std', userId: 1250 }), false);
    const region = compileCondition('region == "cn" && tags.canary != "true"');
    assert.equal(region({ region: 'cn', tags: { canary: 'false' } }), true);
    assert.equal(region({ region: 'cn', tags: { canary: 'true' } }), false);
    assert.equal(region({ region: 'us', tags: {} }), false);
  });

  it('follows arithmetic before comparison before && before ||, left to right', () => {
    assert.equal(when('1 + 2 * 3 == 7'), true);
    assert.equal(when('(1 + 2) * 3 == 9'), true);
    assert.equal(when('10 - 4 - 3 == 3'), true, '- is left-associative');
    assert.equal(when('12 / 3 / 2 == 2'), true, '/ is left-associative');
    assert.equal(when('7 % 4 == 3'), true);
    assert.equal(when('true || false && false'), true, '&& binds tighter than ||');
    assert.equal(when('(true || false) && false'), false);
    assert.equal(when('-2 + 5 == 3'), true);
    assert.equal(when('!false && 1 < 2'), true);
    assert.equal(when('!(1 < 2)'), false);
  });

  it('compares numbers as numbers (numeric strings too) and everything else as strings', () => {
    assert.equal(
      when('userId >= 100', { userId: '150' }),
      true,
      'a numeric string compares as a number',
    );
    assert.equal(when('userId == 7', { userId: '7.0' }), true);
    assert.equal(when('userId < 10', { userId: 'abc' }), false, 'NaN compares false');
    assert.equal(when('userId < 10', { userId: '' }), false, 'an empty string is not 0');
    assert.equal(when('flag == "true"', { flag: true }), true);
    assert.equal(when('a + b == "xy"', { a: 'x', b: 'y' }), true, '+ joins strings');
    assert.equal(when('a + b == 5', { a: 2, b: 3 }), true, '+ adds numbers');
    assert.equal(when("name == 'it\\'s'", { name: "it's" }), true, 'escapes in quoted strings');
    assert.equal(when('1.5 * 2 == 3'), true, 'decimals');
  });

  it('reads dotted paths into the variables; a missing one is undefined, never an error', () => {
    assert.equal(when('tags.route == "gray"', { tags: { route: 'gray' } }), true);
    assert.equal(when('tags.route == "gray"', {}), false);
    assert.equal(when('a.b.c > 1', { a: { b: 'not an object' } }), false);
    assert.equal(when('missing != "x"'), true);
  });

  it('never reads inherited properties (no prototype walk)', () => {
    assert.equal(when('constructor != "undefined"'), false);
    assert.equal(when('tags.toString != "undefined"', { tags: {} }), false);
    assert.equal(when('__proto__ == "undefined"'), true);
  });

  it('refuses bad input with PEAK_INVALID_ARGUMENT naming the problem', () => {
    refuses('userId # 3', /unexpected character at position 6: '#'/);
    refuses('userId <', /ends too early/);
    refuses('(userId < 3', /missing '\)'/);
    refuses('userId < 3)', /unexpected '\)'/);
    refuses('userId 3', /unexpected '3'/);
    refuses('== 3', /unexpected '=='/);
    refuses('"unterminated', /unexpected character at position 0/);
    refuses('', /ends too early/);
    refuses(`x == "${'a'.repeat(1000)}"`, /limited to 1000 characters/);
  });

  it('returns a boolean whatever the expression evaluates to', () => {
    assert.equal(when('userId', { userId: 5 }), true);
    assert.equal(when('userId', { userId: 0 }), false);
    assert.equal(when('name', { name: '' }), false);
    assert.equal(when('1 / 0 > 1000'), true);
  });

  it('indexes names that are not identifiers, and never the prototype', () => {
    const gray = compileCondition('tags["x-gray"] == "1" || baggage["x-gray"] == "1"');
    assert.equal(gray({ tags: { 'x-gray': '1' }, baggage: {} }), true);
    assert.equal(gray({ tags: {}, baggage: { 'x-gray': '1' } }), true);
    assert.equal(gray({ tags: { 'x-gray': '0' }, baggage: {} }), false);
    assert.equal(gray({}), false, 'a missing object indexes to undefined');
    assert.equal(when('tags["constructor"] == undefined', { tags: {} }), true);
    assert.equal(when('m["a" + "b"] == 2', { m: { ab: 2 } }), true);
    assert.equal(when('m["k"]["j"] == 3', { m: { k: { j: 3 } } }), true);
    refuses('tags["x"', /missing '\]'/);
  });

  it('hashes with 32-bit FNV-1a of the UTF-8 text, as the published test vectors', () => {
    assert.equal(hashKey(''), 0x811c9dc5);
    assert.equal(hashKey('a'), 0xe40c292c);
    assert.equal(hashKey('foobar'), 0xbf9cf968);
    assert.equal(hashKey(12345), hashKey('12345'), 'a number hashes as its text');
    assert.equal(hashKey('é'), hashKey('\u00e9'));
    assert.notEqual(hashKey('é'), hashKey('e'));
    assert.ok(Number.isNaN(hashKey(undefined)));
    assert.ok(Number.isNaN(hashKey(null)));
    assert.equal(when('hash("foobar") == 3214735720'), true);
  });

  it('puts a stable share of keys under hash(k) % 100 < N, none without the key', () => {
    const fifth = compileCondition('hash(buyerId) % 100 < 20');
    let inside = 0;
    for (let i = 0; i < 10_000; i++) {
      const hit = fifth({ buyerId: `buyer-${i}` });
      assert.equal(fifth({ buyerId: `buyer-${i}` }), hit, 'the same key, the same answer');
      if (hit) inside++;
    }
    assert.ok(inside > 1800 && inside < 2200, `${inside} of 10000 keys under 20 %`);
    // A step that grows keeps those already inside (the share only widens).
    for (let i = 0; i < 1000; i++)
      if (fifth({ buyerId: i }))
        assert.equal(when('hash(buyerId) % 100 < 50', { buyerId: i }), true);
    assert.equal(fifth({}), false, 'a call without the key is outside');
    refuses('md5(x) < 3', /unknown function 'md5'/);
    refuses('hash(x < 3', /missing '\)' after the argument of hash/);
  });
});
