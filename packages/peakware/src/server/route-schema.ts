/**
 * How every control-plane route declares and checks its input: Fastify route JSON schemas
 * for `body`, `querystring` and `params`, written with TypeBox so the handler's
 * `request.body` (and query, params) is typed from the very schema that is checked — one
 * source, no drift — and compiled once by ajv into the fastest check there is for the hot
 * SDK routes. The same schemas are the API's OpenAPI document (`openapi.ts`).
 *
 * ajv settings, chosen on purpose (Fastify's defaults differ):
 *
 * - bodies are never coerced (`"5"` is not 5, `"true"` is not true): a JSON client sends
 *   JSON types, and a wrong type is its bug to hear about; query and path parameters are
 *   strings on the wire, so they are coerced to the declared type (and `?tag=a` to `['a']`
 *   where an array is declared);
 * - nothing is removed silently: `additionalProperties: false` refuses an unknown field by
 *   name (Fastify's default `removeAdditional` would drop it, so a typo'd option would
 *   quietly fall back to its default);
 * - `default` fills absent fields; an absent body is validated as `{}`;
 * - strict: an unknown keyword in a schema is an error (when the check is compiled), not a
 *   silent no-op. The one extra keyword is `takes`: what a field takes, in words, for
 *   fields whose pattern says it badly (`'1-128 letters, digits or _ . : @ -'`); errors and
 *   OpenAPI use it.
 *
 * A failed check is a PEAK_INVALID_ARGUMENT whose message names the field, what it takes
 * and what it got: `body field messages[0].tag must be a string of 1-128 characters, got 7`.
 */
import { type Static, type TSchema, type TUnsafe, Type } from '@sinclair/typebox';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import type { FastifySchemaCompiler, FastifyTypeProvider } from 'fastify';
import { InvalidArgumentError } from '../core/errors.js';

declare module 'fastify' {
  /** The docs fields every route's schema carries (see {@link RouteSchema}). */
  interface FastifySchema {
    /** What the route does, one line (OpenAPI `summary`). */
    summary?: string;
    /** More words for the docs (OpenAPI `description`). */
    description?: string;
    /** OpenAPI tags; default: the subsystem from the URL. */
    tags?: string[];
  }
}

/** The Fastify type provider: a route's request parts are typed from its TypeBox schemas. */
export interface TypeBoxProvider extends FastifyTypeProvider {
  readonly validator: this['schema'] extends TSchema ? Static<this['schema']> : unknown;
  readonly serializer: this['schema'] extends TSchema ? Static<this['schema']> : unknown;
}

/** A string that is one of `values` (`{ type: 'string', enum }`, typed as their union). */
export function StringEnum<const T extends readonly string[]>(
  values: T,
  options: { default?: T[number]; description?: string } = {},
): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });
}

/**
 * An optional field whose absence ajv fills with `value`: left out of `required` (so
 * OpenAPI and clients see it optional), typed as always present (it is, after validation).
 */
export function WithDefault<T extends TSchema>(schema: T, value: Static<T>): T {
  return Type.Optional({ ...schema, default: value } as T) as unknown as T;
}

function newAjv(coerce: boolean): Ajv2020 {
  const ajv = new Ajv2020({
    coerceTypes: coerce ? 'array' : false,
    useDefaults: true,
    removeAdditional: false,
    allErrors: false,
    verbose: true,
    strict: true,
    strictTypes: false,
    strictTuples: false,
    strictRequired: false,
    logger: false,
  });
  ajv.addKeyword({ keyword: 'takes', schemaType: 'string' });
  return ajv;
}

/**
 * Fastify's validator compiler for the API: bodies with an ajv that never coerces, query
 * and path parameters with one that coerces from strings (see the header). Each check is
 * compiled on its route's first request, not at start: compiling all of them was most of
 * a `peak server` start's CPU in a profile, for routes most servers never see. A
 * test compiles every route's schemas (server-openapi.test.ts), so a schema strict mode
 * refuses fails there, not on a user's first call.
 */
