/**
 * A plain HTTP upstream: the instances of a registered service (and/or fixed URLs), balanced
 * round-robin over the healthy ones. Each instance is probed with `GET <healthPath>` every
 * `healthIntervalMs` (2xx/3xx healthy; two failures in a row take it out, one success puts
 * it back), and a connection that fails takes it out at once until a probe says otherwise.
 */
import http from 'node:http';
import type { Logger } from '../core/logger.js';
import type { Registry, RegistrySubscription } from '../registry/registry.js';
import {
  activeInstances,
  DEFAULT_GROUP,
  DEFAULT_VERSION,
  serviceKey,
} from '../registry/service-instance.js';
import type { GatewayTarget } from './gateway-objects.js';

type HttpTargetSpec = Extract<GatewayTarget, { kind: 'http' }>;

/** One upstream address and what the probes said of it. */
export interface UpstreamInstance {
  host: string;
  port: number;
  healthy: boolean;
  failures: number;
}

/** The instances of one HTTP target, kept current and probed. */
export class HttpUpstream {
  readonly spec: HttpTargetSpec;
  readonly agent: http.Agent;
  #fixed: UpstreamInstance[];
  #registered: UpstreamInstance[] = [];
  #next = 0;
  readonly #subscription: RegistrySubscription | undefined;
  readonly #probe: NodeJS.Timeout;
  readonly #logger: Logger;

  constructor(spec: HttpTargetSpec, registry: Registry | undefined, logger: Logger) {
    this.spec = spec;
    this.#logger = logger;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64 });
    this.#fixed = (spec.urls ?? []).map((u) => {
      const url = new URL(u);
      return { host: url.hostname, port: Number(url.port || 80), healthy: true, failures: 0 };
    });
    if (spec.service !== undefined && registry !== undefined) {
      const key = serviceKey(
        spec.service,
        spec.version ?? DEFAULT_VERSION,
        spec.group ?? DEFAULT_GROUP,
      );
      this.#subscription = registry.subscribe(key, (list) => {
        const old = new Map(this.#registered.map((i) => [`${i.host}:${i.port}`, i]));
        this.#registered = activeInstances(list).map((i) => {
          const port = Number(i.metadata.httpPort ?? i.port);
          return old.get(`${i.host}:${port}`) ?? { host: i.host, port, healthy: true, failures: 0 };
        });
      });
    }
    this.#probe = setInterval(() => this.#probeAll(), spec.healthIntervalMs ?? 2000);
    this.#probe.unref();
  }

  /** Every instance known now. */
  instances(): UpstreamInstance[] {
    return [...this.#fixed, ...this.#registered];
  }

  /** The next healthy instance, round-robin; undefined when none is. */
  pick(): UpstreamInstance | undefined {
    const all = this.instances();
    for (let i = 0; i < all.length; i++) {
      const candidate = all[(this.#next + i) % all.length]!;
      if (candidate.healthy) {
        this.#next = (this.#next + i + 1) % Math.max(1, all.length);
        return candidate;
      }
    }
    return undefined;
  }

  /** A request to `instance` could not connect: out of traffic until a probe succeeds. */
  failed(instance: UpstreamInstance): void {
    instance.healthy = false;
    instance.failures = Math.max(instance.failures, 2);
  }

  #probeAll(): void {
    const path = this.spec.healthPath ?? '/health';
    for (const instance of this.instances()) {
      const req = http.get(
        { host: instance.host, port: instance.port, path, agent: this.agent, timeout: 1000 },
        (res) => {
          res.resume();
          const ok = (res.statusCode ?? 500) < 400;
          if (ok) {
            if (!instance.healthy)
              this.#logger.info(
                { host: instance.host, port: instance.port },
                'upstream healthy again',
              );
            instance.healthy = true;
            instance.failures = 0;
          } else this.#fail(instance);
        },
      );
      req.on('timeout', () => req.destroy(new Error('health probe timed out')));
      req.on('error', () => this.#fail(instance));
    }
  }

  #fail(instance: UpstreamInstance): void {
    instance.failures++;
    if (instance.failures >= 2 && instance.healthy) {
      instance.healthy = false;
      this.#logger.warn(
        { host: instance.host, port: instance.port },
        'upstream failed its health probes; out of traffic',
      );
    }
  }

  /** The upstream path for a request path. */
  rewrite(path: string): string {
    let p = path;
    const strip = this.spec.stripPrefix;
    if (strip !== undefined && strip !== '' && p.startsWith(strip))
      p = p.slice(strip.length) || '/';
    if (!p.startsWith('/')) p = `/${p}`;
    return (this.spec.prefix ?? '') + p;
  }

  /** Stops probing and following the registry. */
  close(): void {
    clearInterval(this.#probe);
    this.#subscription?.close();
    this.agent.destroy();
  }
}
