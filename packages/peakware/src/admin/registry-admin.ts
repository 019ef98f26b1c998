/**
 * The registry's admin API (`/api/v1/registry`): services with their instance counts,
 * instances with their leases, and steering one instance (offline / online / weight / tags).
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
