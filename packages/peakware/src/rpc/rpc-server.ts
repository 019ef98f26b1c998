/**
 * The provider: hosts service implementations on one TCP port (and optionally HTTP/JSON),
 * registers them, and stops gracefully. Its parts, one file each:
 *
 * - a call's lifecycle, the same on both paths (overload, lookup, verified caller, deadline,
 *   argument, filters, method): hosted-services.ts;
 * - the TCP side (frames, refusals to one caller only, the bounds on what a peer may hold):
 *   provider-connections.ts;
 * - HTTP/JSON access (`POST /rpc/<service>/<method>`, `GET /rpc`): http-json-access.ts, read
 *   by core's HTTP front (`httpFront`) with node:http behind it;
 * - registration and run-time status, weight and tags: provider-registration.ts;
 * - options and their defaults: rpc-server-options.ts.
 *
 * Graceful stop: deregister and send GOAWAY on every connection (consumers stop picking
 * this instance at once), keep serving what still arrives until nothing is in flight and
 * the connections are quiet, then close.
 */

import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import type { HeaderMap } from '../core/context-headers.js';
import { FRONT_MAX_BODY_BYTES, HttpFront } from '../core/http-front.js';
import { type Logger, silentLogger } from '../core/logger.js';
import type { PresentedCaller } from './caller-identity.js';
import { HostedServices } from './hosted-services.js';
import { httpJsonHandler } from './http-json-access.js';
import { ProviderConnections } from './provider-connections.js';
import { ProviderRegistration } from './provider-registration.js';
import type { RpcFilter } from './rpc-filter.js';
import {
  type ResolvedServerOptions,
  type RpcServerOptions,
  resolveServerOptions,
} from './rpc-server-options.js';
import type { ServiceDefinition, ServiceImplementation } from './service-definition.js';
import { tcpTransport } from './transport.js';

/** A provider process's RPC endpoint. */
export class RpcServer {
  readonly instanceId: string;
  readonly #opts: ResolvedServerOptions;
  readonly #logger: Logger;
  readonly #services: HostedServices;
  readonly #conns: ProviderConnections;
  readonly #registration: ProviderRegistration;
  #tcp: net.Server | undefined;
  #http: http.Server | undefined;
  #httpFront: HttpFront | undefined;
  #draining = false;
  #stopping: Promise<void> | undefined;
  #port = 0;
  #httpPort: number | undefined;