export function routeValidatorCompiler(): FastifySchemaCompiler<TSchema> {
  const strictAjv = newAjv(false);
  const coercingAjv = newAjv(true);
  return ({ schema, httpPart }) => {
    let compiled: ValidateFunction | undefined;
    const validate = ((data: unknown) => {
      compiled ??= httpPart === 'body' ? strictAjv.compile(schema) : coercingAjv.compile(schema);
      const ok = compiled(data);
      validate.errors = compiled.errors;
      return ok;
    }) as ValidateFunction;
    return validate;
  };
}

/** The JSON Schema keywords a field's description is made of. */
interface SchemaWords {
  type?: string | string[];
  takes?: string;
  enum?: unknown[];
  const?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minItems?: number;
  maxItems?: number;
  maxProperties?: number;
  anyOf?: SchemaWords[];
  properties?: Record<string, SchemaWords>;
}

function range(low: string | undefined, high: string | undefined, unit: string): string {
  if (low !== undefined && high !== undefined) return ` of ${low}-${high}${unit}`;
  if (low !== undefined) return ` of at least ${low}${unit}`;
  if (high !== undefined) return ` of at most ${high}${unit}`;
  return '';
}

function numberRange(s: SchemaWords): string {
  const parts: string[] = [];
  if (s.minimum !== undefined && s.maximum !== undefined)
    return ` from ${s.minimum} to ${s.maximum}`;
  if (s.minimum !== undefined) parts.push(`≥ ${s.minimum}`);
  if (s.exclusiveMinimum !== undefined) parts.push(`above ${s.exclusiveMinimum}`);
  if (s.maximum !== undefined) parts.push(`≤ ${s.maximum}`);
  if (s.exclusiveMaximum !== undefined) parts.push(`below ${s.exclusiveMaximum}`);
  return parts.length === 0 ? '' : ` ${parts.join(' and ')}`;
}

const str = (n: number | undefined) => (n === undefined ? undefined : String(n));

/** What a schema takes, in words: `an integer from 1 to 1000`, `one of "json", "text"`. */
export function describeSchema(s: SchemaWords): string {
  if (s.takes !== undefined) return s.takes;
  if (s.enum !== undefined) return `one of ${s.enum.map((v) => JSON.stringify(v)).join(', ')}`;
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.anyOf !== undefined) return s.anyOf.map(describeSchema).join(' or ');
  const types = Array.isArray(s.type) ? s.type : s.type === undefined ? [] : [s.type];
  if (types.length !== 1) return types.length === 0 ? 'any JSON value' : types.join(' or ');
  switch (types[0]) {
    case 'integer':
      return `an integer${numberRange(s)}`;
    case 'number':
      return `a number${numberRange(s)}`;
    case 'string': {
      const pattern = s.pattern === undefined ? '' : ` matching /${s.pattern}/`;
      if (s.minLength === 1 && s.maxLength === undefined) return `a non-empty string${pattern}`;
      return `a string${range(str(s.minLength), str(s.maxLength), ' characters')}${pattern}`;
    }
    case 'boolean':
      return 'true or false';
    case 'array':
      return `an array${range(str(s.minItems), str(s.maxItems), ' items')}`;
    case 'object':
      return s.maxProperties === undefined
        ? 'an object'
        : `an object of at most ${s.maxProperties} fields`;
    default:
      return String(types[0]);
  }
}

/** `/messages/0/body` → `messages[0].body`. */
function fieldPath(instancePath: string, extra?: string): string {
  const parts = instancePath
    .split('/')
    .slice(1)
    .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'));
  if (extra !== undefined) parts.push(extra);
  let out = '';
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : out === '' ? p : `.${p}`;
  return out;
}

function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

const LOCATION: Record<string, string> = {
  body: 'body field',
  querystring: 'query parameter',
  params: 'path parameter',
  headers: 'header',
};

