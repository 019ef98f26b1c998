/**
 * The Kubernetes actuator (`peak scale kubernetes`): the supervisor's part for a service
 * that runs as a Deployment. It reports the Deployment to the control plane as a
 * supervisor would (one instance per ready replica) and applies the count in its orders by
 * patching the Deployment's `scale` subresource through the API server
 * (`PATCH /apis/apps/v1/namespaces/<ns>/deployments/<name>/scale`, a JSON merge patch of
 * `spec.replicas`), so scaling policies and their one evaluator work the same on
 * Kubernetes. Releases (gray groups) are not carried out here: a Deployment's rollout is
 * Kubernetes' own. CPU is not reported (use a qps, rt-p99 or mq-backlog policy, or an HPA
 * from `peak scale hpa`).
 */
import os from 'node:os';
import { ControlPlaneClient, type TokenSource } from '../core/control-plane-client.js';
import { ErrorCodes, errorMessage, PeakError } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { parseServers } from '../core/server-list.js';
import type { InstanceReport, SupervisorOrders, SupervisorReport } from './supervisor-report.js';

/** The scale subresource of a Deployment, as the API server answers it. */
interface ScaleObject {
  spec?: { replicas?: number };
  status?: { replicas?: number };
}

/** Options of a {@link KubernetesActuator}. */
export interface KubernetesActuatorOptions {
  /** The app (config namespace) and the service's name in it. */
  app: string;
  service: string;
  /** The Deployment and its namespace (default `default`). */
  deployment: string;
  namespace?: string;
  /** The API server, e.g. `https://kubernetes.default.svc`. */
  apiServer: string;
  /** A bearer token for the API server (a service account's), or a function returning one. */
  apiToken?: string | (() => string);
  /** The control plane. */
  servers: string | readonly string[];
  token?: TokenSource;
  /** Time between rounds (read the scale, report, apply the orders), ms. Default 1000. */
  everyMs?: number;
  logger?: Logger;
}

/** Reports a Deployment to the control plane and applies its orders to the Deployment's scale. */
export class KubernetesActuator {
  readonly #o: KubernetesActuatorOptions;
  readonly #http: ControlPlaneClient;
  readonly #logger: Logger;
  readonly #path: string;
  #timer: NodeJS.Timeout | undefined;
  #round: Promise<void> | undefined;

  constructor(options: KubernetesActuatorOptions) {
    this.#o = options;
    this.#logger = options.logger ?? silentLogger();
    const servers = parseServers(options.servers);
    this.#http = new ControlPlaneClient({
      servers,
      ...(options.token === undefined ? {} : { token: options.token }),
      timeoutMs: 2000,
      retries: servers.length - 1,
    });
    const ns = encodeURIComponent(options.namespace ?? 'default');
    this.#path = `/apis/apps/v1/namespaces/${ns}/deployments/${encodeURIComponent(options.deployment)}/scale`;
  }

  async #api(method: 'GET' | 'PATCH', body?: unknown): Promise<ScaleObject> {
    const token = typeof this.#o.apiToken === 'function' ? this.#o.apiToken() : this.#o.apiToken;
    const res = await fetch(new URL(this.#path, this.#o.apiServer), {
      method,
      headers: {
        accept: 'application/json',
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        ...(body === undefined ? {} : { 'content-type': 'application/merge-patch+json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(5000),
    });
    const text = await res.text();
    if (!res.ok) {
      const message = (() => {
        try {
          return (JSON.parse(text) as { message?: string }).message ?? text;
        } catch {
          return text;
        }
      })();
      throw new PeakError(
        res.status === 404 ? ErrorCodes.SCALE_NOT_FOUND : ErrorCodes.INTERNAL,
        `the API server answered ${res.status} to ${method} ${this.#path}: ${message.slice(0, 300)}`,
        { details: { status: res.status } },
      );
    }
    return JSON.parse(text) as ScaleObject;
  }

  /** The Deployment's replicas: wanted (`spec`) and running (`status`). */
  async replicas(): Promise<{ spec: number; status: number }> {
    const s = await this.#api('GET');
    return { spec: s.spec?.replicas ?? 0, status: s.status?.replicas ?? 0 };
  }

  /** Sets the Deployment's replicas. */
  async scale(replicas: number): Promise<void> {
    await this.#api('PATCH', { spec: { replicas } });
  }

  /** One round: read the scale, report it, apply the count the control plane orders. */
  async round(): Promise<void> {
    const { spec, status } = await this.replicas();
    const now = Date.now();
    const instances: InstanceReport[] = Array.from({ length: status }, (_, i) => ({
      id: `${this.#o.deployment}-${i + 1}`,
      service: this.#o.service,
      version: 'kubernetes',
      pid: 0,
      state: 'running',
      restarts: 0,
      startedAt: now,
      adopted: false,
    }));
    const report: SupervisorReport = {
      supervisorId: `kubernetes/${this.#o.namespace ?? 'default'}/${this.#o.deployment}`,
      app: this.#o.app,
      host: os.hostname(),
      pid: process.pid,
      services: [
        {
          name: this.#o.service,
          version: 'kubernetes',
          command: `deployment/${this.#o.deployment}`,
          instances: spec,
        },
      ],
      instances,
    };
    const orders = await this.#http.post<SupervisorOrders>('/api/v1/scale/reports', report);
    const want = orders.desired[this.#o.service]?.find((g) => !g.gray)?.count;
    if (want !== undefined && want !== spec) {
      await this.scale(want);
      this.#logger.info(
        { deployment: this.#o.deployment, from: spec, to: want },
        'scaled the Deployment',
      );
    }
  }

  /** Runs a round every `everyMs` until {@link stop}; a failed round is logged and retried. */
  start(): this {
    const tick = () => {
      this.#round ??= this.round()
        .catch((err) =>
          this.#logger.warn({ err: errorMessage(err) }, 'kubernetes actuator round failed'),
        )
        .finally(() => {
          this.#round = undefined;
        });
    };
    tick();
    this.#timer = setInterval(tick, this.#o.everyMs ?? 1000);
    return this;
  }

  /** Stops the rounds (the Deployment keeps its replicas). */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#round;
  }
}