  constructor(options: RpcServerOptions = {}) {
    this.#opts = resolveServerOptions(options);
    this.#logger = options.logger ?? silentLogger();
    this.instanceId =
      options.instanceId ?? `${os.hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.#services = new HostedServices(
      this.instanceId,
      this.#opts.maxInFlight,
      options.filters ?? [],
      options.identity,
    );
    this.#conns = new ProviderConnections(
      this.#opts,
      this.#logger,
      (s, m, h, a, r, p, g) => this.invoke(s, m, h, a, r, p, g),
      options.identity?.verifier,
    );
    this.#registration = new ProviderRegistration(this.#opts);
  }

  /** Hosts an implementation of a service definition. */
  addService<D extends ServiceDefinition>(def: D, impl: ServiceImplementation<D>): this {
    this.#services.add(def, impl);
    return this;
  }

  /** Adds a provider-side filter (e.g. guard's) at the end of the chain. */
  use(filter: RpcFilter): this {
    this.#services.use(filter);
    return this;
  }

  /** The bound TCP port (after `start`). */
  get port(): number {
    return this.#port;
  }

  /** The bound HTTP/JSON port, when enabled. */
  get httpPort(): number | undefined {
    return this.#httpPort;
  }

  /** Calls running now. */
  get inFlight(): number {
    return this.#services.inFlight;
  }

  /** Bytes held in incomplete frames over all connections (bounded by `maxPartialBytes`). */
  get partialBytes(): number {
    return this.#conns.partialBytes;
  }

  /** Listens, then registers every hosted service. */
  async start(): Promise<{ host: string; port: number; httpPort?: number }> {
    const tcp = (this.#opts.transport ?? tcpTransport).createServer((socket) =>
      this.#conns.accept(socket),
    );
    tcp.on('error', (err) => this.#logger.error({ err }, 'rpc listener error'));
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(this.#opts.port, this.#opts.host, () => {
        tcp.off('error', reject);
        resolve();
      });
    });
    this.#tcp = tcp;
    this.#port = (tcp.address() as net.AddressInfo).port;
    if (this.#opts.httpPort !== undefined) {
      const handler = httpJsonHandler({
        instanceId: this.instanceId,
        services: this.#services,
        maxFrameBytes: this.#opts.maxFrameBytes,
        draining: () => this.#draining,
        verifier: this.#opts.identity?.verifier,
      });
      const server = http.createServer(handler);
      server.keepAliveTimeout = 65_000;
      // The front takes what it can and hands node:http (not listening itself) the rest.
      const front =
        this.#opts.httpFront === false
          ? undefined
          : new HttpFront({
              fallback: server,
              handle: handler,
              keepAliveTimeoutMs: server.keepAliveTimeout,
              requestTimeoutMs: server.requestTimeout,
              maxBodyBytes: Math.min(this.#opts.maxFrameBytes, FRONT_MAX_BODY_BYTES),
            });
      const listening = front?.server ?? server;
      await new Promise<void>((resolve, reject) => {
        listening.once('error', reject);
        listening.listen(this.#opts.httpPort, this.#opts.host, () => resolve());
      });
      this.#http = server;
      this.#httpFront = front;
      this.#httpPort = (listening.address() as net.AddressInfo).port;
    }
    await this.#registration.registerAll(this.#services.definitions(), {
      instanceId: this.instanceId,
      port: this.#port,
      httpPort: this.#httpPort,
    });
    this.#logger.info({ port: this.#port, httpPort: this.#httpPort }, 'rpc server listening');
    return {
      host: this.#opts.host,
      port: this.#port,
      ...(this.#httpPort === undefined ? {} : { httpPort: this.#httpPort }),
    };
  }

  /** Marks every registered service offline (no new traffic) or back up. */
  setStatus(status: 'up' | 'offline'): Promise<void> {
    return this.#registration.setStatus(status);
  }

  /** Changes the registered weight or tags at runtime. */
  update(patch: { weight?: number; tags?: string[] }): Promise<void> {
    return this.#registration.update(patch);
  }

  /**
   * Runs one call through the provider lifecycle (the same for TCP and HTTP/JSON).
   * `service` is `name:version`, or a bare name for the newest hosted version; `presented`
   * is what the caller showed of its identity (when the provider verifies identities);
   * `signal` aborts when the caller is gone (its connection closed).
   */
  invoke(
    service: string,
    method: string,
    headers: HeaderMap,
    args: unknown,
    remote?: string,
    presented?: PresentedCaller,
    signal?: AbortSignal,
  ): Promise<unknown> {
    return this.#services.invoke(service, method, headers, args, remote, presented, signal);
  }

  /**
   * Graceful stop: deregister, GOAWAY to every consumer, serve stragglers until nothing is in
   * flight and connections are quiet for `quietMs` (bounded by `drainTimeoutMs`), close.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    this.#draining = true;
    const started = Date.now();
    const deadline = started + this.#opts.drainTimeoutMs;
    // Deregister and tell connected consumers at once: GOAWAY stops them now, the registry
    // push reaches the rest. An unreachable control plane must not hold the stop up.
    const deregistered = this.#registration.deregisterAll(this.#logger);
    this.#tcp?.close();
    this.#conns.goAway();
    let bound: NodeJS.Timeout | undefined;
    await Promise.race([
      deregistered,
      new Promise((r) => {
        bound = setTimeout(r, Math.max(0, deadline - Date.now()));
      }),
    ]);
    clearTimeout(bound);
    for (;;) {
      const now = Date.now();
      const quiet = now - this.#conns.lastRequestAt() >= this.#opts.quietMs;
      if ((this.#services.inFlight === 0 && quiet) || now >= deadline) break;
      await new Promise((r) => setTimeout(r, Math.min(50, this.#opts.quietMs)));
    }
    if (this.#services.inFlight > 0) {
      this.#logger.warn(
        { inFlight: this.#services.inFlight },
        'drain timeout: closing with calls in flight',
      );
    }
    this.#conns.endAll();
    const front = this.#httpFront;
    const closeHttp =
      front !== undefined
        ? front.close()
        : this.#http === undefined
          ? Promise.resolve()
          : new Promise<void>((resolve) => {
              this.#http!.close(() => resolve());
              this.#http!.closeIdleConnections();
            });
    await closeHttp;
    await this.#conns.closed();
    this.#logger.info({ ms: Date.now() - started }, 'rpc server stopped');
  }
}
