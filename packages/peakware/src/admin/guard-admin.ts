/**
 * What the guard reports to the control plane (`/api/v1/guard`): the rules each service
 * instance has in force, a resource's per-second stats, and the cluster token server's
 * state (which node leads, the budgets it counts).
 */

import type { GuardRules } from '../guard/rule-types.js';
import type { ClusterTokenServer } from '../guard/server/cluster-token-server.js';
import type { StatsRow } from '../guard/server/guard-report-store.js';
import type { AdminTransport } from './admin-transport.js';

export type { GuardRules, StatsRow };

/** The rules one instance reported. */
export interface InstanceRules {
  app: string;
  instance: string;
  /** When it last reported, epoch ms. */
  lastSeen: number;
  rules: GuardRules;
}

/** One cluster budget in use: tokens granted in the current second. */
export type ClusterBudget = ReturnType<ClusterTokenServer['list']>[number];

/** The cluster token server as one node sees it. */
export interface GuardClusterView {
  nodeId: string;
  /** This node counts every cluster budget. */
  leading: boolean;
  leaderNodeId: string | null;
  /** The budgets this node counts (empty unless it leads). */
  budgets: ClusterBudget[];
}

/** A resource's per-second figures, summed over instances. */
export interface GuardStats {
  resource: string;
  seconds: number;
  rows: StatsRow[];
}

const BASE = '/api/v1/guard';

/** The guard's admin calls. */
export class GuardAdmin {
  readonly #http: AdminTransport;

  constructor(http: AdminTransport) {
    this.#http = http;
  }

  /** The rules each reporting instance has in force (of one app, or all). */
  async rules(options: { app?: string } = {}): Promise<InstanceRules[]> {
    const r = await this.#http.get<{ instances: InstanceRules[] }>(`${BASE}/rules`, {
      query: { app: options.app },
    });
    return r.instances;
  }

  /** A resource's last `seconds` (1-300, default 60) of pass, block, success, error, RT. */
  stats(resource: string, options: { app?: string; seconds?: number } = {}): Promise<GuardStats> {
    return this.#http.get(`${BASE}/stats`, {
      query: { resource, app: options.app, seconds: options.seconds },
    });
  }

  /** Which node leads the cluster token server, and (on that node) the budgets. */
  cluster(): Promise<GuardClusterView> {
    return this.#http.get(`${BASE}/cluster`);
  }
}
