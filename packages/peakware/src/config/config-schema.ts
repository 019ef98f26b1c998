/**
 * Schemas of config values, checked at publish time (server) so a bad value is refused with
 * the path of the error and the released value stays in force. A schema is either a small
 * JSON Schema subset (`type`, `properties`, `required`, `additionalProperties`, `items`,
 * `enum`, `minimum`, `maximum`, `minLength`, `maxLength`, `pattern`, `minItems`,
 * `maxItems`) or a built-in kind: `{ "$peak": "guard-rules" }` (the guard's own
 * validation), `{ "$peak": "rpc-routes" }` (RPC condition routing rules) or
 * `{ "$peak": "lb-weights" }` (`{ "<instanceId>": weight }`, applied by the control plane
 * to the registry, so every consumer's balancer sees it).
 */
import { validateRules } from '../guard/rule-validation.js';
import { ConditionRules } from '../rpc/router.js';

/** The built-in schema kinds, for governance rule sets. */
export const BUILTIN_SCHEMAS = ['guard-rules', 'rpc-routes', 'lb-weights'] as const;

/** One of {@link BUILTIN_SCHEMAS}. */
export type BuiltinSchema = (typeof BUILTIN_SCHEMAS)[number];

/** A JSON Schema subset, or a built-in kind. */
export interface ConfigSchema {
  /** A built-in kind instead of a JSON Schema. */
  $peak?: BuiltinSchema;
  type?: 'object' | 'array' | 'string' | 'number' | 'integer' | 'boolean' | 'null';
  properties?: Record<string, ConfigSchema>;
  required?: string[];
  additionalProperties?: boolean;
  items?: ConfigSchema;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minItems?: number;
  maxItems?: number;
}

/** One problem found in a value: where (`rules[2].when`) and what. */
export interface SchemaProblem {
  path: string;
  reason: string;
}

const KNOWN = new Set([
  '$peak',
  'type',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'enum',
  'minimum',
  'maximum',
  'minLength',
  'maxLength',
  'pattern',
  'minItems',
  'maxItems',
  'description',
  'title',
  '$schema',
]);

/** Problems with a schema itself (unknown keywords, bad pattern); empty when usable. */
export function checkSchema(schema: unknown, path = '$'): SchemaProblem[] {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema))
    return [{ path, reason: 'a schema must be an object' }];
  const s = schema as Record<string, unknown>;
  const problems: SchemaProblem[] = [];
  for (const k of Object.keys(s)) {
    if (!KNOWN.has(k))
      problems.push({ path: `${path}.${k}`, reason: `unsupported keyword '${k}'` });
  }
  if (s.$peak !== undefined && !BUILTIN_SCHEMAS.includes(s.$peak as BuiltinSchema))
    problems.push({
      path: `${path}.$peak`,
      reason: `unknown built-in schema; use one of ${BUILTIN_SCHEMAS.join(', ')}`,
    });
  if (typeof s.pattern === 'string') {
    try {
      new RegExp(s.pattern, 'u');
    } catch (err) {
      problems.push({ path: `${path}.pattern`, reason: (err as Error).message });
    }
  }
  if (typeof s.properties === 'object' && s.properties !== null) {
    for (const [k, v] of Object.entries(s.properties))
      problems.push(...checkSchema(v, `${path}.properties.${k}`));
  }
  if (s.items !== undefined) problems.push(...checkSchema(s.items, `${path}.items`));
  return problems;
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function walk(value: unknown, s: ConfigSchema, path: string, out: SchemaProblem[]): void {
  if (out.length >= 20) return;
  if (s.type !== undefined) {
    const t = typeOf(value);
    const ok = t === s.type || (s.type === 'number' && t === 'integer');
    if (!ok) {
      out.push({ path, reason: `must be ${s.type}, got ${t}` });
      return;
    }
  }
  if (s.enum !== undefined && !s.enum.some((e) => JSON.stringify(e) === JSON.stringify(value)))
    out.push({ path, reason: `must be one of ${JSON.stringify(s.enum)}` });
  if (typeof value === 'number') {
    if (s.minimum !== undefined && value < s.minimum)
      out.push({ path, reason: `must be >= ${s.minimum}` });
    if (s.maximum !== undefined && value > s.maximum)
      out.push({ path, reason: `must be <= ${s.maximum}` });
  }
  if (typeof value === 'string') {
    if (s.minLength !== undefined && value.length < s.minLength)
      out.push({ path, reason: `must have at least ${s.minLength} characters` });
    if (s.maxLength !== undefined && value.length > s.maxLength)
      out.push({ path, reason: `must have at most ${s.maxLength} characters` });
    if (s.pattern !== undefined && !new RegExp(s.pattern, 'u').test(value))
      out.push({ path, reason: `must match /${s.pattern}/` });
  }
  if (Array.isArray(value)) {
    if (s.minItems !== undefined && value.length < s.minItems)
      out.push({ path, reason: `must have at least ${s.minItems} items` });
    if (s.maxItems !== undefined && value.length > s.maxItems)
      out.push({ path, reason: `must have at most ${s.maxItems} items` });
    if (s.items !== undefined) {
      for (const [i, item] of value.entries()) walk(item, s.items, `${path}[${i}]`, out);
    }
  }
  if (typeOf(value) === 'object') {
    const obj = value as Record<string, unknown>;
    for (const r of s.required ?? []) {
      if (!(r in obj)) out.push({ path: `${path}.${r}`, reason: 'is required' });
    }
    for (const [k, v] of Object.entries(obj)) {
      const sub = s.properties?.[k];
      if (sub !== undefined) walk(v, sub, `${path}.${k}`, out);
      else if (s.additionalProperties === false)
        out.push({ path: `${path}.${k}`, reason: 'is not allowed (additionalProperties: false)' });
    }
  }
}

