/**
 * The console's API (`/api/v1/console`): the metrics history its charts draw, the audit
 * trail of admin calls, and its login sessions. The session calls are the browser app's
 * (the cookie they set lives in a browser); a Node process reads history and audit.
 */
import type {
  AuditEntry,
  LoginRequest,
  MetricsHistory,
  MetricsHistoryQuery,
  SessionView,
} from '../console/console-views.js';
import type { AdminTransport } from './admin-transport.js';

export type { AuditEntry, LoginRequest, MetricsHistory, MetricsHistoryQuery, SessionView };

const BASE = '/api/v1/console';

/** The console's calls. */
export class ConsoleAdmin {
  readonly #http: AdminTransport;

  constructor(http: AdminTransport) {
    this.#http = http;
  }

  /**
   * Calls, errors and blocked per second, mean RT and p99: per second for the last hour,
   * per minute for a day, per hour for 7 days (the finest kept back to `from`).
   */
  metrics(q: MetricsHistoryQuery = {}): Promise<MetricsHistory> {
    return this.#http.get(`${BASE}/metrics`, {
      query: {
        from: q.from,
        to: q.to,
        by: q.by,
        service: q.service,
        resource: q.resource,
        step: q.step,
      },
    });
  }

  /** Admin calls and console logins, newest first (before the entry `before` when given). */
  async audit(options: { limit?: number; before?: number } = {}): Promise<AuditEntry[]> {
    const r = await this.#http.get<{ entries: AuditEntry[] }>(`${BASE}/audit`, {
      query: { limit: options.limit, before: options.before },
    });
    return r.entries;
  }

  /** Logs in: the credential for a session cookie (set on the browser's side). */
  login(request: LoginRequest): Promise<SessionView> {
    return this.#http.post(`${BASE}/session`, request, { retry: false });
  }

  /** The session the cookie names, with its CSRF token (PEAK_UNAUTHENTICATED when none). */
  session(): Promise<SessionView> {
    return this.#http.get(`${BASE}/session`, { retry: false });
  }

  /** Logs out: ends the session and clears its cookie. */
  logout(): Promise<{ ended: boolean }> {
    return this.#http.delete(`${BASE}/session`, { retry: false });
  }
}