/** The message for one ajv error: the field, what it takes, what it got. */
function describeError(e: ErrorObject, where: string): { field: string; message: string } {
  const location = LOCATION[where] ?? where;
  const schema = (e.parentSchema ?? {}) as SchemaWords;
  if (e.keyword === 'required') {
    const missing = (e.params as { missingProperty: string }).missingProperty;
    const field = fieldPath(e.instancePath, missing);
    const sub = schema.properties?.[missing];
    return {
      field,
      message: `${location} ${field} is missing${sub === undefined ? '' : `: it takes ${describeSchema(sub)}`}`,
    };
  }
  if (e.keyword === 'additionalProperties') {
    const extra = (e.params as { additionalProperty: string }).additionalProperty;
    const field = fieldPath(e.instancePath, extra);
    const known = Object.keys(schema.properties ?? {});
    return {
      field,
      message: `${location} ${field} is not one this route takes${known.length === 0 ? '' : `; it takes ${known.join(', ')}`}`,
    };
  }
  const field = fieldPath(e.instancePath);
  const subject =
    field === '' ? (where === 'body' ? 'the body' : `the ${where}`) : `${location} ${field}`;
  return { field, message: `${subject} must be ${describeSchema(schema)}, got ${preview(e.data)}` };
}

/**
 * Fastify's `schemaErrorFormatter` for the API: the first failed check as a
 * PEAK_INVALID_ARGUMENT (the error handler answers it like any other PeakError).
 */
export function validationError(
  errors: readonly { keyword: string; instancePath: string }[],
  where: string,
): InvalidArgumentError {
  // ajv stops at the first failure, except inside anyOf, whose branches' errors come before
  // the anyOf's own: the last error is the outermost one that failed.
  const first = errors.at(-1) as ErrorObject | undefined;
  if (first === undefined) return new InvalidArgumentError(`the request's ${where} is invalid`);
  const { field, message } = describeError(first, where);
  return new InvalidArgumentError(message, {
    details: { input: field === '' ? where : field, in: where, rule: first.keyword },
  });
}

/** A request body given per content type (a route that takes more than JSON). */
export interface BodyByContentType {
  content: Record<string, { schema: TSchema }>;
}

/** What every route declares in its `schema`: the parts it reads, and a line for the docs. */
export interface RouteSchema {
  /** What the route does, one line (OpenAPI `summary`). Required. */
  summary: string;
  /** More words for the docs (OpenAPI `description`). */
  description?: string;
  /** OpenAPI tags; default: the subsystem from the URL (`/api/v1/mq/...` → `mq`). */
  tags?: string[];
  /** Required on POST, PUT and PATCH routes. */
  body?: TSchema | BodyByContentType;
  querystring?: TSchema;
  /** Required when the URL has parameters, naming exactly those. */
  params?: TSchema;
}

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/**
 * Throws when a route does not declare what the API's checks and docs need: a summary, a
 * body schema on POST/PUT/PATCH, and a params schema naming exactly the URL's parameters.
 * Run on every route as it is added, so a route without them fails the server's start.
 */
export function checkRouteSchema(method: string, url: string, schema: unknown): RouteSchema {
  const s = (schema ?? {}) as Partial<RouteSchema>;
  const problems: string[] = [];
  if (typeof s.summary !== 'string' || s.summary.length === 0)
    problems.push('a schema.summary (one line for the docs)');
  if (BODY_METHODS.has(method) && s.body === undefined)
    problems.push('a schema.body (use Type.Object({}) for a route that takes no fields)');
  const inUrl = [...url.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]!).sort();
  const declared = Object.keys(
    (s.params as { properties?: Record<string, unknown> } | undefined)?.properties ?? {},
  ).sort();
  if (inUrl.join(',') !== declared.join(','))
    problems.push(
      `a schema.params naming exactly its path parameters (${inUrl.join(', ') || 'none'}; declared: ${declared.join(', ') || 'none'})`,
    );
  if (problems.length > 0)
    throw new Error(`route ${method} ${url} needs ${problems.join(', and ')}`);
  return s as RouteSchema;
}
