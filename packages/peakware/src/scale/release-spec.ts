/**
 * A release (`peak release start`): a new version of a supervised service started in a
 * gray group beside the primary one, given traffic by weight steps (or by a rule: the
 * calls marked by a header, or a growing share of users by the hash of a key), compared with the
 * primary at each step, and promoted or rolled back by the analysis. The defaults follow
 * Argo Rollouts and Flagger (steps, a progress deadline after which an inconclusive step
 * pauses for a person) and Kayenta (tolerance 0.25, confidence 0.95).
 */
import { ErrorCodes, PeakError } from '../core/errors.js';
import { SCALE_NAME, splitCommand } from './app-spec.js';
import { parseYamlSubset } from './yaml-subset.js';

/**
 * A release's traffic by rule instead of weight (Argo Rollouts' header routing, Flagger's
 * A/B testing): `header` sends the calls whose call-context tag or baggage entry `header`
 * equals `value` to the new version (one step); `userHash` sends the calls whose
 * `hash(<userHash>) % 100` is below the step's percentage (the steps are shares of users,
 * and a user stays on one version while the share grows).
 */
export type ReleaseRule = { header: string; value: string } | { userHash: string };

/** What `peak release start` sends. */
export interface ReleaseRequest {
  app: string;
  service: string;
  /** The new version's label (not the primary's). */
  version: string;
  /** The new version's command line. */
  command: string;
  /** Gray instances to start. Default 1. */
  grayInstances?: number;
  /**
   * The new version's share of traffic at each step, percent, rising, ending at 100 (of
   * users, with a `userHash` rule). Default [10, 25, 50, 100]; one step, [100], with a
   * `header` rule.
   */
  steps?: number[];
  /** Route by this rule instead of by weight. */
  rule?: ReleaseRule;
  /** How long each step runs before it may pass, ms. Default 30 000. */
  stepHoldMs?: number;
  /** Calls the new version must take in a step before it is judged. Default 100. */
  minSamples?: number;
  /** Most the new version's error rate may exceed the primary's (0.01 = one point). Default 0.01. */
  maxErrorRateIncrease?: number;
  /** Most the new version's p99 may exceed the primary's, as a fraction. Default 0.25. */
  p99Tolerance?: number;
  /** And in ms on top (noise on fast calls). Default 5. */
  p99SlackMs?: number;
  /** Confidence an error-rate difference must have to fail a step. Default 0.95. */
  confidence?: number;
  /** A step (or the gray start) without a verdict this long pauses the release, ms. Default 600 000. */
  progressDeadlineMs?: number;
  /** The service name its metrics are pushed under. Default: the service. */
  telemetryService?: string;
  /** Compare one resource only. Default: every resource of the service. */
  resource?: string;
  /** Who starts it, for the audit. */
  author?: string;
}

/** A release's settings with every default applied. */
export type ReleaseSettings = Required<
  Omit<
    ReleaseRequest,
    'app' | 'service' | 'version' | 'command' | 'author' | 'telemetryService' | 'resource' | 'rule'
  >
> &
  Pick<ReleaseRequest, 'telemetryService' | 'resource' | 'rule'>;

/** The defaults of {@link ReleaseRequest}, in one place. */
export const RELEASE_DEFAULTS = {
  grayInstances: 1,
  steps: [10, 25, 50, 100],
  stepHoldMs: 30_000,
  minSamples: 100,
  maxErrorRateIncrease: 0.01,
  p99Tolerance: 0.25,
  p99SlackMs: 5,
  confidence: 0.95,
  progressDeadlineMs: 600_000,
} as const;

function invalid(field: string, reason: string): PeakError {
  return new PeakError(ErrorCodes.SCALE_INVALID, `release ${field}: ${reason}`, {
    details: { path: field },
  });
}

function num(v: unknown, lo: number, hi: number, int: boolean): boolean {
  return (
    typeof v === 'number' &&
    Number.isFinite(v) &&
    v >= lo &&
    v <= hi &&
    (!int || Number.isInteger(v))
  );
}

