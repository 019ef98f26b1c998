/**
 * What route handlers know of the caller the host authenticated (http-api.ts), and the one
 * check they make on resources only the request names: {@link authorize}. The host has
 * already checked the route's decision (its `auth` and, for app credentials, that they hold
 * a grant of the route's `scope` kind); a handler checks the resource: the topic, group,
 * service or config item the request is about.
 *
 * Operators (role tokens) pass resource checks: a route's role decision already admitted
 * them. Apps pass when one of their grants covers the resource.
 */
import type { FastifyRequest } from 'fastify';
import { ErrorCodes, PeakError } from '../core/errors.js';
import { formatScope, globMatches, realName, type ScopeKind, scopeAllows } from './app-scopes.js';
import type { Caller } from './authenticator.js';

/** The verified caller of `request` (`request.caller`); undefined on a public route. */
export function callerOf(request: FastifyRequest): Caller | undefined {
  return request.caller;
}

/** The app name of an app caller, undefined for operators and public calls. */
export function callerApp(request: FastifyRequest): string | undefined {
  const c = request.caller;
  return c?.kind === 'app' ? c.app : undefined;
}

/** The caller's name for audit trails: `admin-token`, `token:<name>`, `app:<name>` or `anonymous`. */
export function callerName(request: FastifyRequest): string {
  const c = request.caller;
  return c === undefined ? 'anonymous' : c.who;
}

/** Whether the caller may `kind` on `resource` (see the header). */
export function allows(request: FastifyRequest, kind: ScopeKind, resource: string): boolean {
  return callerAllows(request.caller, kind, resource);
}

/** {@link allows} for a caller verified outside HTTP (the node's RPC port). */
export function callerAllows(c: Caller | undefined, kind: ScopeKind, resource: string): boolean {
  if (c === undefined) return false;
  if (c.kind === 'role') return true;
  return scopeAllows(c.scopes, kind, resource);
}

/**
 * Whether the caller may read messages of `topic`: an operator, or an app that may produce
 * to it or consume it in some group.
 */
export function mayReadTopic(request: FastifyRequest, topic: string): boolean {
  const c = request.caller;
  if (c === undefined) return false;
  if (c.kind === 'role') return true;
  const name = realName(topic);
  for (const s of c.scopes) {
    if (s.kind === 'produce' && globMatches(s.pattern, name)) return true;
    if (s.kind === 'consume' && globMatches(s.pattern.split('/')[0]!, name)) return true;
  }
  return false;
}

/** The resource name a kind's grant is matched against (shadow names as real ones). */
export function scopeResource(kind: ScopeKind, ...parts: string[]): string {
  return kind === 'consume' || kind === 'produce' ? parts.map(realName).join('/') : parts.join('/');
}

/**
 * Throws PEAK_FORBIDDEN unless the caller may `kind` on `resource`, saying which grant
 * would allow it. Kinds whose pattern is optional (`drill`, `stress`, `txn`, ...) are
 * checked the same way: a grant left without a pattern is `*`.
 */
export function authorize(request: FastifyRequest, kind: ScopeKind, resource: string): void {
  authorizeCaller(request.caller, kind, resource);
}

/** {@link authorize} for a caller verified outside HTTP (the node's RPC port). */
export function authorizeCaller(c: Caller | undefined, kind: ScopeKind, resource: string): void {
  if (callerAllows(c, kind, resource)) return;
  const grants = c?.kind === 'app' ? c.scopes.map(formatScope) : [];
  const who = c?.kind === 'app' ? `app '${c.app}'` : 'this caller';
  throw new PeakError(
    ErrorCodes.FORBIDDEN,
    `${who} may not ${kind} ${resource}: its credential grants ${grants.join(', ') || 'nothing'}; an admin can add '${kind}:${resource}' with 'peak app scopes'`,
    { details: { app: c?.kind === 'app' ? c.app : null, need: `${kind}:${resource}` } },
  );
}

/** {@link authorize} for each of `resources` (a transaction's services, say). */
export function authorizeEach(
  request: FastifyRequest,
  kind: ScopeKind,
  resources: Iterable<string>,
): void {
  for (const r of new Set(resources)) authorize(request, kind, r);
}
