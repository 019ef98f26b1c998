/**
 * The control plane itself: liveness, readiness, the node answering, every live node, the
 * Prometheus page, and admin-token rotation.
 */
import type { RoleTokenView } from '../server/role-tokens.js';
import type { AdminTransport } from './admin-transport.js';

/** The node answering. */
export interface ServerInfo {
  name: string;
  version: string;
  nodeId: string;
  schemaVersion: number;
  /** `embedded` or `external`. */
  postgres: string;
  /** The subsystems this node serves (`peak server --roles`). */
  roles: string[];
  startedAt: string;
  uptimeSeconds: number;
}

/** Whether the node answering can serve (its database answers, its schema is current). */
export interface Readiness {
  status: 'ready' | 'not-ready';
  schemaVersion?: number;
  postgres?: string;
  /** Why not ready. */
  reason?: string;
}

/** One control-plane node that sent a heartbeat lately. */
export interface NodeView {
  nodeId: string;
  httpUrl: string;
  version: string;
  hostname: string;
  pid: number;
  startedAt: string;
  lastSeenAt: string;
  /** The node that answered this call. */
  self: boolean;
}

/** A new admin token (shown once) and the file it was written to on the server. */
export interface RotatedToken {
  token: string;
  file: string;
}

/** The control plane's own calls. */
export class SystemAdmin {
  readonly #http: AdminTransport;

  constructor(http: AdminTransport) {
    this.#http = http;
  }

  /** Liveness. */
  health(): Promise<{ status: 'ok' }> {
    return this.#http.get('/health');
  }

  /** Readiness; a node that is not ready answers `not-ready` with the reason (not an error). */
  ready(): Promise<Readiness> {
    return this.#http.get('/ready', { acceptStatus: [503], retry: false });
  }

  /** The node answering: version, schema, PostgreSQL mode, uptime. */
  info(): Promise<ServerInfo> {
    return this.#http.get('/api/v1/info');
  }

  /** Every live control-plane node. */
  async nodes(): Promise<NodeView[]> {
    return (await this.#http.get<{ nodes: NodeView[] }>('/api/v1/nodes')).nodes;
  }

  /** The Prometheus text of the node answering (`/metrics`). */
  metrics(): Promise<string> {
    return this.#http.get('/metrics', { headers: { accept: 'text/plain' } });
  }

  /** Replaces the admin token; the old one stops working at once. */
  rotateToken(): Promise<RotatedToken> {
    return this.#http.post('/api/v1/admin/token/rotate');
  }

  /** Issues an operator token of `role` named `name`; the token is in this answer only. */
  createToken(
    name: string,
    role: 'admin' | 'operator' | 'viewer',
  ): Promise<{ name: string; role: string; token: string }> {
    return this.#http.post('/api/v1/admin/tokens', { name, role });
  }

  /** The working operator tokens (names and roles, never secrets). */
  async tokens(): Promise<RoleTokenView[]> {
    return (await this.#http.get<{ tokens: RoleTokenView[] }>('/api/v1/admin/tokens')).tokens;
  }

  /** Revokes the operator token named `name`. */
  revokeToken(name: string): Promise<{ revoked: string }> {
    return this.#http.post(`/api/v1/admin/tokens/${encodeURIComponent(name)}/revoke`, {});
  }
}