/** Instance ids as the registry accepts them. */
const INSTANCE_ID = /^[A-Za-z0-9_.:@-]{1,128}$/;

function builtin(kind: BuiltinSchema, value: unknown): SchemaProblem[] {
  if (kind === 'lb-weights') {
    if (typeOf(value) !== 'object')
      return [{ path: '$', reason: 'must be an object { "<instanceId>": weight }' }];
    const problems: SchemaProblem[] = [];
    for (const [id, w] of Object.entries(value as Record<string, unknown>)) {
      if (!INSTANCE_ID.test(id))
        problems.push({
          path: `$.${id}`,
          reason: 'is not an instance id (1-128 of A-Z a-z 0-9 _ . : @ -)',
        });
      else if (typeof w !== 'number' || !Number.isInteger(w) || w < 0 || w > 1_000_000)
        problems.push({ path: `$.${id}`, reason: 'must be an integer weight 0-1000000' });
    }
    return problems;
  }
  if (kind === 'guard-rules') {
    try {
      validateRules(value);
      return [];
    } catch (err) {
      const problems = (err as { details?: { problems?: { path: string; reason: string }[] } })
        .details?.problems ?? [{ path: '', reason: (err as Error).message }];
      return problems.map((p) => ({ path: p.path ? `$.${p.path}` : '$', reason: p.reason }));
    }
  }
  if (!Array.isArray(value)) return [{ path: '$', reason: 'must be an array of routing rules' }];
  for (const [i, rule] of value.entries()) {
    const r = rule as Record<string, unknown> | null;
    if (typeof r !== 'object' || r === null || Array.isArray(r))
      return [{ path: `$[${i}]`, reason: 'must be an object { when, tag, service?, method? }' }];
    for (const f of ['when', 'tag'] as const) {
      if (typeof r[f] !== 'string' || (r[f] as string).length === 0)
        return [{ path: `$[${i}].${f}`, reason: 'must be a non-empty string' }];
    }
    try {
      new ConditionRules([r as never]);
    } catch (err) {
      return [{ path: `$[${i}].when`, reason: (err as Error).message }];
    }
  }
  return [];
}

/** Checks `value` against `schema`; returns every problem found (empty: valid). */
export function validateValue(value: unknown, schema: ConfigSchema): SchemaProblem[] {
  if (schema.$peak !== undefined) return builtin(schema.$peak, value);
  const out: SchemaProblem[] = [];
  walk(value, schema, '$', out);
  return out;
}
