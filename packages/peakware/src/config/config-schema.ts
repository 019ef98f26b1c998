/**
 * Schemas of config values, checked at publish time (server) so a bad value is refused with
 * the path of the error and the released value stays in force. A schema is either a JSON
 * Schema (draft 2020-12, or draft-07 when its `$schema` says so; formats such as `email`
 * and `date-time` included), checked by ajv, or a built-in kind: `{ "$peak": "guard-rules" }`
 * (the guard's own validation), `{ "$peak": "rpc-routes" }` (RPC condition routing rules)
 * or `{ "$peak": "lb-weights" }` (`{ "<instanceId>": weight }`, applied by the control
 * plane to the registry, so every consumer's balancer sees it).
 *
 * ajv is loaded on the first check, not with `peakware/config`: an SDK that only reads
 * config never pays for it.
 */
import { createRequire } from 'node:module';
import type { Ajv2020, ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import { validateRules } from '../guard/rule-validation.js';
import { ConditionRules } from '../rpc/router.js';

/** The built-in schema kinds, for governance rule sets. */
export const BUILTIN_SCHEMAS = ['guard-rules', 'rpc-routes', 'lb-weights'] as const;

/** One of {@link BUILTIN_SCHEMAS}. */
export type BuiltinSchema = (typeof BUILTIN_SCHEMAS)[number];

/** A JSON Schema, or a built-in kind (`$peak`). The common keywords are typed; any other is allowed. */
export interface ConfigSchema {
  /** A built-in kind instead of a JSON Schema. */
  $peak?: BuiltinSchema;
  type?: 'object' | 'array' | 'string' | 'number' | 'integer' | 'boolean' | 'null';
  properties?: Record<string, ConfigSchema>;
  required?: string[];
  additionalProperties?: boolean | ConfigSchema;
  items?: ConfigSchema;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minItems?: number;
  maxItems?: number;
  /** Any other JSON Schema keyword (`oneOf`, `format`, `$defs`, ...). */
  [keyword: string]: unknown;
}

/** One problem found in a value: where (`rules[2].when`) and what. */
export interface SchemaProblem {
  path: string;
  reason: string;
}

const requireCjs = createRequire(import.meta.url);
let shared: Ajv2020 | undefined;

/** The one ajv for config schemas, made on first use. */
function ajv(): Ajv2020 {
  if (shared === undefined) {
    const { Ajv2020: AjvClass } = requireCjs(
      'ajv/dist/2020.js',
    ) as typeof import('ajv/dist/2020.js');
    const addFormats = requireCjs('ajv-formats') as (a: Ajv2020) => Ajv2020;
    shared = new AjvClass({
      allErrors: true,
      verbose: true,
      strict: true,
      strictTypes: false,
      strictTuples: false,
      strictRequired: false,
      logger: false,
      addUsedSchema: false,
    });
    shared.addMetaSchema(requireCjs('ajv/dist/refs/json-schema-draft-07.json') as object);
    addFormats(shared);
  }
  return shared;
}

/** Compiled validators by schema text (schemas are few; bounded all the same). */
const compiled = new Map<string, ValidateFunction>();
const MAX_COMPILED = 256;

function compile(schema: object): ValidateFunction {
  const key = JSON.stringify(schema);
  let validate = compiled.get(key);
  if (validate === undefined) {
    validate = ajv().compile(schema);
    if (compiled.size >= MAX_COMPILED) compiled.delete(compiled.keys().next().value as string);
    compiled.set(key, validate);
  }
  return validate;
}

/** `$` + a JSON pointer (`/pool/max`) and an optional property → `$.pool.max`. */
function pathOf(segments: readonly string[]): string {
  let out = '$';
  for (const p of segments) out += /^\d+$/.test(p) ? `[${p}]` : `.${p}`;
  return out;
}

function segmentsOf(pointer: string, extra?: string): string[] {
  const parts = pointer
    .split('/')
    .slice(1)
    .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'));
  return extra === undefined ? parts : [...parts, extra];
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

/** One ajv error as a problem worded like the rest of Peakware's config errors. */
function problemOf(e: ErrorObject): { segments: string[]; reason: string } {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return {
        segments: segmentsOf(e.instancePath, String(p.missingProperty)),
        reason: 'is required',
      };
    case 'additionalProperties':
      return {
        segments: segmentsOf(e.instancePath, String(p.additionalProperty)),
        reason: 'is not allowed (additionalProperties: false)',
      };
    case 'type':
      return {
        segments: segmentsOf(e.instancePath),
        reason: `must be ${String(p.type)}, got ${typeOf(e.data)}`,
      };
    case 'enum':
      return {
        segments: segmentsOf(e.instancePath),
        reason: `must be one of ${JSON.stringify(p.allowedValues)}`,
      };
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return {
        segments: segmentsOf(e.instancePath),
        reason: `must be ${String(p.comparison)} ${String(p.limit)}`,
      };
    case 'minLength':
    case 'maxLength':
      return {
        segments: segmentsOf(e.instancePath),
        reason: `must have at ${e.keyword === 'minLength' ? 'least' : 'most'} ${String(p.limit)} characters`,
      };
    case 'minItems':
    case 'maxItems':
      return {
        segments: segmentsOf(e.instancePath),
        reason: `must have at ${e.keyword === 'minItems' ? 'least' : 'most'} ${String(p.limit)} items`,
      };
    case 'pattern':
      return { segments: segmentsOf(e.instancePath), reason: `must match /${String(p.pattern)}/` };
    default:
      return { segments: segmentsOf(e.instancePath), reason: e.message ?? `fails '${e.keyword}'` };
  }
}

/** Where a path sits in `value`, for listing problems in the order the value has them. */
function positionIn(value: unknown, segments: readonly string[]): number[] {
  const out: number[] = [];
  let at = value;
  for (const s of segments) {
    if (Array.isArray(at)) {
      out.push(Number(s));
      at = at[Number(s)];
    } else if (typeof at === 'object' && at !== null) {
      const keys = Object.keys(at);
      const i = keys.indexOf(s);
      out.push(i < 0 ? keys.length : i);
      at = (at as Record<string, unknown>)[s];
    } else break;
  }
  return out;
}

function before(a: number[], b: number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** Problems with a schema itself (not a JSON Schema, unknown keywords, bad pattern); empty when usable. */
export function checkSchema(schema: unknown, path = '$'): SchemaProblem[] {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema))
    return [{ path, reason: 'a schema must be an object' }];
  const s = schema as Record<string, unknown>;
  if (s.$peak !== undefined) {
    return BUILTIN_SCHEMAS.includes(s.$peak as BuiltinSchema)
      ? []
      : [
          {
            path: `${path}.$peak`,
            reason: `unknown built-in schema; use one of ${BUILTIN_SCHEMAS.join(', ')}`,
          },
        ];
  }
  const a = ajv();
  if (!(a.validateSchema(s) as boolean)) {
    return (a.errors ?? []).slice(0, 20).map((e) => ({
      path: `${path}${pathOf(segmentsOf(e.instancePath)).slice(1)}`,
      reason: e.message ?? `fails '${e.keyword}'`,
    }));
  }
  try {
    compile(s);
    return [];
  } catch (err) {
    return [{ path, reason: (err as Error).message }];
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

/** Checks `value` against `schema`; returns every problem found (empty: valid), in value order. */
export function validateValue(value: unknown, schema: ConfigSchema): SchemaProblem[] {
  if (schema.$peak !== undefined) return builtin(schema.$peak, value);
  let validate: ValidateFunction;
  try {
    validate = compile(schema);
  } catch (err) {
    return [{ path: '$', reason: `the schema is unusable: ${(err as Error).message}` }];
  }
  if (validate(value)) return [];
  return (validate.errors ?? [])
    .map(problemOf)
    .map((p) => ({ ...p, at: positionIn(value, p.segments) }))
    .sort((a, b) => before(a.at, b.at))
    .slice(0, 20)
    .map((p) => ({ path: pathOf(p.segments), reason: p.reason }));
}
