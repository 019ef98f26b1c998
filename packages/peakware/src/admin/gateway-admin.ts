/**
 * The gateway's admin API (`/api/v1/gateway`): routes (one at a time or in batches), apps,
 * their keys (issue, rotate with overlap, revoke), subscriptions (request, approve with a
 * quota, reject, revoke) and quota usage. What `peak gateway` processes call (the change
 * stream, leases, nonces) is `peakware/gateway`'s.
 */

import type {
  GatewayAppSpec,
  GatewayKey,
  GatewayQuotaSpec,
  GatewayRouteSpec,
  GatewaySubscription,
  SubscriptionStatus,
} from '../gateway/gateway-objects.js';
import type { KeyView, quotaUsage } from '../gateway/server/gateway-store.js';
import type { AdminTransport } from './admin-transport.js';

export type {
  GatewayAppSpec,
  GatewayKey,
  GatewayQuotaSpec,
  GatewayRouteSpec,
  GatewaySubscription,
  KeyView,
  SubscriptionStatus,
};

/** One row of quota usage: an app's subscription to an API, this UTC day and month. */
export type QuotaUsageRow = Awaited<ReturnType<typeof quotaUsage>>[number];

/** A page of routes: those matching, the first of them, and the counts. */
export interface RoutePage {
  routes: GatewayRouteSpec[];
  /** Routes in all. */
  total: number;
  /** Routes that match (`routes` holds the first `limit` of them). */
  matching: number;
}

const BASE = '/api/v1/gateway';
const enc = encodeURIComponent;

/** The gateway's admin calls. */
export class GatewayAdmin {
  readonly #http: AdminTransport;

  constructor(http: AdminTransport) {
    this.#http = http;
  }

  /** Every route. */
  async routes(): Promise<GatewayRouteSpec[]> {
    return (await this.#http.get<{ routes: GatewayRouteSpec[] }>(`${BASE}/routes`)).routes;
  }

  /**
   * The routes whose name, API, method, host, path or target hold `match` (any case), the
   * first `limit` of them, with how many match and how many there are: a page of a large
   * table (10 000 routes) without sending all of it.
   */
  routePage(query: { match?: string; limit?: number }): Promise<RoutePage> {
    return this.#http.get<RoutePage>(`${BASE}/routes`, { query });
  }

  /** One route (PEAK_GATEWAY_NOT_FOUND when there is none). */
  route(name: string): Promise<GatewayRouteSpec> {
    return this.#http.get(`${BASE}/routes/${enc(name)}`);
  }

  /** Creates or replaces a route; resolves with the change's rev. */
  putRoute(route: GatewayRouteSpec): Promise<{ route: GatewayRouteSpec; rev: number }> {
    return this.#http.put(`${BASE}/routes/${enc(route.name)}`, route);
  }

  /** Creates, replaces and deletes routes in one change (up to 5000 of each). */
  putRoutes(
    routes: readonly GatewayRouteSpec[],
    remove: readonly string[] = [],
  ): Promise<{ rev: number }> {
    return this.#http.post(
      `${BASE}/routes/batch`,
      { routes, delete: remove },
      { idempotent: true },
    );
  }

  /** Deletes a route. */
  deleteRoute(name: string): Promise<{ deleted: string }> {
    return this.#http.delete(`${BASE}/routes/${enc(name)}`);
  }

  /** Every app. */
  async apps(): Promise<GatewayAppSpec[]> {
    return (await this.#http.get<{ apps: GatewayAppSpec[] }>(`${BASE}/apps`)).apps;
  }

  /** One app. */
  app(name: string): Promise<GatewayAppSpec> {
    return this.#http.get(`${BASE}/apps/${enc(name)}`);
  }

  /** Creates or replaces an app. */
  putApp(app: GatewayAppSpec): Promise<GatewayAppSpec> {
    return this.#http.put(`${BASE}/apps/${enc(app.name)}`, app);
  }

  /** Deletes an app with its keys and subscriptions. */
  deleteApp(name: string): Promise<{ deleted: string }> {
    return this.#http.delete(`${BASE}/apps/${enc(name)}`);
  }

  /** An app's keys, without their secrets. */
  async keys(app: string): Promise<KeyView[]> {
    return (await this.#http.get<{ keys: KeyView[] }>(`${BASE}/apps/${enc(app)}/keys`)).keys;
  }

  /** Issues a key (its secret is in this answer only). */
  createKey(app: string): Promise<GatewayKey> {
    return this.#http.post(`${BASE}/apps/${enc(app)}/keys`, {});
  }

  /** Issues a new key; the app's other keys keep working for `overlapSeconds`, then expire. */
  rotateKey(app: string, overlapSeconds: number): Promise<GatewayKey> {
    return this.#http.post(`${BASE}/apps/${enc(app)}/keys`, { overlapSeconds });
  }

  /** Revokes a key at once. */
  revokeKey(id: string): Promise<KeyView> {
    return this.#http.delete(`${BASE}/keys/${enc(id)}`);
  }

  /** Subscriptions, optionally of one app, one API or in one status. */
  async subscriptions(
    filter: { app?: string; api?: string; status?: SubscriptionStatus } = {},
  ): Promise<GatewaySubscription[]> {
    const r = await this.#http.get<{ subscriptions: GatewaySubscription[] }>(
      `${BASE}/subscriptions`,
      { query: filter },
    );
    return r.subscriptions;
  }

  /** An app asks for an API (pending until approved). */
  requestSubscription(app: string, api: string, note?: string): Promise<GatewaySubscription> {
    return this.#http.post(
      `${BASE}/subscriptions`,
      { app, api, ...(note === undefined ? {} : { note }) },
      { idempotent: true },
    );
  }

  /** Approves a subscription, optionally with its quota. */
  approve(
    app: string,
    api: string,
    options: { quota?: GatewayQuotaSpec; note?: string } = {},
  ): Promise<GatewaySubscription> {
    return this.#http.post(`${BASE}/subscriptions/${enc(app)}/${enc(api)}/approve`, options, {
      idempotent: true,
    });
  }

  /** Rejects a subscription. */
  reject(app: string, api: string, note?: string): Promise<GatewaySubscription> {
    return this.#http.post(
      `${BASE}/subscriptions/${enc(app)}/${enc(api)}/reject`,
      note === undefined ? {} : { note },
      { idempotent: true },
    );
  }

  /** Revokes an approved subscription. */
  revoke(app: string, api: string, note?: string): Promise<GatewaySubscription> {
    return this.#http.post(
      `${BASE}/subscriptions/${enc(app)}/${enc(api)}/revoke`,
      note === undefined ? {} : { note },
      { idempotent: true },
    );
  }

  /** Sets a subscription's quota. */
  setQuota(app: string, api: string, quota: GatewayQuotaSpec): Promise<GatewaySubscription> {
    return this.#http.put(`${BASE}/subscriptions/${enc(app)}/${enc(api)}/quota`, quota);
  }

  /** Quota usage this UTC day and month. */
  async quota(filter: { app?: string; api?: string } = {}): Promise<QuotaUsageRow[]> {
    return (await this.#http.get<{ usage: QuotaUsageRow[] }>(`${BASE}/quota`, { query: filter }))
      .usage;
  }
}