/** Checks a release request and applies the defaults; throws PEAK_SCALE_INVALID naming the field. */
export function checkReleaseRequest(r: ReleaseRequest): ReleaseSettings {
  for (const f of ['app', 'service', 'version'] as const)
    if (typeof r[f] !== 'string' || !SCALE_NAME.test(r[f]))
      throw invalid(f, 'must be 1-128 letters, digits or _ . -');
  if (typeof r.command !== 'string' || splitCommand(r.command).length === 0)
    throw invalid('command', 'must be a command line');
  const s: ReleaseSettings = { ...RELEASE_DEFAULTS, steps: [...RELEASE_DEFAULTS.steps] };
  for (const [k, v] of Object.entries(r))
    if (v !== undefined && k in s) (s as Record<string, unknown>)[k] = v;
  if (r.telemetryService !== undefined) s.telemetryService = r.telemetryService;
  if (r.resource !== undefined) s.resource = r.resource;
  if (r.rule !== undefined) {
    s.rule = checkRule(r.rule);
    if ('header' in s.rule) {
      if (r.steps !== undefined && (r.steps.length !== 1 || r.steps[0] !== 100))
        throw invalid('steps', 'a header rule has one step (the marked calls); leave steps out');
      s.steps = [100];
    }
  }
  if (!num(s.grayInstances, 1, 100, true))
    throw invalid('grayInstances', 'must be an integer from 1 to 100');
  if (!Array.isArray(s.steps) || s.steps.length === 0 || s.steps.length > 20)
    throw invalid('steps', 'must be 1-20 percentages');
  for (const [i, w] of s.steps.entries()) {
    if (!num(w, 1, 100, false)) throw invalid(`steps[${i}]`, 'must be a percentage from 1 to 100');
    if (s.rule !== undefined && !Number.isInteger(w))
      throw invalid(`steps[${i}]`, 'must be a whole percentage with a userHash rule');
    if (i > 0 && w <= s.steps[i - 1]!)
      throw invalid(`steps[${i}]`, 'must be above the step before it');
  }
  if (s.steps.at(-1) !== 100)
    throw invalid(`steps[${s.steps.length - 1}]`, 'the last step must be 100');
  if (!num(s.stepHoldMs, 0, 86_400_000, true))
    throw invalid('stepHoldMs', 'must be an integer of ms from 0 to 86400000');
  if (!num(s.minSamples, 1, 1_000_000, true))
    throw invalid('minSamples', 'must be an integer from 1 to 1000000');
  if (!num(s.maxErrorRateIncrease, 0, 1, false))
    throw invalid('maxErrorRateIncrease', 'must be from 0 to 1');
  if (!num(s.p99Tolerance, 0, 100, false)) throw invalid('p99Tolerance', 'must be from 0 to 100');
  if (!num(s.p99SlackMs, 0, 60_000, false)) throw invalid('p99SlackMs', 'must be from 0 to 60000');
  if (!num(s.confidence, 0.5, 0.9999, false))
    throw invalid('confidence', 'must be from 0.5 to 0.9999');
  if (!num(s.progressDeadlineMs, 1000, 86_400_000, true))
    throw invalid('progressDeadlineMs', 'must be an integer of ms from 1000 to 86400000');
  return s;
}

const HEADER_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const KEY_PATH = /^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*$/;

