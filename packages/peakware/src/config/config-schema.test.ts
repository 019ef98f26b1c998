import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkSchema, validateValue } from './config-schema.js';

describe('config schema', () => {
  const schema = {
    type: 'object' as const,
    required: ['pool'],
    additionalProperties: false,
    properties: {
      pool: {
        type: 'object' as const,
        properties: { max: { type: 'integer' as const, minimum: 1, maximum: 100 } },
      },
      hosts: {
        type: 'array' as const,
        maxItems: 2,
        items: { type: 'string' as const, pattern: '^[a-z]+$' },
      },
      mode: { enum: ['fast', 'safe'] },
    },
  };

  it('accepts a valid value', () => {
    assert.deepEqual(validateValue({ pool: { max: 5 }, hosts: ['a'], mode: 'fast' }, schema), []);
  });

  it('reports each problem with its path', () => {
    const problems = validateValue(
      { pool: { max: 0 }, hosts: ['a', 'B'], mode: 'x', extra: 1 },
      schema,
    );
    assert.deepEqual(
      problems.map((p) => p.path),
      ['$.pool.max', '$.hosts[1]', '$.mode', '$.extra'],
    );
    assert.deepEqual(validateValue({}, schema)[0], { path: '$.pool', reason: 'is required' });
    assert.equal(
      validateValue({ pool: { max: 1.5 } }, schema)[0]?.reason,
      'must be integer, got number',
    );
  });

  it('refuses unusable schemas', () => {
    assert.deepEqual(
      checkSchema({ type: 'object', properties: { a: { oneOf: [] } } }).map((p) => p.path),
      ['$.properties.a.oneOf'],
    );
    assert.equal(checkSchema({ pattern: '(' }).length, 1);
    assert.equal(checkSchema({ $peak: 'nope' }).length, 1);
    assert.deepEqual(checkSchema({ $peak: 'guard-rules' }), []);
  });

  it('checks guard rules with the guard validation', () => {
    const s = { $peak: 'guard-rules' as const };
    assert.deepEqual(validateValue({ flow: [{ resource: 'a', count: 10 }] }, s), []);
    assert.equal(
      validateValue({ flow: [{ resource: 'a', count: -1 }] }, s)[0]?.path,
      '$.flow[0].count',
    );
  });

  it('checks load-balancer weights', () => {
    const s = { $peak: 'lb-weights' as const };
    assert.deepEqual(validateValue({ 'host-1': 50, 'host-2': 0 }, s), []);
    assert.equal(validateValue({ 'host-1': 1.5 }, s)[0]?.path, '$.host-1');
    assert.equal(validateValue({ 'bad id': 1 }, s)[0]?.path, '$.bad id');
    assert.equal(validateValue([], s)[0]?.path, '$');
  });

  it('checks routing rules by compiling their conditions', () => {
    const s = { $peak: 'rpc-routes' as const };
    assert.deepEqual(validateValue([{ when: 'userId % 10 < 3', tag: 'canary' }], s), []);
    assert.equal(validateValue([{ when: 'a ==', tag: 'x' }], s)[0]?.path, '$[0].when');
    assert.equal(validateValue([{ when: 'true' }], s)[0]?.path, '$[0].tag');
    assert.equal(validateValue({}, s)[0]?.path, '$');
  });
});
