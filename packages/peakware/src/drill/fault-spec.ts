/**
 * A fault as the control plane publishes it in an app's `drill/faults` config item: what
 * happens (kind), where (point and match), to whom (scope), and for how long. The control
 * plane resolves the instance scope to the process incarnations (`boots`) that were live
 * when the fault was injected, so a restarted process (a new boot id) never takes up a
 * fault again. One checker ({@link checkFaultSpec}) serves the control plane (refusing a
 * bad fault with its field) and the agent (skipping one it cannot run).
 */

/** What a fault does to the call it hits. */
export type FaultKind = 'delay' | 'error' | 'exception' | 'timeout' | 'drop';

/** Where a fault hooks in: the seam of one subsystem. */
export type FaultPoint =
  | 'rpc-client'
  | 'rpc-server'
  | 'http'
  | 'sql'
  | 'mq-produce'
  | 'mq-consume'
  | 'cache';

/** Every fault kind. */
export const FAULT_KINDS: readonly FaultKind[] = ['delay', 'error', 'exception', 'timeout', 'drop'];
/** Every injection point. */
export const FAULT_POINTS: readonly FaultPoint[] = [
  'rpc-client',
  'rpc-server',
  'http',
  'sql',
  'mq-produce',
  'mq-consume',
  'cache',
];

/**
 * Which calls at the point a fault hits; every field given must match (absent: any).
 * `statement` is a regular expression over the SQL text, `route` and `key` are prefixes.
 */
export interface FaultMatch {
  /** RPC service name (rpc-client, rpc-server). */
  service?: string;
  /** RPC method name, or HTTP method (http). */
  method?: string;
  /** HTTP path prefix (http). */
  route?: string;
  /** Data source name (sql). */
  dataSource?: string;
  /** Logical table name (sql). */
  table?: string;
  /** Regular expression over the statement text (sql). */
  statement?: string;
  /** Only writes (INSERT / UPDATE / DELETE, and locking reads) (sql). */
  writesOnly?: boolean;
  /** Topic (mq-produce, mq-consume). */
  topic?: string;
  /** Consumer group (mq-consume). */
  group?: string;
  /** Cache name (cache). */
  cache?: string;
  /** Key prefix (cache). */
  key?: string;
}

/** Who a fault applies to. Instances and tags pick processes; the rest picks calls. */
export interface FaultScope {
  /** Instance ids (as the agents report them). Absent: every instance of the app. */
  instances?: string[];
  /** Instance tags: an instance with any of them. */
  tags?: string[];
  /** Caller apps (the call context's `callerApp`). */
  callers?: string[];
  /** Share of the matching calls hit, 0-100. Default 100. */
  percent?: number;
  /** Only stress (shadow) traffic. Default false. */
  stressOnly?: boolean;
}

/** What an operator asks to inject (before the control plane assigns id and targets). */
export interface FaultRequest {
  kind: FaultKind;
  point: FaultPoint;
  match?: FaultMatch;
  scope?: FaultScope;
  /** delay: how long; timeout: how long before failing (default: the call's deadline). */
  delayMs?: number;
  /** error: the error code thrown (default PEAK_DRILL_INJECTED). */
  code?: string;
  /** error / exception: the message. */
  message?: string;
  /** How long the fault lasts, ms (1 s to 1 h). */
  durationMs: number;
  /** The drill (or operator label) it belongs to; `peak drill stop <drill>` ends them together. */
  drill?: string;
}

/** A fault as published: the request with its id, targets and times (control-plane clock). */
export interface FaultSpec extends FaultRequest {
  id: string;
  /** The process incarnations (boot ids) it applies to. */
  boots: string[];
  /** Injected at, epoch ms (control-plane clock; informative). */
  createdAt: number;
}

/** The value of the `drill/faults` config item. */
export interface FaultTableValue {
  faults: FaultSpec[];
}

/** The config item faults are published in (group/key), in the app's namespace. */
export const FAULTS_ITEM = 'drill/faults';
/** Longest fault, ms. */
export const MAX_FAULT_MS = 3_600_000;
/** Shortest fault, ms. */
export const MIN_FAULT_MS = 100;

