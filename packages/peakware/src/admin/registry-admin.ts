/**
 * The registry's admin API (`/api/v1/registry`): services with their instance counts,
 * instances with their leases, steering one instance (offline / online / weight / tags) and
 * removing one (`remove`).
 * Registering is the SDK's (`HttpRegistry` in `peakware/registry`).
 */

import type { InstanceView } from '../registry/server/registry-store.js';
import type { InstanceStatus } from '../registry/service-instance.js';
import type { AdminTransport } from './admin-transport.js';

export type { InstanceStatus, InstanceView };

/** One service key and how many of its instances are up or offline. */
export interface ServiceSummary {
  /** `group/name:version`. */
  key: string;
  service: string;
  version: string;
  group: string;
  up: number;
  offline: number;
}

/** What can be changed on a registered instance at runtime. */
export interface InstanceChange {
  /** Only this service key's registration (default: every registration of the instance). */
  key?: string;
  weight?: number;
  tags?: readonly string[];
  status?: InstanceStatus;
}

const BASE = '/api/v1/registry';

/** The registry's admin calls. */
export class RegistryAdmin {
  readonly #http: AdminTransport;

  constructor(http: AdminTransport) {
    this.#http = http;
  }

  /** Every registered service key. */
  async services(): Promise<ServiceSummary[]> {
    return (await this.#http.get<{ services: ServiceSummary[] }>(`${BASE}/services`)).services;
  }

  /** Instances of one service key (`group/name:version`), or all. */
  async instances(options: { key?: string } = {}): Promise<InstanceView[]> {
    const r = await this.#http.get<{ instances: InstanceView[] }>(`${BASE}/instances`, {
      query: { key: options.key },
    });
    return r.instances;
  }

  /** Changes an instance's status, weight or tags (PEAK_NOT_FOUND when not registered). */
  change(instanceId: string, change: InstanceChange): Promise<{ changed: number }> {
    return this.#http.post(`${BASE}/instances/${encodeURIComponent(instanceId)}/admin`, change, {
      idempotent: true,
    });
  }

  /**
   * Removes an instance's registrations (only `key`'s, if given). PEAK_REGISTRY_INSTANCE_UP
   * while it is up, unless `force`; PEAK_REGISTRY_NOT_FOUND when it is not registered.
   */
  remove(
    instanceId: string,
    options: { key?: string; force?: boolean } = {},
  ): Promise<{ removed: number }> {
    return this.#http.delete(`${BASE}/instances/${encodeURIComponent(instanceId)}/admin`, {
      query: { key: options.key, force: options.force === true ? 'true' : undefined },
    });
  }

  /** Takes an instance out of traffic; it stays registered. */
  offline(instanceId: string): Promise<{ changed: number }> {
    return this.change(instanceId, { status: 'offline' });
  }

  /** Puts an offline instance back into traffic. */
  online(instanceId: string): Promise<{ changed: number }> {
    return this.change(instanceId, { status: 'up' });
  }

  /** Sets an instance's load-balancing weight (0: no traffic). */
  weight(instanceId: string, weight: number): Promise<{ changed: number }> {
    return this.change(instanceId, { weight });
  }
}
