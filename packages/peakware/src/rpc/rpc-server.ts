/**
 * The provider: hosts service implementations on one TCP port (and optionally HTTP/JSON),
 * registers them, and runs every call through one lifecycle:
 *
 *   1. decode the frame (malformed → PEAK_RPC_PROTOCOL to that caller only)
 *   2. refuse when draining (PEAK_RPC_SHUTTING_DOWN) or over `maxInFlight` (PEAK_RPC_OVERLOADED)
 *   3. find service and method (PEAK_RPC_UNKNOWN_SERVICE / _METHOD)
 *   4. with `identity`: the caller is the app its verified identity names (presented once per
 *      connection, or `authorization: Bearer` over HTTP), never the `peak-caller` header;
 *      no, an expired or a refused identity → PEAK_UNAUTHENTICATED when it is required
 *   5. decode the context from the headers; refuse work whose deadline passed
 *      (PEAK_DEADLINE_EXCEEDED: the method never starts)
 *   6. validate the argument (PEAK_RPC_BAD_ARGUMENTS)
 *   7. provider filters, then the method, in a child context carrying the remaining time
 *   8. the result or the error back to the caller
 *
 * Graceful stop: deregister and send GOAWAY on every connection (consumers stop picking
 * this instance at once), keep serving what still arrives until nothing is in flight and
 * the connections are quiet, then close.
 */

import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import { assertDeadline, childContext, runWithContext } from '../core/context.js';
import { ContextHeaders, decodeContext, type HeaderMap } from '../core/context-headers.js';
import { ErrorCodes, httpStatusOf, isPeakError, PeakError } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import type { RegistrationHandle, Registry } from '../registry/registry.js';
import { DEFAULT_GROUP } from '../registry/service-instance.js';
import type { ProviderIdentityOptions, VerifiedCaller } from './caller-identity.js';
import {
  DEFAULT_MAX_FRAME_BYTES,
  encodeFrame,
  type Frame,
  FrameDecoder,
  type WireError,
} from './frame-codec.js';
import { FrameWriter } from './frame-writer.js';
import { type Invocation, type RpcFilter, runFilters } from './rpc-filter.js';
import type { ServiceDefinition, ServiceImplementation } from './service-definition.js';
import { type Transport, tcpTransport } from './transport.js';

/** Options of {@link RpcServer}; defaults in {@link SERVER_DEFAULTS}. */
export interface RpcServerOptions {
  /** Bind address. */
  host?: string;
  /** TCP port; 0 picks a free one. */
  port?: number;
  /** Address consumers should dial (default: `host`, or 127.0.0.1 for 0.0.0.0). */
  advertiseHost?: string;
  /** Serve HTTP/JSON on this port too (0 picks one); absent: no HTTP. */
  httpPort?: number;
  maxFrameBytes?: number;
  /** Most calls running at once in this process; more are refused, not queued. */
  maxInFlight?: number;
  /** Pause reading a connection while this many bytes wait to be written to it. */
  maxWriteBufferBytes?: number;
  /** Close a connection that sent nothing (not even a ping) for this long, ms. */
  idleTimeoutMs?: number;
  /**
   * Most bytes held, over all connections, in frames not yet complete. A connection whose
   * partial frame would push the total past it is closed (PEAK_RPC_OVERLOADED), so no
   * number of half-sent frames moves memory past this bound (plus each socket's read
   * chunk). Default 64 MiB.
   */
  maxPartialBytes?: number;
  /** Close a connection whose frame has been incomplete this long (a slow sender), ms. */
  frameTimeoutMs?: number;
  /** Graceful stop: the longest wait for in-flight calls, ms. */
  drainTimeoutMs?: number;
  /** Graceful stop: how long connections must be quiet before closing, ms. */
  quietMs?: number;
  /** Where to register; absent: not registered. */
  registry?: Registry;
  /** Registered group (default: each definition's group). */
  group?: string;
  /** Registered weight. */
  weight?: number;
  /** Registered route tags, e.g. `['canary']`. */
  tags?: string[];
  /** Registered metadata. */
  metadata?: Record<string, string>;
  /** This process's instance id (default: host-pid-random). */
  instanceId?: string;
  /** Provider-side filters, in order. */
  filters?: RpcFilter[];
  /** How connections are accepted (TCP, TLS). Default {@link tcpTransport}. */
  transport?: Transport;
  /**
   * Verify callers' signed identities (see caller-identity.ts): filters and guard rules then
   * see the verified app only. Absent: callers are who their `peak-caller` header says.
   */
  identity?: ProviderIdentityOptions;
  logger?: Logger;
}

