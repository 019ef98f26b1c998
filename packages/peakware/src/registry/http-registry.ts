/**
 * The registry client for the peak control plane. Providers register over HTTP and renew
 * their lease with a heartbeat (re-registering if the lease was lost). Consumers hold one
 * Server-Sent-Events stream per 32 service keys (`GET /api/v1/registry/watch`): the current
 * list first, then every change, pushed by whichever node they are connected to (nodes
 * agree through PostgreSQL LISTEN/NOTIFY).
 *
 * Outages: when no control-plane node answers, consumers keep their last list and retry
 * with backoff across all given servers; every received list is also written to a local
 * snapshot file, read back at the next start, so a restarted consumer can call providers
 * while the control plane is still down. A provider whose renewal fails retries every
 * half second until a node answers, so it is listed again soon after a node is back.
 *
 * Empty- and shrunken-push protection (as Nacos and Dubbo have; list-protection.ts): the
 * first list a new stream connection brings may come from a node that has just restarted
 * and not yet heard from the providers (their leases ran out during the outage). A list
 * there with fewer than `protectThreshold` of the known instances (an empty one included)
 * does not replace them at once: for up to `emptyPushGraceMs` consumers get the new list
 * plus the known instances it lacks, probed every second (a TCP connect: the dead are
 * dropped), until a list with at least that share arrives.
 *
 * SSE over the existing HTTP API was chosen over a custom TCP channel: it passes through
 * the same Fastify lifecycle, load balancers and proxies, needs no extra port, and curl
 * can watch it.
 */

import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  ControlPlaneClient,
  type EventSubscription,
  type TokenSource,
} from '../core/control-plane-client.js';
import { ErrorCodes, errorMessage, isPeakError } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import type { SseEvent } from '../core/sse-reader.js';
import { type InstanceProbe, tcpProbe } from './instance-probe.js';
import { ListProtection } from './list-protection.js';
import type {
  InstancesListener,
  RegistrationHandle,
  Registry,
  RegistrySubscription,
} from './registry.js';
import {
  type InstanceRegistration,
  type InstanceStatus,
  type ServiceInstance,
  serviceKey,
} from './service-instance.js';

/** Options of {@link HttpRegistry}. */
export interface HttpRegistryOptions {
  /** The control-plane node URL, or several (failover in order). */
  servers: string | readonly string[];
  /** A bearer token (or a function returning one) for the control plane. Default: none. */
  token?: TokenSource;
  /** Where to keep the last known lists across restarts; absent: no file. */
  snapshotFile?: string;
  /** Lease asked for at registration, ms; renewed every third of it. Default 15 000. */
  leaseMs?: number;
  /** First reconnect delay of a watch stream, ms; doubles up to 5 s. Default 200. */
  reconnectMs?: number;
  /** Timeout of one registration request, ms. Default 5000. */
  requestTimeoutMs?: number;
  /**
   * How long an empty or shrunken list that a reconnected stream brings first is held back
   * while the known instances keep serving (probed), ms; 0 turns the protection off.
   * Default 30 000.
   */
  emptyPushGraceMs?: number;
  /**
   * Nacos' protect threshold: a list from a reconnected stream with fewer than this share
   * (0-1) of the known instances is held back as above; 0 turns it off. Default 0.5.
   */
  protectThreshold?: number;
  /** How a known instance missing from a held list is checked. Default: a TCP connect (1 s). */
  probe?: InstanceProbe;
  logger?: Logger;
}

/** The defaults of {@link HttpRegistryOptions} that are not written inline. */
export const HTTP_REGISTRY_DEFAULTS = {
  emptyPushGraceMs: 30_000,
  protectThreshold: 0.5,
  /** How often held-back known instances are probed, ms. */
  probeEveryMs: 1000,
  /** Delay of the next renewal after one failed, ms. */
  renewRetryMs: 500,
} as const;

/** One watched key: its listeners and last list. */
interface KeyState {
  key: string;
  listeners: Set<InstancesListener>;
  last: readonly ServiceInstance[] | undefined;
  /** Holds back an empty or shrunken list from a reconnected stream. */
  protection: ListProtection;
}

/** One SSE stream, carrying up to {@link KEYS_PER_STREAM} keys. */
interface Stream {
  keys: Set<string>;
  /** Keys whose first list on the current connection has not arrived yet. */
  fresh: Set<string>;
  subscription: EventSubscription;
}

/** Keys one watch stream carries (they travel in the URL, so keep it short). */
const KEYS_PER_STREAM = 32;

