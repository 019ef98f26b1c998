import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type TSchema, Type } from '@sinclair/typebox';
import type { ValidateFunction } from 'ajv';
import { isPeakError } from '../core/errors.js';
import {
  checkRouteSchema,
  routeValidatorCompiler,
  StringEnum,
  validationError,
  WithDefault,
} from './route-schema.js';

const compiler = routeValidatorCompiler();

/** What the API answers for `data` as the route's `where` part: the message, or 'ok'. */
function check(schema: TSchema, where: 'body' | 'querystring' | 'params', data: unknown): string {
  const validate = compiler({
    schema,
    httpPart: where,
    method: 'POST',
    url: '/x',
  }) as ValidateFunction;
  if (validate(data)) return 'ok';
  const err = validationError(validate.errors ?? [], where);
  assert.ok(isPeakError(err, 'PEAK_INVALID_ARGUMENT'));
  return err.message;
}

describe('route schemas', () => {
  const body = Type.Object({
    topic: Type.String({ minLength: 1 }),
    consumerId: Type.String({ pattern: '^[a-z]{1,8}$', takes: '1-8 lowercase letters' }),
    max: WithDefault(Type.Integer({ minimum: 1, maximum: 1000 }), 32),
    mode: Type.Optional(StringEnum(['a', 'b'])),
    tags: Type.Optional(Type.Union([Type.Array(Type.String()), Type.Literal('*')])),
    items: Type.Optional(Type.Array(Type.Object({ n: Type.Number({ exclusiveMinimum: 0 }) }))),
  });

  it('names the field, what it takes and what it got', () => {
    const ok = { topic: 't', consumerId: 'c' };
    assert.equal(
      check(body, 'body', { consumerId: 'c' }),
      'body field topic is missing: it takes a non-empty string',
    );
    assert.equal(
      check(body, 'body', { ...ok, consumerId: 'C-1' }),
      'body field consumerId must be 1-8 lowercase letters, got "C-1"',
    );
    assert.equal(
      check(body, 'body', { ...ok, max: 5000 }),
      'body field max must be an integer from 1 to 1000, got 5000',
    );
    assert.equal(
      check(body, 'body', { ...ok, mode: 'c' }),
      'body field mode must be one of "a", "b", got "c"',
    );
    assert.equal(
      check(body, 'body', { ...ok, tags: 5 }),
      'body field tags must be an array or "*", got 5',
    );
    assert.equal(
      check(body, 'body', { ...ok, items: [{ n: 1 }, { n: 0 }] }),
      'body field items[1].n must be a number above 0, got 0',
    );
    assert.equal(check(body, 'body', [1]), 'the body must be an object, got [1]');
  });

  it('never coerces a body, fills defaults, and refuses unknown fields where it says so', () => {
    assert.equal(
      check(body, 'body', { topic: 't', consumerId: 'c', max: '5' }),
      'body field max must be an integer from 1 to 1000, got "5"',
    );
    const filled: Record<string, unknown> = { topic: 't', consumerId: 'c' };
    assert.equal(check(body, 'body', filled), 'ok');
    assert.equal(filled.max, 32);
    const strict = Type.Object(
      { a: Type.Optional(Type.String()) },
      { additionalProperties: false },
    );
    assert.equal(
      check(strict, 'body', { b: 1 }),
      'body field b is not one this route takes; it takes a',
    );
  });

  it('coerces query and path parameters from their text', () => {
    const query = Type.Object({
      limit: WithDefault(Type.Integer({ minimum: 1, maximum: 10 }), 5),
      tag: Type.Optional(Type.Array(Type.String())),
    });
    const q: Record<string, unknown> = { limit: '7', tag: 'x' };
    assert.equal(check(query, 'querystring', q), 'ok');
    assert.deepEqual(q, { limit: 7, tag: ['x'] });
    assert.equal(
      check(query, 'querystring', { limit: 'abc' }),
      'query parameter limit must be an integer from 1 to 10, got "abc"',
    );
    assert.equal(
      check(Type.Object({ id: Type.Integer({ minimum: 1 }) }), 'params', { id: '0' }),
      'path parameter id must be an integer ≥ 1, got 0',
    );
  });

  it('refuses a schema with an unknown keyword when the route is compiled (its first check)', () => {
    const validate = compiler({
      schema: { type: 'string', minLenght: 1 } as unknown as TSchema,
      httpPart: 'body',
      method: 'POST',
      url: '/x',
    }) as ValidateFunction;
    assert.throws(() => validate('x'), /unknown keyword: "minLenght"/);
  });

  it('checks that a route declares what the docs and checks need', () => {
    assert.doesNotThrow(() =>
      checkRouteSchema('GET', '/a/:id', {
        summary: 's',
        params: Type.Object({ id: Type.String() }),
      }),
    );
    assert.throws(() => checkRouteSchema('PATCH', '/a', { summary: 's' }), /needs a schema\.body/);
    assert.throws(() => checkRouteSchema('GET', '/a', {}), /needs a schema\.summary/);
  });
});
