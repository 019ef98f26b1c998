/**
 * Elastic scaling and releases (`/api/v1/scale`): an app's supervisors and instances, a
 * service's count set by hand, scaling policies, the decisions with their figures, and
 * releases (start, show, pause, resume, abort). Answers are the
 * scale server's own view types.
 */

import type { ReleaseRequest } from '../scale/release-spec.js';
import type { ScalePolicy } from '../scale/scale-policy.js';
import type {
  ReleaseEvent,
  ReleaseState,
  ReleaseView,
  ScaleDecision,
  ScaleStatus,
} from '../scale/server/index.js';
import type { AdminTransport } from './admin-transport.js';

export type {
  ReleaseEvent,
  ReleaseRequest,
  ReleaseState,
  ReleaseView,
  ScaleDecision,
  ScalePolicy,
  ScaleStatus,
};

const BASE = '/api/v1/scale';
const enc = encodeURIComponent;

/** The scale module's admin calls. */
export class ScaleAdmin {
  readonly #http: AdminTransport;

  constructor(http: AdminTransport) {
    this.#http = http;
  }

  /** An app's supervisors (live or not), services and their instances. */
  async status(app: string): Promise<ScaleStatus> {
    return this.#http.get(`${BASE}/status`, { query: { app } });
  }

  /** An app's scaling decisions (optionally one service's), newest first. */
  async history(
    app: string,
    options: { service?: string; limit?: number } = {},
  ): Promise<ScaleDecision[]> {
    const r = await this.#http.get<{ decisions: ScaleDecision[] }>(`${BASE}/history`, {
      query: { app, ...options },
    });
    return r.decisions;
  }

  /** Stores a service's scaling policy (checked whole; config item `scale/<service>`). */
  async setPolicy(
    app: string,
    service: string,
    policy: ScalePolicy,
    author?: string,
  ): Promise<{ service: string; policy: ScalePolicy; version: number }> {
    return this.#http.put(`${BASE}/policies/${enc(service)}`, {
      app,
      policy,
      ...(author === undefined ? {} : { author }),
    });
  }

  /** A service's scaling policy as stored. */
  async policy(
    app: string,
    service: string,
  ): Promise<{ service: string; policy: ScalePolicy; version: number }> {
    return this.#http.get(`${BASE}/policies/${enc(service)}`, { query: { app } });
  }

  /** Starts a release (checked whole; PEAK_SCALE_CONFLICT when one of the service is in progress). */
  async startRelease(request: ReleaseRequest): Promise<ReleaseView> {
    return (await this.#http.post<{ release: ReleaseView }>(`${BASE}/releases`, request)).release;
  }

  /** A service's newest release, with every step it took. */
  async release(app: string, service: string): Promise<ReleaseView> {
    const r = await this.#http.get<{ release: ReleaseView }>(`${BASE}/releases/${enc(service)}`, {
      query: { app },
    });
    return r.release;
  }

  /** An app's releases, newest first (without their steps). */
  async releases(app: string, limit?: number): Promise<ReleaseView[]> {
    const r = await this.#http.get<{ releases: ReleaseView[] }>(`${BASE}/releases`, {
      query: { app, ...(limit === undefined ? {} : { limit }) },
    });
    return r.releases;
  }

  /** Pauses, resumes or aborts the release of a service in progress. */
  async releaseAction(
    app: string,
    service: string,
    action: 'pause' | 'resume' | 'abort',
    options: { author?: string; reason?: string } = {},
  ): Promise<ReleaseView> {
    const r = await this.#http.post<{ release: ReleaseView }>(
      `${BASE}/releases/${enc(service)}/${action}`,
      { app, ...options },
    );
    return r.release;
  }

  /** Sets a service's instance count by hand (recorded as a decision). */
  async setInstances(
    app: string,
    service: string,
    count: number,
    author?: string,
  ): Promise<ScaleDecision> {
    const r = await this.#http.put<{ decision: ScaleDecision }>(
      `${BASE}/services/${enc(service)}/instances`,
      { app, count, ...(author === undefined ? {} : { author }) },
    );
    return r.decision;
  }
}