const INSTANCES = '/api/v1/registry/instances';

/** A {@link Registry} backed by the peak control plane. */
export class HttpRegistry implements Registry {
  readonly #http: ControlPlaneClient;
  readonly #logger: Logger;
  readonly #leaseMs: number;
  readonly #reconnectMs: number;
  readonly #snapshotFile: string | undefined;
  readonly #emptyPushGraceMs: number;
  readonly #protectThreshold: number;
  readonly #probe: InstanceProbe;
  readonly #snapshot: Record<string, ServiceInstance[]> = {};
  readonly #keys = new Map<string, KeyState>();
  readonly #streams = new Set<Stream>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #closed = false;
  #saveScheduled = false;

  constructor(options: HttpRegistryOptions) {
    this.#http = new ControlPlaneClient({
      servers: options.servers,
      ...(options.token === undefined ? {} : { token: options.token }),
      timeoutMs: options.requestTimeoutMs ?? 5000,
    });
    this.#logger = options.logger ?? silentLogger();
    this.#leaseMs = options.leaseMs ?? 15_000;
    this.#reconnectMs = options.reconnectMs ?? 200;
    this.#snapshotFile = options.snapshotFile;
    this.#emptyPushGraceMs = options.emptyPushGraceMs ?? HTTP_REGISTRY_DEFAULTS.emptyPushGraceMs;
    this.#protectThreshold = options.protectThreshold ?? HTTP_REGISTRY_DEFAULTS.protectThreshold;
    this.#probe = options.probe ?? tcpProbe();
    if (this.#snapshotFile !== undefined) {
      try {
        const data = JSON.parse(readFileSync(this.#snapshotFile, 'utf8')) as {
          services?: Record<string, ServiceInstance[]>;
        };
        Object.assign(this.#snapshot, data.services ?? {});
      } catch {
        // No snapshot yet (or unreadable): start empty.
      }
    }
  }

  #timer(fn: () => void, ms: number, repeat: boolean): NodeJS.Timeout {
    const t = repeat
      ? setInterval(fn, ms)
      : setTimeout(() => {
          this.#timers.delete(t);
          fn();
        }, ms);
    t.unref();
    this.#timers.add(t);
    return t;
  }

  async register(registration: InstanceRegistration): Promise<RegistrationHandle> {
    let instance: ServiceInstance = {
      ...registration,
      tags: [...registration.tags],
      metadata: { ...registration.metadata },
      status: registration.status ?? 'up',
      startedAt: registration.startedAt ?? Date.now(),
    };
    const key = serviceKey(instance.service, instance.version, instance.group);
    let gone = false;
    const instancePath = `${INSTANCES}/${encodeURIComponent(instance.instanceId)}`;
    // Registration is an upsert by instance id: sending it twice is harmless.
    const post = () =>
      this.#http.post(INSTANCES, { ...instance, leaseMs: this.#leaseMs }, { idempotent: true });
    try {
      await post();
    } catch (err) {
      // A refused credential will not get better by retrying: say so now.
      if (isPeakError(err, ErrorCodes.UNAUTHENTICATED) || isPeakError(err, ErrorCodes.FORBIDDEN)) {
        throw err;
      }
      this.#logger.warn(
        { err: errorMessage(err), key },
        'registration failed; retrying with the heartbeat',
      );
    }
    let retrying = false;
    const renew = () => {
      if (gone || this.#closed) return;
      this.#http
        .put(`${instancePath}/lease`, { leaseMs: this.#leaseMs })
        .catch((err: unknown) => {
          // The lease was lost (expired while this process was stalled, or while no node
          // answered): register again.
          if (isPeakError(err, ErrorCodes.NOT_FOUND) && !gone) return post();
          throw err;
        })
        .catch((err) => {
          this.#logger.warn({ err: errorMessage(err), key }, 'lease renewal failed');
          // Try again soon, not a third of a lease later: a node that is back lists this
          // instance again within about a second.
          if (retrying) return;
          retrying = true;
          this.#timer(
            () => {
              retrying = false;
              renew();
            },
            HTTP_REGISTRY_DEFAULTS.renewRetryMs,
            false,
          );
        });
    };
    const beat = this.#timer(renew, Math.max(250, Math.floor(this.#leaseMs / 3)), true);
    const patch = async (body: Record<string, unknown>) => {
      await this.#http.patch(instancePath, { key, ...body }, { idempotent: true });
    };
    return {
      get instance() {
        return instance;
      },
      setStatus: async (status: InstanceStatus) => {
        instance = { ...instance, status };
        await patch({ status });
      },
      update: async (p) => {
        instance = { ...instance, ...p };
        await patch(p);
      },
      deregister: async () => {
        gone = true;
        clearInterval(beat);
        this.#timers.delete(beat);
        await this.#http.delete(instancePath, { query: { key } });
      },
    };
  }

  subscribe(key: string, listener: InstancesListener): RegistrySubscription {
    let state = this.#keys.get(key);
    if (state === undefined) {
      const created: KeyState = {
        key,
        listeners: new Set(),
        last: this.#snapshot[key],
        protection: new ListProtection(
          {
            key,
            share: this.#protectThreshold,
            graceMs: this.#emptyPushGraceMs,
            probeEveryMs: HTTP_REGISTRY_DEFAULTS.probeEveryMs,
            probe: this.#probe,
            logger: this.#logger,
          },
          (list) => {
            if (this.#keys.get(key) === created) this.#deliver(created, list);
          },
        ),
      };
      state = created;
      this.#keys.set(key, state);
      this.#addToStream(key);
    }
    const s = state;
    s.listeners.add(listener);
    if (s.last !== undefined) {
      const list = s.last;
      queueMicrotask(() => {
        if (s.listeners.has(listener)) listener(list);
      });
    }
    return {
      current: () => s.last ?? [],
      close: () => {
        s.listeners.delete(listener);
        if (s.listeners.size > 0 || this.#keys.get(key) !== s) return;
        s.protection.close();
        this.#keys.delete(key);
        for (const stream of this.#streams) {
          if (!stream.keys.delete(key) || stream.keys.size > 0) continue;
          stream.subscription.close();
          this.#streams.delete(stream);
        }
      },
    };
  }

  /** Puts a new key on a stream with room (reconnecting it with the new set) or a new one. */
  #addToStream(key: string): void {
    for (const stream of this.#streams) {
      if (stream.keys.size >= KEYS_PER_STREAM) continue;
      stream.keys.add(key);
      stream.subscription.reconnect();
      return;
    }
    const keys = new Set([key]);
    const fresh = new Set<string>();
    const stream: Stream = {
      keys,
      fresh,
      subscription: this.#http.subscribe(
        '/api/v1/registry/watch',
        (e) => this.#onEvent(stream, e),
        {
          query: () => ({ key: [...keys] }),
          onConnect: () => {
            fresh.clear();
            for (const k of keys) fresh.add(k);
          },
          backoff: { initialMs: this.#reconnectMs, maxMs: 5000 },
          onError: (err, server) =>
            this.#logger.debug(
              { err: errorMessage(err), server, keys: keys.size },
              'watch stream failed',
            ),
        },
      ),
    };
    this.#streams.add(stream);
  }

  #onEvent(stream: Stream, e: SseEvent): void {
    if (e.event !== 'snapshot') return;
    const parsed = JSON.parse(e.data) as { key: string; instances: ServiceInstance[] };
    const first = stream.fresh.delete(parsed.key);
    const state = this.#keys.get(parsed.key);
    if (state === undefined || !stream.keys.has(parsed.key)) return;
    // While a list is held back, later short ones (the restarted node sweeping the leases
    // that ran out during the outage, providers registering one by one) are held with it.
    state.protection.offer(parsed.instances, first, state.last);
  }

  #deliver(state: KeyState, instances: ServiceInstance[]): void {
    state.last = instances;
    for (const fn of state.listeners) fn(instances);
    if (this.#snapshotFile !== undefined) {
      this.#snapshot[state.key] = instances;
      this.#scheduleSave();
    }
  }

  #scheduleSave(): void {
    if (this.#saveScheduled || this.#snapshotFile === undefined) return;
    this.#saveScheduled = true;
    const file = this.#snapshotFile;
    setTimeout(() => {
      this.#saveScheduled = false;
      try {
        mkdirSync(path.dirname(file), { recursive: true });
        const tmp = `${file}.${process.pid}.tmp`;
        writeFileSync(
          tmp,
          JSON.stringify({ savedAt: new Date().toISOString(), services: this.#snapshot }),
        );
        renameSync(tmp, file);
      } catch (err) {
        this.#logger.warn(
          { err: errorMessage(err), file },
          'could not write the registry snapshot file',
        );
      }
    }, 50).unref();
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    for (const stream of this.#streams) stream.subscription.close();
    this.#streams.clear();
    for (const state of this.#keys.values()) state.protection.close();
    this.#keys.clear();
  }
}
