/**
 * What an app's credential may do: a list of grants, each `kind` or `kind:pattern`, as
 * `peak app create <name> --can <grant>` takes them (Kubernetes RBAC's verbs × resources,
 * RocketMQ ACL's per-resource grants). A pattern names resources with `*` matching any run
 * of characters:
 *
 * | grant                         | allows                                                   |
 * |-------------------------------|----------------------------------------------------------|
 * | `register:<service>`          | register, renew, patch and deregister its own instances of the service |
 * | `produce:<topic>`             | send, half messages, commit/rollback, check-backs        |
 * | `consume:<topic>/<group>`     | receive, stream, ack, nack, leave, the group's dead letters |
 * | `read-config:<app>/<item>`    | read config items `<app>/<group>/<key>` (`shop/*`: all of app shop) |
 * | `telemetry[:<service>]`       | push spans (also OTLP) and metrics                       |
 * | `guard-token[:<namespace>]`   | take guard cluster tokens, report guard metrics          |
 * | `drill[:<service>]`           | an instance of the service (of the app, when the report names no service) reports its active faults |
 * | `stress[:<run>]`              | stress agents' heartbeats and reports of the run         |
 * | `txn[:<service>]`             | submit global transactions whose branches (and check-back) call only such services; act on its own ones |
 * | `scale[:<service>]`           | a supervisor's (or actuator's) reports of its services' instances |
 *
 * Stress traffic's shadow names (`%SHADOW%<topic>`) are checked as the real name.
 */
import { InvalidArgumentError } from '../core/errors.js';

/** The kinds of grant, each the scope of a group of SDK routes. */
export const SCOPE_KINDS = [
  'register',
  'produce',
  'consume',
  'read-config',
  'telemetry',
  'guard-token',
  'drill',
  'stress',
  'txn',
  'scale',
] as const;

/** One kind of grant. */
export type ScopeKind = (typeof SCOPE_KINDS)[number];

/** One grant: a kind and the resources it covers. */
export interface Scope {
  kind: ScopeKind;
  /** A pattern over the kind's resource names; `*` matches any run of characters. */
  pattern: string;
}

/** Kinds whose pattern may be left out (then it is `*`: every resource). */
const OPTIONAL_PATTERN = new Set<ScopeKind>([
  'telemetry',
  'guard-token',
  'drill',
  'stress',
  'txn',
  'scale',
]);

/** What each kind's resource looks like, for messages. */
const RESOURCE: Record<ScopeKind, string> = {
  register: 'a service name, e.g. register:shop.order',
  produce: 'a topic, e.g. produce:shop.order-placed',
  consume: 'topic/group, e.g. consume:shop.order-placed/points',
  'read-config': 'app/item, e.g. read-config:shop/*',
  telemetry: 'a service name (optional), e.g. telemetry or telemetry:shop.*',
  'guard-token': 'a guard namespace (optional), e.g. guard-token or guard-token:shop',
  drill: 'a service name (optional): its instances report their active faults, e.g. drill',
  stress: "a run (optional): stress agents' heartbeats and reports, e.g. stress",
  txn: 'a service the branches call (optional): submit and drive global transactions, e.g. txn or txn:shop.*',
  scale: 'a service name (optional): supervisors report its instances, e.g. scale or scale:shop.*',
};

const PATTERN = /^[A-Za-z0-9_.:@*/%-]{1,256}$/;

/** Parses one `kind[:pattern]` grant; throws PEAK_INVALID_ARGUMENT naming what is wrong. */
export function parseScope(text: string): Scope {
  const colon = text.indexOf(':');
  const kind = (colon < 0 ? text : text.slice(0, colon)) as ScopeKind;
  if (!SCOPE_KINDS.includes(kind)) {
    throw new InvalidArgumentError(
      `'${text}' is not a grant: it starts with one of ${SCOPE_KINDS.join(', ')}`,
      { details: { input: text } },
    );
  }
  let pattern = colon < 0 ? '' : text.slice(colon + 1);
  if (pattern === '') {
    if (!OPTIONAL_PATTERN.has(kind)) {
      throw new InvalidArgumentError(
        `'${text}' names no resource: ${kind} takes ${RESOURCE[kind]}`,
        {
          details: { input: text },
        },
      );
    }
    pattern = '*';
  }
  if (!PATTERN.test(pattern)) {
    throw new InvalidArgumentError(
      `'${text}': the pattern takes 1-256 letters, digits or _ . : @ * / % -`,
      { details: { input: text } },
    );
  }
  if (kind === 'consume' && pattern.split('/').length !== 2) {
    throw new InvalidArgumentError(
      `'${text}': consume takes topic/group, e.g. consume:orders/points or consume:*/*`,
      {
        details: { input: text },
      },
    );
  }
  return { kind, pattern };
}

/** The grant's text form (`kind:pattern`). */
export function formatScope(scope: Scope): string {
  return `${scope.kind}:${scope.pattern}`;
}

/** Parses a list of grants, dropping duplicates; throws on the first bad one. */
export function parseScopes(texts: readonly string[]): Scope[] {
  const seen = new Set<string>();
  const out: Scope[] = [];
  for (const t of texts) {
    const s = parseScope(t.trim());
    const key = formatScope(s);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(s);
  }
  return out;
}

const compiled = new Map<string, RegExp>();

function globRegExp(pattern: string): RegExp {
  let re = compiled.get(pattern);
  if (re === undefined) {
    const body = pattern
      .split('*')
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*');
    re = new RegExp(`^${body}$`);
    if (compiled.size > 10_000) compiled.clear();
    compiled.set(pattern, re);
  }
  return re;
}

/** Whether `pattern` (a grant's) matches `name`. */
export function globMatches(pattern: string, name: string): boolean {
  return pattern === '*' || pattern === name || globRegExp(pattern).test(name);
}

/** A real name for a derived one: `%SHADOW%orders` is checked as `orders`. */
export function realName(name: string): string {
  return name.startsWith('%SHADOW%') ? name.slice('%SHADOW%'.length) : name;
}

/** Whether one of `scopes` grants `kind` on `resource`. */
export function scopeAllows(scopes: readonly Scope[], kind: ScopeKind, resource: string): boolean {
  for (const s of scopes) if (s.kind === kind && globMatches(s.pattern, resource)) return true;
  return false;
}

/** Whether one of `scopes` is of `kind` at all (a cheap first check before the resource is known). */
export function hasScopeKind(scopes: readonly Scope[], kind: ScopeKind): boolean {
  for (const s of scopes) if (s.kind === kind) return true;
  return false;
}

/** The grants a local development app holds: every SDK scope on every resource. */
export const LOCAL_APP_SCOPES: readonly string[] = [
  'register:*',
  'produce:*',
  'consume:*/*',
  'read-config:*',
  'telemetry',
  'guard-token',
  'drill',
  'stress',
  'txn',
  'scale',
];