function checkRule(rule: unknown): ReleaseRule {
  if (typeof rule !== 'object' || rule === null || Array.isArray(rule))
    throw invalid('rule', 'must be { "header": NAME, "value": V } or { "userHash": KEY }');
  const r = rule as Record<string, unknown>;
  const keys = Object.keys(r).sort().join(',');
  if (keys === 'header,value') {
    if (typeof r.header !== 'string' || !HEADER_NAME.test(r.header))
      throw invalid('rule.header', 'must be 1-64 letters, digits or _ . - (a tag or baggage name)');
    if (typeof r.value !== 'string' || r.value.length === 0 || r.value.length > 256)
      throw invalid('rule.value', 'must be a string of 1-256 characters');
    return { header: r.header, value: r.value };
  }
  if (keys === 'userHash') {
    if (typeof r.userHash !== 'string' || r.userHash.length > 128 || !KEY_PATH.test(r.userHash))
      throw invalid(
        'rule.userHash',
        "must be the call's field to hash, a name or dotted path (buyerId, tags.user)",
      );
    return { userHash: r.userHash };
  }
  throw invalid(
    'rule',
    `must be { "header": NAME, "value": V } or { "userHash": KEY }, not one with ${keys === '' ? 'no field' : keys}`,
  );
}

function quoted(v: string): string {
  return `"${v.replace(/[\\"]/g, '\\$&')}"`;
}

/**
 * The condition (rpc's condition language) that picks the calls of a rule step:
 * `tags["x-gray"] == "1" || baggage["x-gray"] == "1"`, or `hash(buyerId) % 100 < 20`.
 */
export function releaseCondition(rule: ReleaseRule, percent: number): string {
  if ('header' in rule) {
    const name = quoted(rule.header);
    const value = quoted(rule.value);
    return `tags[${name}] == ${value} || baggage[${name}] == ${value}`;
  }
  return `hash(${rule.userHash}) % 100 < ${percent}`;
}

/** What step `i` sends to the new version, in words, for the release log and `peak release show`. */
export function releaseStepLabel(s: Pick<ReleaseSettings, 'steps' | 'rule'>, i: number): string {
  const percent = s.steps[i] ?? 0;
  if (s.rule === undefined) return `${percent}% of calls by weight`;
  if ('header' in s.rule) return `the calls with ${s.rule.header} = ${s.rule.value} (header rule)`;
  return `${percent}% of users, hash(${s.rule.userHash}) % 100 < ${percent}`;
}

/** A release's steps in one line: `steps 10/25/50/100% of calls by weight`, or its rule. */
export function releasePlanLabel(s: Pick<ReleaseSettings, 'steps' | 'rule'>): string {
  if (s.rule === undefined) return `steps ${s.steps.join('/')}% of calls by weight`;
  if ('header' in s.rule)
    return `one step: the calls with ${s.rule.header} = ${s.rule.value} (header rule)`;
  return `steps ${s.steps.join('/')}% of users by hash(${s.rule.userHash}) % 100`;
}

/** The fields a release file may hold (`author` is the CLI's). */
const RELEASE_FILE_FIELDS = [
  'app',
  'service',
  'version',
  'command',
  'grayInstances',
  'steps',
  'rule',
  'stepHoldMs',
  'minSamples',
  'maxErrorRateIncrease',
  'p99Tolerance',
  'p99SlackMs',
  'confidence',
  'progressDeadlineMs',
  'telemetryService',
  'resource',
] as const;

/**
 * Reads a release file (`peak release start --file`; JSON when it starts with `{`, else the
 * app file's YAML subset): the request's fields, each optional (flags add or override them).
 * A header rule's value may be written bare (`value: 1` is `"1"`). Throws
 * PEAK_SCALE_INVALID naming an unknown field; the values are checked with the request.
 */
export function parseReleaseFile(text: string): Partial<ReleaseRequest> {
  const raw = text.trimStart().startsWith('{')
    ? (JSON.parse(text) as unknown)
    : parseYamlSubset(text);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw invalid('file', 'must be a mapping of release fields');
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (!(RELEASE_FILE_FIELDS as readonly string[]).includes(k))
      throw invalid(k, `is not a release field (known: ${RELEASE_FILE_FIELDS.join(', ')})`);
    out[k] = v;
  }
  const rule = out.rule as Record<string, unknown> | undefined;
  if (
    typeof rule === 'object' &&
    rule !== null &&
    (typeof rule.value === 'number' || typeof rule.value === 'boolean')
  )
    out.rule = { ...rule, value: String(rule.value) };
  return out as Partial<ReleaseRequest>;
}
