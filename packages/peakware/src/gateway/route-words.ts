/**
 * A route in a few words, as operators search for it: where it goes, and the words a filter
 * matches (name, API, method, host, path, target). Used by the control plane's route
 * listing (`GET /api/v1/gateway/routes?match=`) and the console, so both match alike. No
 * imports: the console's bundle takes it as it is.
 */
import type { GatewayRouteSpec } from './gateway-objects.js';

/** Where a route goes: `RPC svc.method`, `MQ topic t`, `HTTP svc-or-urls`. */
export function routeTargetText(r: GatewayRouteSpec): string {
  const t = r.target;
  if (t.kind === 'rpc') return `RPC ${t.service}.${t.method}`;
  if (t.kind === 'mq') return `MQ topic ${t.topic}`;
  return `HTTP ${t.service ?? t.urls?.join(', ') ?? ''}`;
}

/** Whether a route's words hold `match` (any case; an empty match holds for every route). */
export function routeMatches(r: GatewayRouteSpec, match: string): boolean {
  const m = match.trim().toLowerCase();
  if (m === '') return true;
  return `${r.name} ${r.api ?? ''} ${r.method} ${r.host ?? ''} ${r.path} ${routeTargetText(r)}`
    .toLowerCase()
    .includes(m);
}
