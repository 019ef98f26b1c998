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
 * while the control plane is still down.
 *
 * SSE over the existing HTTP API was chosen over a custom TCP channel: it passes through
 * the same Fastify lifecycle, load balancers and proxies, needs no extra port, and curl
 * can watch it.
 */

import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { errorMessage } from '../core/errors.js';
import { httpRequest } from '../core/http-client.js';
import { type Logger, silentLogger } from '../core/logger.js';
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
  /** Control-plane node URLs; tried in turn. */
  servers: string[];
  /** Where to keep the last known lists across restarts; absent: no file. */
  snapshotFile?: string;
  /** Lease asked for at registration, ms; renewed every third of it. Default 15 000. */
  leaseMs?: number;
  /** First reconnect delay of a watch stream, ms; doubles up to 5 s. Default 200. */
  reconnectMs?: number;
  /** Timeout of one registration request, ms. Default 5000. */
  requestTimeoutMs?: number;
  logger?: Logger;
}

/** One watched key: its listeners and last list. */
interface KeyState {
  key: string;
  listeners: Set<InstancesListener>;
  last: readonly ServiceInstance[] | undefined;
}

/** One SSE stream, carrying up to {@link KEYS_PER_STREAM} keys. */
interface Stream {
  keys: Set<string>;
  abort: AbortController | undefined;
  /** Set when keys were added: reconnect at once with the new set (no backoff). */
  restart: boolean;
  closed: boolean;
}

/** Keys one watch stream carries (they travel in the URL, so keep it short). */
const KEYS_PER_STREAM = 32;

/** A {@link Registry} backed by the peak control plane. */
export class HttpRegistry implements Registry {
  readonly #servers: string[];
  readonly #logger: Logger;
  readonly #leaseMs: number;
  readonly #reconnectMs: number;
  readonly #requestTimeoutMs: number;
  readonly #snapshotFile: string | undefined;
  readonly #snapshot: Record<string, ServiceInstance[]> = {};
  readonly #keys = new Map<string, KeyState>();
  readonly #streams = new Set<Stream>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #serverIndex = 0;
  #closed = false;
  #saveScheduled = false;

  constructor(options: HttpRegistryOptions) {
    if (options.servers.length === 0) throw new Error('HttpRegistry needs at least one server URL');
    this.#servers = options.servers.map((s) => s.replace(/\/+$/, ''));
    this.#logger = options.logger ?? silentLogger();
    this.#leaseMs = options.leaseMs ?? 15_000;
    this.#reconnectMs = options.reconnectMs ?? 200;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 5000;
    this.#snapshotFile = options.snapshotFile;
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

  #server(): string {
    return this.#servers[this.#serverIndex % this.#servers.length]!;
  }