const CODE = /^PEAK_[A-Z0-9_]{1,64}$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function strings(v: unknown): v is string[] {
  return Array.isArray(v) && v.length <= 1000 && v.every((s) => typeof s === 'string');
}

/**
 * The problems of a fault request (`path: reason`), empty when it is valid. Checks the kind
 * and point, the match fields (a statement that is no regular expression), the scope, and
 * the numbers each kind needs.
 */
export function checkFaultRequest(input: unknown): string[] {
  if (!isObject(input)) return ['$: a fault is an object'];
  const out: string[] = [];
  if (!FAULT_KINDS.includes(input.kind as FaultKind))
    out.push(`kind: must be one of ${FAULT_KINDS.join(', ')}`);
  if (!FAULT_POINTS.includes(input.point as FaultPoint))
    out.push(`point: must be one of ${FAULT_POINTS.join(', ')}`);
  const d = input.durationMs;
  if (typeof d !== 'number' || !Number.isInteger(d) || d < MIN_FAULT_MS || d > MAX_FAULT_MS)
    out.push(`durationMs: must be an integer from ${MIN_FAULT_MS} to ${MAX_FAULT_MS}`);
  if (input.delayMs !== undefined) {
    const v = input.delayMs;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 600_000)
      out.push('delayMs: must be an integer from 0 to 600000');
  } else if (input.kind === 'delay') out.push('delayMs: a delay needs delayMs');
  if (input.code !== undefined && (typeof input.code !== 'string' || !CODE.test(input.code)))
    out.push('code: must look like PEAK_SOMETHING (capitals, digits, _)');
  if (
    input.message !== undefined &&
    (typeof input.message !== 'string' || input.message.length > 500)
  )
    out.push('message: must be a string of at most 500 characters');
  if (
    input.drill !== undefined &&
    (typeof input.drill !== 'string' || !/^[A-Za-z0-9_.-]{1,128}$/.test(input.drill))
  )
    out.push('drill: must be 1-128 of [A-Za-z0-9_.-]');
  if (input.match !== undefined) {
    if (!isObject(input.match)) out.push('match: must be an object');
    else {
      for (const [k, v] of Object.entries(input.match)) {
        if (k === 'writesOnly') {
          if (typeof v !== 'boolean') out.push('match.writesOnly: must be true or false');
        } else if (
          ![
            'service',
            'method',
            'route',
            'dataSource',
            'table',
            'statement',
            'topic',
            'group',
            'cache',
            'key',
          ].includes(k)
        )
          out.push(`match.${k}: unknown field`);
        else if (typeof v !== 'string' || v.length === 0 || v.length > 500)
          out.push(`match.${k}: must be a non-empty string`);
      }
      if (typeof input.match.statement === 'string') {
        try {
          new RegExp(input.match.statement, 'i');
        } catch (err) {
          out.push(`match.statement: not a regular expression (${(err as Error).message})`);
        }
      }
    }
  }
  if (input.scope !== undefined) {
    const s = input.scope;
    if (!isObject(s)) out.push('scope: must be an object');
    else {
      for (const k of ['instances', 'tags', 'callers'])
        if (s[k] !== undefined && !strings(s[k])) out.push(`scope.${k}: must be a list of strings`);
      if (
        s.percent !== undefined &&
        (typeof s.percent !== 'number' || !(s.percent > 0) || s.percent > 100)
      )
        out.push('scope.percent: must be a number above 0, at most 100');
      if (s.stressOnly !== undefined && typeof s.stressOnly !== 'boolean')
        out.push('scope.stressOnly: must be true or false');
      for (const k of Object.keys(s))
        if (!['instances', 'tags', 'callers', 'percent', 'stressOnly'].includes(k))
          out.push(`scope.${k}: unknown field`);
    }
  }
  return out;
}

/** The problems of a published fault: a valid request with an id and boot ids. */
export function checkFaultSpec(input: unknown): string[] {
  const out = checkFaultRequest(input);
  if (!isObject(input)) return out;
  if (typeof input.id !== 'string' || input.id.length === 0) out.push('id: missing');
  if (!strings(input.boots)) out.push('boots: must be a list of boot ids');
  if (typeof input.createdAt !== 'number') out.push('createdAt: must be epoch ms');
  return out;
}