/** What a call presented of its caller: the verified identity, or why it was refused. */
export interface PresentedCaller {
  caller?: VerifiedCaller | undefined;
  refused?: unknown;
}

/** Defaults of {@link RpcServerOptions}, written once. */
export const SERVER_DEFAULTS = {
  host: '127.0.0.1',
  port: 0,
  maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
  maxInFlight: 10_000,
  maxWriteBufferBytes: 16 * 1024 * 1024,
  idleTimeoutMs: 60_000,
  maxPartialBytes: 64 * 1024 * 1024,
  frameTimeoutMs: 10_000,
  drainTimeoutMs: 10_000,
  quietMs: 200,
  weight: 100,
} as const;

interface Hosted {
  def: ServiceDefinition;
  impl: Record<string, (input: unknown, ctx: ReturnType<typeof childContext>) => unknown>;
}

interface ConnState {
  socket: net.Socket;
  writer: FrameWriter;
  lastRequestAt: number;
  /** Bytes of an incomplete frame this connection holds (counted in the server's budget). */
  partial: number;
  /** When its current incomplete frame began, epoch ms; 0 when none. */
  partialSince: number;
  /** The identity this connection presented, verified, or why it was refused. */
  presented: PresentedCaller;
  /** While an identity's check waits for keys: requests after it wait for it. */
  identityPending: Promise<void> | undefined;
}

/** Turns anything thrown into the error frame sent to the caller. */
export function toWireError(err: unknown): WireError {
  if (isPeakError(err)) return { code: err.code, message: err.message, details: err.details };
  const message = err instanceof Error ? err.message : String(err);
  return { code: ErrorCodes.RPC_REMOTE, message: `the method failed: ${message}`, details: {} };
}