  #nextServer(): void {
    this.#serverIndex = (this.#serverIndex + 1) % this.#servers.length;
  }

  async #request(
    method: string,
    route: string,
    body?: unknown,
  ): Promise<{ status: number; json: unknown }> {
    let lastError: unknown;
    for (let i = 0; i < this.#servers.length; i++) {
      const base = this.#server();
      try {
        const res = await httpRequest(`${base}${route}`, {
          method,
          headers: body === undefined ? {} : { 'content-type': 'application/json' },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          timeoutMs: this.#requestTimeoutMs,
        });
        return {
          status: res.status,
          json: res.text.length > 0 ? JSON.parse(res.text) : undefined,
        };
      } catch (err) {
        lastError = err;
        this.#nextServer();
      }
    }
    throw lastError;
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
    const post = async (): Promise<void> => {
      const { status, json } = await this.#request('POST', '/api/v1/registry/instances', {
        ...instance,
        leaseMs: this.#leaseMs,
      });
      if (status !== 200)
        throw new Error(`registration refused (HTTP ${status}): ${JSON.stringify(json)}`);
    };
    try {
      await post();
    } catch (err) {
      this.#logger.warn(
        { err: errorMessage(err), key },
        'registration failed; retrying with the heartbeat',
      );
    }
    const beat = this.#timer(
      () => {
        if (gone || this.#closed) return;
        this.#request(
          'PUT',
          `/api/v1/registry/instances/${encodeURIComponent(instance.instanceId)}/lease`,
          {
            leaseMs: this.#leaseMs,
          },
        )
          .then(({ status }) => {
            if (status === 404 && !gone) return post();
            return undefined;
          })
          .catch((err) =>
            this.#logger.warn({ err: errorMessage(err), key }, 'lease renewal failed'),
          );
      },
      Math.max(250, Math.floor(this.#leaseMs / 3)),
      true,
    );
    const patch = async (body: Record<string, unknown>) => {
      const { status, json } = await this.#request(
        'PATCH',
        `/api/v1/registry/instances/${encodeURIComponent(instance.instanceId)}`,
        { key, ...body },
      );
      if (status !== 200)
        throw new Error(`registry patch refused (HTTP ${status}): ${JSON.stringify(json)}`);
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
        await this.#request(
          'DELETE',
          `/api/v1/registry/instances/${encodeURIComponent(instance.instanceId)}?key=${encodeURIComponent(key)}`,
        );
      },
    };
  }

  subscribe(key: string, listener: InstancesListener): RegistrySubscription {
    let state = this.#keys.get(key);
    if (state === undefined) {
      state = { key, listeners: new Set(), last: this.#snapshot[key] };
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
        this.#keys.delete(key);
        for (const stream of this.#streams) {
          if (!stream.keys.delete(key) || stream.keys.size > 0) continue;
          stream.closed = true;
          stream.abort?.abort();
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
      stream.restart = true;
      stream.abort?.abort();
      return;
    }
    const stream: Stream = {
      keys: new Set([key]),
      abort: undefined,
      restart: false,
      closed: false,
    };
    this.#streams.add(stream);
    void this.#watch(stream, 0);
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

  async #watch(stream: Stream, failures: number): Promise<void> {
    if (stream.closed || this.#closed) return;
    const abort = new AbortController();
    stream.abort = abort;
    stream.restart = false;
    const base = this.#server();
    const query = [...stream.keys].map((k) => `key=${encodeURIComponent(k)}`).join('&');
    let received = false;
    try {
      const res = await fetch(`${base}/api/v1/registry/watch?${query}`, {
        headers: { accept: 'text/event-stream' },
        signal: abort.signal,
      });
      if (res.status !== 200 || res.body === null) {
        throw new Error(`watch answered HTTP ${res.status}`);
      }
      const decoder = new TextDecoder();
      let buffer = '';
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end = buffer.indexOf('\n\n');
        while (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          end = buffer.indexOf('\n\n');
          let event = 'message';
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data += line.slice(5).trim();
          }
          if (event !== 'snapshot' || data.length === 0) continue;
          const parsed = JSON.parse(data) as { key: string; instances: ServiceInstance[] };
          const state = this.#keys.get(parsed.key);
          if (state !== undefined && stream.keys.has(parsed.key)) {
            received = true;
            this.#deliver(state, parsed.instances);
          }
        }
        if (buffer.length > 16 * 1024 * 1024) {
          throw new Error('watch stream sent an oversized event');
        }
      }
    } catch (err) {
      if (!abort.signal.aborted) {
        this.#logger.debug(
          { err: errorMessage(err), server: base, keys: stream.keys.size },
          'watch stream failed',
        );
      }
    }
    if (stream.closed || this.#closed) return;
    if (stream.restart) {
      void this.#watch(stream, 0);
      return;
    }
    this.#nextServer();
    const attempt = received ? 0 : failures + 1;
    const delay = Math.min(5000, this.#reconnectMs * 2 ** Math.min(attempt, 10));
    this.#timer(() => void this.#watch(stream, attempt), delay * (0.5 + Math.random() / 2), false);
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    for (const stream of this.#streams) {
      stream.closed = true;
      stream.abort?.abort();
    }
    this.#streams.clear();
    this.#keys.clear();
  }
}