/** A provider process's RPC endpoint. */
export class RpcServer {
  readonly instanceId: string;
  readonly #opts: RpcServerOptions & {
    -readonly [K in keyof typeof SERVER_DEFAULTS]: (typeof SERVER_DEFAULTS)[K] extends string
      ? string
      : number;
  };
  readonly #logger: Logger;
  readonly #services = new Map<string, Hosted>();
  readonly #latest = new Map<string, Hosted>();
  readonly #conns = new Set<ConnState>();
  readonly #filters: RpcFilter[];
  #tcp: net.Server | undefined;
  #partialBytes = 0;
  #partialSweep: NodeJS.Timeout | undefined;
  #http: http.Server | undefined;
  #handles: RegistrationHandle[] = [];
  #inFlight = 0;
  #draining = false;
  #stopping: Promise<void> | undefined;
  #idleEvents = new Set<() => void>();
  #port = 0;
  #httpPort: number | undefined;

  constructor(options: RpcServerOptions = {}) {
    this.#opts = { ...SERVER_DEFAULTS, ...options };
    this.#logger = options.logger ?? silentLogger();
    this.#filters = [...(options.filters ?? [])];
    this.instanceId =
      options.instanceId ?? `${os.hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  }

  /** Hosts an implementation of a service definition. */
  addService<D extends ServiceDefinition>(def: D, impl: ServiceImplementation<D>): this {
    for (const method of Object.keys(def.methods)) {
      if (typeof (impl as Record<string, unknown>)[method] !== 'function') {
        throw new PeakError(
          ErrorCodes.USAGE,
          `the implementation of ${def.id} has no function for method '${method}'`,
          { details: { input: method } },
        );
      }
    }
    const hosted: Hosted = { def, impl: impl as unknown as Hosted['impl'] };
    this.#services.set(def.id, hosted);
    const prev = this.#latest.get(def.name);
    if (
      prev === undefined ||
      prev.def.version.localeCompare(def.version, 'en', { numeric: true }) < 0
    ) {
      this.#latest.set(def.name, hosted);
    }
    return this;
  }

  /** Adds a provider-side filter (e.g. guard's) at the end of the chain. */
  use(filter: RpcFilter): this {
    this.#filters.push(filter);
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
    return this.#inFlight;
  }

  /** Listens, then registers every hosted service. */
  async start(): Promise<{ host: string; port: number; httpPort?: number }> {
    const tcp = (this.#opts.transport ?? tcpTransport).createServer((socket) =>
      this.#accept(socket),
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
      const server = http.createServer((req, res) => this.#onHttp(req, res));
      server.keepAliveTimeout = 65_000;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.#opts.httpPort, this.#opts.host, () => resolve());
      });
      this.#http = server;
      this.#httpPort = (server.address() as net.AddressInfo).port;
    }
    if (this.#opts.registry !== undefined) {
      const host =
        this.#opts.advertiseHost ??
        (this.#opts.host === '0.0.0.0' || this.#opts.host === '::' ? '127.0.0.1' : this.#opts.host);
      for (const { def } of this.#services.values()) {
        this.#handles.push(
          await this.#opts.registry.register({
            instanceId: this.instanceId,
            service: def.name,
            version: def.version,
            group: this.#opts.group ?? def.group ?? DEFAULT_GROUP,
            host,
            port: this.#port,
            weight: this.#opts.weight,
            tags: this.#opts.tags ?? [],
            metadata: {
              ...(this.#opts.metadata ?? {}),
              ...(this.#httpPort === undefined ? {} : { httpPort: String(this.#httpPort) }),
              transport: (this.#opts.transport ?? tcpTransport).name,
              pid: String(process.pid),
            },
          }),
        );
      }
    }
    this.#logger.info({ port: this.#port, httpPort: this.#httpPort }, 'rpc server listening');
    return {
      host: this.#opts.host,
      port: this.#port,
      ...(this.#httpPort === undefined ? {} : { httpPort: this.#httpPort }),
    };
  }

  /** Marks every registered service offline (no new traffic) or back up. */
  async setStatus(status: 'up' | 'offline'): Promise<void> {
    await Promise.all(this.#handles.map((h) => h.setStatus(status)));
  }

  /** Changes the registered weight or tags at runtime. */
  async update(patch: { weight?: number; tags?: string[] }): Promise<void> {
    await Promise.all(this.#handles.map((h) => h.update(patch)));
  }

  #accept(socket: net.Socket): void {
    if (this.#draining) {
      socket.destroy();
      return;
    }
    const conn: ConnState = {
      socket,
      writer: new FrameWriter(socket),
      lastRequestAt: Date.now(),
      partial: 0,
      partialSince: 0,
      presented: {},
      identityPending: undefined,
    };
    this.#conns.add(conn);
    const decoder = new FrameDecoder(this.#opts.maxFrameBytes);
    socket.setTimeout(this.#opts.idleTimeoutMs, () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(
          chunk,
          (frame) => this.#onFrame(conn, frame),
          (err) => this.#onBadFrame(conn, err),
        );
      } catch (err) {
        // The stream cannot be resynchronised (oversized or zero length): tell the peer why
        // on id 0 and close this connection only.
        this.#logger.warn(
          { err, remote: socket.remoteAddress },
          'closing a connection: broken frames',
        );
        this.#send(conn, { type: 3, id: 0, error: toWireError(err) });
        conn.writer.flush();
        socket.end();
        setTimeout(() => socket.destroy(), 500).unref();
      }
      this.#accountPartial(conn, decoder.buffered);
      if (conn.writer.buffered > this.#opts.maxWriteBufferBytes && !socket.isPaused()) {
        // The peer is not reading its answers: stop reading its requests until it does.
        socket.pause();
        socket.once('drain', () => socket.resume());
      }
    });
    socket.on('error', (err) => this.#logger.debug({ err }, 'rpc connection error'));
    socket.on('close', () => {
      this.#releasePartial(conn);
      this.#conns.delete(conn);
      this.#checkIdle();
    });
    if (this.#draining) this.#send(conn, { type: 6, reason: 'draining' });
  }

  /** Bytes held in incomplete frames over all connections (bounded by `maxPartialBytes`). */
  get partialBytes(): number {
    return this.#partialBytes;
  }

  /** Counts a connection's incomplete frame against the budget; closes it when over. */
  #accountPartial(conn: ConnState, buffered: number): void {
    if (conn.socket.destroyed) return;
    this.#partialBytes += buffered - conn.partial;
    conn.partial = buffered;
    if (buffered === 0) {
      conn.partialSince = 0;
      return;
    }
    if (conn.partialSince === 0) conn.partialSince = Date.now();
    this.#ensurePartialSweep();
    if (this.#partialBytes > this.#opts.maxPartialBytes) {
      this.#dropPartial(
        conn,
        `this process holds ${this.#partialBytes} bytes of incomplete frames, over its budget of ${this.#opts.maxPartialBytes} (maxPartialBytes); send whole frames, or fewer large ones at once`,
      );
    }
  }

  #releasePartial(conn: ConnState): void {
    this.#partialBytes -= conn.partial;
    conn.partial = 0;
    conn.partialSince = 0;
  }

  /** Closes a connection for its incomplete frame: tells the peer why on id 0. */
  #dropPartial(conn: ConnState, reason: string): void {
    this.#logger.warn({ remote: conn.socket.remoteAddress, bytes: conn.partial }, reason);
    this.#releasePartial(conn);
    this.#send(conn, {
      type: 3,
      id: 0,
      error: { code: ErrorCodes.RPC_OVERLOADED, message: `${reason}; the connection is closed` },
    });
    conn.writer.flush();
    conn.socket.end();
    conn.socket.destroy();
  }

  /** While any frame is incomplete, checks once a second for ones older than frameTimeoutMs. */
  #ensurePartialSweep(): void {
    if (this.#partialSweep !== undefined) return;
    const every = Math.max(10, Math.min(1000, Math.floor(this.#opts.frameTimeoutMs / 2)));
    this.#partialSweep = setInterval(() => {
      const now = Date.now();
      let open = 0;
      for (const c of this.#conns) {
        if (c.partialSince === 0) continue;
        if (now - c.partialSince >= this.#opts.frameTimeoutMs) {
          this.#dropPartial(
            c,
            `a frame stayed incomplete for ${now - c.partialSince} ms, over frameTimeoutMs ${this.#opts.frameTimeoutMs}`,
          );
        } else {
          open++;
        }
      }
      if (open === 0) {
        clearInterval(this.#partialSweep);
        this.#partialSweep = undefined;
      }
    }, every);
    this.#partialSweep.unref();
  }

  #send(conn: ConnState, frame: Frame): void {
    let buf: Buffer;
    try {
      buf = encodeFrame(frame, this.#opts.maxFrameBytes);
    } catch (err) {
      if (frame.type !== 2) throw err;
      buf = encodeFrame(
        { type: 3, id: frame.id, error: toWireError(err) },
        this.#opts.maxFrameBytes,
      );
    }
    conn.writer.write(buf);
  }

  #onBadFrame(conn: ConnState, err: PeakError): void {
    const id = err.details.id;
    this.#send(conn, { type: 3, id: typeof id === 'number' ? id : 0, error: toWireError(err) });
  }

  #onFrame(conn: ConnState, frame: Frame): void {
    switch (frame.type) {
      case 1:
        conn.lastRequestAt = Date.now();
        this.#handleRequest(conn, frame);
        return;
      case 4:
        this.#send(conn, { type: 5, id: frame.id });
        return;
      case 7:
        this.#onIdentity(conn, frame.token);
        return;
      default:
        return;
    }
  }

  /** Checks a connection's identity once; the calls that follow on it carry the result. */
  #onIdentity(conn: ConnState, token: string): void {
    const verifier = this.#opts.identity?.verifier;
    if (verifier === undefined) return;
    const settle = (presented: PresentedCaller) => {
      conn.presented = presented;
    };
    try {
      const result = verifier.verify(token);
      if (!(result instanceof Promise)) {
        settle({ caller: result });
        return;
      }
      const pending = result.then(
        (caller) => settle({ caller }),
        (refused: unknown) => settle({ refused }),
      );
      conn.identityPending = pending;
      void pending.then(() => {
        if (conn.identityPending === pending) conn.identityPending = undefined;
      });
    } catch (refused) {
      settle({ refused });
    }
  }

  #handleRequest(conn: ConnState, frame: Extract<Frame, { type: 1 }>): void {
    if (conn.identityPending !== undefined) {
      const pending = conn.identityPending;
      void pending.then(() => this.#handleRequest(conn, frame));
      return;
    }
    this.invoke(
      frame.service,
      frame.method,
      frame.headers,
      frame.args,
      conn.socket.remoteAddress,
      conn.presented,
    ).then(
      (result) => this.#send(conn, { type: 2, id: frame.id, result }),
      (err) => this.#send(conn, { type: 3, id: frame.id, error: toWireError(err) }),
    );
  }

  /**
   * Runs one call through the provider lifecycle (the same for TCP and HTTP/JSON).
   * `service` is `name:version`, or a bare name for the newest hosted version; `presented`
   * is what the caller showed of its identity (when the provider verifies identities).
   */
  async invoke(
    service: string,
    method: string,
    headers: HeaderMap,
    args: unknown,
    remote?: string,
    presented?: PresentedCaller,
  ): Promise<unknown> {
    if (this.#inFlight >= this.#opts.maxInFlight) {
      throw new PeakError(
        ErrorCodes.RPC_OVERLOADED,
        `provider ${this.instanceId} has ${this.#inFlight} calls in flight (maxInFlight ${this.#opts.maxInFlight}); the call did not run, retry elsewhere`,
        { details: { sent: false } },
      );
    }
    const hosted = this.#services.get(service) ?? this.#latest.get(service);
    if (hosted === undefined) {
      throw new PeakError(
        ErrorCodes.RPC_UNKNOWN_SERVICE,
        `provider ${this.instanceId} does not host service '${service}'; it hosts: ${[...this.#services.keys()].join(', ') || 'nothing'}`,
        { details: { service, sent: false } },
      );
    }
    const spec = Object.hasOwn(hosted.def.methods, method) ? hosted.def.methods[method] : undefined;
    const fn = spec === undefined ? undefined : hosted.impl[method];
    if (spec === undefined || fn === undefined) {
      throw new PeakError(
        ErrorCodes.RPC_UNKNOWN_METHOD,
        `service ${hosted.def.id} has no method '${method}'; it has: ${Object.keys(hosted.def.methods).join(', ')}`,
        { details: { service: hosted.def.id, method, sent: false } },
      );
    }
    let caller: string | undefined;
    if (this.#opts.identity !== undefined) {
      caller = this.#verifiedCaller(presented, `${hosted.def.id}.${method}`);
      // The caller is who the identity proves, never who a header says.
      if (caller === undefined) delete headers[ContextHeaders.caller];
      else headers[ContextHeaders.caller] = caller;
    }
    const ctx = childContext(decodeContext(headers));
    assertDeadline(`${hosted.def.id}.${method}`, ctx);
    const parsed = spec.input.safeParse(args);
    if (!parsed.success) {
      const issues = parsed.error.issues.slice(0, 5).map((i) => ({
        path: i.path.map(String).join('.'),
        message: i.message,
      }));
      throw new PeakError(
        ErrorCodes.RPC_BAD_ARGUMENTS,
        `arguments of ${hosted.def.id}.${method} failed its schema: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`,
        { details: { service: hosted.def.id, method, issues, sent: false } },
      );
    }
    this.#inFlight++;
    try {
      const input = parsed.data;
      return await runWithContext(ctx, () => {
        const call = async () => fn(input, ctx);
        if (this.#filters.length === 0) return call();
        const invocation: Invocation = {
          side: 'provider',
          service: hosted.def.name,
          version: hosted.def.version,
          method,
          args: input,
          context: ctx,
          idempotent: spec.idempotent === true,
          ...(remote === undefined ? {} : { remote }),
          ...(caller === undefined ? {} : { caller }),
        };
        return runFilters(this.#filters, invocation, call);
      });
    } finally {
      this.#inFlight--;
      if (this.#inFlight === 0) this.#checkIdle();
    }
  }

  /**
   * The verified app of a call, or undefined for an unknown caller a provider that does not
   * require identities serves; throws PEAK_UNAUTHENTICATED when one is required and the
   * call has none, an expired one or a refused one.
   */
  #verifiedCaller(presented: PresentedCaller | undefined, what: string): string | undefined {
    const c = presented?.caller;
    if (c !== undefined && c.expiresAt > Date.now()) return c.app;
    if (this.#opts.identity?.required === false) return undefined;
    const hint =
      'give the consumer an identity (RpcClient option identity: an AppIdentity of peakware/security)';
    if (c !== undefined) {
      throw new PeakError(
        ErrorCodes.UNAUTHENTICATED,
        `provider ${this.instanceId} refused ${what}: the caller identity of app '${c.app}' expired at ${new Date(c.expiresAt).toISOString()}; its AppIdentity renews it from the control plane`,
        { details: { reason: 'expired', app: c.app, sent: false } },
      );
    }
    if (presented?.refused !== undefined) {
      const why = presented.refused;
      throw new PeakError(
        ErrorCodes.UNAUTHENTICATED,
        `provider ${this.instanceId} refused ${what}: ${isPeakError(why) ? why.message : String(why)}`,
        { details: { ...(isPeakError(why) ? why.details : {}), sent: false } },
      );
    }
    throw new PeakError(
      ErrorCodes.UNAUTHENTICATED,
      `provider ${this.instanceId} requires a verified caller identity for ${what} and the call presented none; ${hint}`,
      { details: { reason: 'missing', sent: false } },
    );
  }

  /** The identity of an HTTP/JSON call (`authorization: Bearer`), checked by the verifier. */
  async #presentedOverHttp(req: http.IncomingMessage): Promise<PresentedCaller | undefined> {
    const verifier = this.#opts.identity?.verifier;
    if (verifier === undefined) return undefined;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (m === null) return {};
    try {
      return { caller: await verifier.verify(m[1]!) };
    } catch (refused) {
      return { refused };
    }
  }

  #onHttp(req: http.IncomingMessage, res: http.ServerResponse): void {
    const reply = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res.writeHead(status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text),
      });
      res.end(text);
    };
    const url = (req.url ?? '/').split('?')[0] ?? '/';
    if (req.method === 'GET' && (url === '/rpc' || url === '/rpc/')) {
      reply(200, {
        instanceId: this.instanceId,
        services: [...this.#services.values()].map(({ def }) => ({
          name: def.name,
          version: def.version,
          methods: Object.entries(def.methods).map(([name, m]) => ({
            name,
            idempotent: m.idempotent === true,
          })),
        })),
      });
      return;
    }
    const m = /^\/rpc\/([^/]+)\/([^/]+)$/.exec(url);
    if (req.method !== 'POST' || m === null) {
      reply(404, {
        error: {
          code: ErrorCodes.NOT_FOUND,
          message: `no route ${req.method} ${url}; call POST /rpc/<service>/<method> with a JSON body, or GET /rpc`,
        },
      });
      return;
    }
    const service = decodeURIComponent(m[1]!);
    const method = decodeURIComponent(m[2]!);
    const version = req.headers['peak-version'];
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > this.#opts.maxFrameBytes) {
        tooLarge = true;
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (tooLarge) {
        reply(413, {
          error: {
            code: ErrorCodes.RPC_FRAME_TOO_LARGE,
            message: `the body is ${size} bytes, over the limit of ${this.#opts.maxFrameBytes}`,
          },
        });
        return;
      }
      let args: unknown;
      try {
        const text = Buffer.concat(chunks).toString('utf8');
        args = text.length === 0 ? undefined : JSON.parse(text);
      } catch (err) {
        reply(400, {
          error: {
            code: ErrorCodes.RPC_BAD_ARGUMENTS,
            message: `the body is not JSON: ${(err as Error).message}`,
          },
        });
        return;
      }
      if (this.#draining) {
        reply(503, {
          error: {
            code: ErrorCodes.RPC_SHUTTING_DOWN,
            message: 'the provider is shutting down; retry elsewhere',
          },
        });
        return;
      }
      const id = typeof version === 'string' ? `${service}:${version}` : service;
      this.#presentedOverHttp(req)
        .then((presented) =>
          this.invoke(id, method, req.headers, args, req.socket.remoteAddress, presented),
        )
        .then(
          (result) => reply(200, { result: result ?? null }),
          (err) => {
            const wire = toWireError(err);
            reply(httpStatus(wire.code), { error: wire });
          },
        );
    });
  }

  #checkIdle(): void {
    if (this.#inFlight !== 0) return;
    for (const fn of this.#idleEvents) fn();
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
    const deregistered = Promise.all(
      this.#handles.map((h) =>
        h.deregister().catch((err) => this.#logger.warn({ err }, 'deregistering failed')),
      ),
    );
    this.#tcp?.close();
    clearInterval(this.#partialSweep);
    this.#partialSweep = undefined;
    for (const conn of this.#conns) {
      this.#send(conn, { type: 6, reason: 'draining' });
      conn.writer.flush();
    }
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
      let lastRequest = 0;
      for (const c of this.#conns) lastRequest = Math.max(lastRequest, c.lastRequestAt);
      const quiet = now - lastRequest >= this.#opts.quietMs;
      if ((this.#inFlight === 0 && quiet) || now >= deadline) break;
      await new Promise((r) => setTimeout(r, Math.min(50, this.#opts.quietMs)));
    }
    if (this.#inFlight > 0) {
      this.#logger.warn(
        { inFlight: this.#inFlight },
        'drain timeout: closing with calls in flight',
      );
    }
    for (const conn of this.#conns) {
      conn.writer.flush();
      conn.socket.end();
    }
    const closeHttp =
      this.#http === undefined
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            this.#http!.close(() => resolve());
            this.#http!.closeIdleConnections();
          });
    await closeHttp;
    await new Promise<void>((resolve) => {
      if (this.#conns.size === 0) return resolve();
      const t = setTimeout(() => {
        for (const c of this.#conns) c.socket.destroy();
        resolve();
      }, 1000);
      const check = setInterval(() => {
        if (this.#conns.size === 0) {
          clearTimeout(t);
          clearInterval(check);
          resolve();
        }
      }, 10);
      t.unref();
    });
    this.#logger.info({ ms: Date.now() - started }, 'rpc server stopped');
  }
}

/** The HTTP status for an RPC error code on the HTTP/JSON access path (the shared table). */
export function httpStatus(code: string): number {
  return httpStatusOf(code);
}
