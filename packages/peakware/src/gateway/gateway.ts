/**
 * `Gateway`: the open API gateway process (`peak gateway`), over HTTP or HTTPS (`tls`:
 * certificate files, reloaded when they change). Stateless: routes, apps, keys
 * and subscriptions come from the control plane's feed into memory (and a snapshot file),
 * so any number run behind a load balancer and a control-plane outage does not stop them.
 *
 * One request's lifecycle, in this order (each step refuses with one JSON shape,
 * `{ error: { code, message, details } }`, and the target never sees a refused request):
 *
 *   0. the HTTP front (`core/http-front.ts`) reads a small plain request off the socket; any other
 *      request, and its connection from then on, is node:http's (which answers malformed
 *      ones 400)
 *   1. built-ins under `/_peak/` (health, the caller's OpenAPI document)
 *   2. route lookup by host, method and path (none → 404 PEAK_GATEWAY_NO_ROUTE); a CORS
 *      preflight is answered here from the route's policy; a request the front read for an
 *      HTTP-upstream route is handed to node:http here, before any check (the answer is
 *      streamed through node's response)
 *   3. the route's IP allow/deny lists (403)
 *   4. the body, up to the route's size limit (413; a too-large Content-Length is refused
 *      before a byte of the body is read)
 *   5. the credential: `x-peak-api-key` (auth `key`) or the signature headers (auth
 *      `signature`: key, timestamp within the clock skew, HMAC over the canonical request);
 *      the key must be live, its app enabled, allowed from this address, and approved for
 *      the route's API (401 / 403)
 *   6. the nonce, claimed in the shared store (401 PEAK_GATEWAY_REPLAYED), in parallel with
 *      7-8
 *   7. the app's quota for the API, from a local lease (429 with when it resets)
 *   8. guard: the route's resource with the app as origin (rate limits, cluster limits,
 *      hot parameters, system protection; 429)
 *   9. the target's argument: JSON parsed, fields mapped, checked by the method's schema (400)
 *  10. the call, in a context carrying the caller's traceparent and baggage, the deadline
 *      (the route's, or the caller's `peak-timeout` when shorter), the stress flag and route
 *      tags, and the app as caller; a target that is down answers 502, one past the
 *      deadline 504
 *  11. the answer, counted per API and app and traced (the trace id in `x-peak-trace-id`)
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo, Server as NetServer } from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import type { ValidateFunction } from 'ajv';
import { ConfigClient } from '../config/config-client.js';
import { ConfigRuleSource } from '../config/config-rule-source.js';
import {
  type CallContext,
  type ContextInit,
  childContext,
  createContext,
  remainingTime,
  runWithContext,
} from '../core/context.js';
import { decodeContext, encodeContext } from '../core/context-headers.js';
import { ControlPlaneClient, type TokenSource } from '../core/control-plane-client.js';
import {
  ErrorCodes,
  errorMessage,
  httpStatusOf,
  InvalidArgumentError,
  isPeakError,
  PeakError,
} from '../core/errors.js';
import {
  FRONT_MAX_BODY_BYTES,
  type FrontRequest,
  type FrontResponse,
  HttpFront,
} from '../core/http-front.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { isLoopbackHost } from '../core/loopback.js';
import { constantTimeEqual, sha256Hex } from '../core/secrets.js';
import { readTlsFiles, type TlsFiles, TlsFilesWatcher } from '../core/tls-files.js';
import { isBlockError } from '../guard/block-error.js';
import { Guard } from '../guard/guard.js';
import { HttpTokenClient } from '../guard/http-token-client.js';
import { Producer } from '../mq/producer.js';
import { HttpRegistry } from '../registry/http-registry.js';
import { DEFAULT_GROUP, DEFAULT_VERSION, serviceKey } from '../registry/service-instance.js';
import { RpcClient } from '../rpc/rpc-client.js';
import type { RpcFilter } from '../rpc/rpc-filter.js';
import { ControlPlaneSpanExporter } from '../telemetry/control-plane-exporter.js';
import { MetricsPusher } from '../telemetry/metrics-pusher.js';
import {
  formatPrometheus,
  PROMETHEUS_CONTENT_TYPE,
  processMetrics,
} from '../telemetry/prometheus-format.js';
import { rpcTracingFilter } from '../telemetry/rpc-tracing.js';
import { BatchSpanProcessor } from '../telemetry/span-exporter.js';
import type { Span } from '../telemetry/tracer.js';
import { Tracer } from '../telemetry/tracer.js';
import {
  type CompiledSource,
  compileSource,
  type RequestFields,
  readField,
} from './field-source.js';
import { GatewayMetrics } from './gateway-metrics.js';
import {
  apiOf,
  type GatewayAppSpec,
  type GatewayKey,
  type GatewayRouteSpec,
  resourceOf,
} from './gateway-objects.js';
import { GatewayState } from './gateway-state.js';
import { HttpUpstream } from './http-upstream.js';
import { IpFilter } from './ip-filter.js';
import { ControlPlaneNonceStore, type NonceStore, RedisNonceStore } from './nonce-store.js';
import { gatewayOpenApi } from './openapi.js';
import { QuotaLeases } from './quota-leases.js';
import { EMPTY_BODY_SHA256, SignatureHeaders, signCanonical } from './request-signing.js';
import { isMatch } from './route-table.js';
import { StateSync } from './state-sync.js';

/** Options of a {@link Gateway}; defaults in {@link GATEWAY_DEFAULTS}. */
export interface GatewayOptions {
  /**
   * Called for every request that matched a route, before its checks: undefined to serve
   * it, or a promise resolving `'drop'` (the socket is destroyed unanswered) or `'go'`, or
   * rejecting with the error to answer. `peak gateway` puts the drill's `http` faults here
   * (`httpFault`), so a fault drill reaches the gateway's routes.
   */
  requestHook?: (method: string, path: string) => Promise<'drop' | 'go'> | undefined;
  /** More filters for the RPC client that calls routes' targets (the drill's `rpc-client` faults). */
  rpcFilters?: RpcFilter[];
  /** The control plane: one URL or several (failover in order). */
  servers: string | readonly string[];
  /** The admin token (the change feed carries key secrets), or a function returning it. */
  token: TokenSource;
  /** Port to listen on; 0 picks a free one. */
  port?: number;
  host?: string;
  /**
   * Serve HTTPS from these PEM files (`peak tls init` makes a dev pair), watched and
   * reloaded for new connections. Absent: plain HTTP, with a warning at start when `host`
   * is not a loopback address.
   */
  tls?: TlsFiles;
  /** Redis for nonces (`redis://...`); absent: nonces in the control plane's PostgreSQL. */
  redisUrl?: string;
  /** The config app whose `governance/guard-rules` item holds the gateway's guard rules. */
  configApp?: string;
  /** Where to keep the last state across restarts (read at start when the control plane is down). */
  snapshotFile?: string;
  /** How far a signed timestamp may be from the gateway's clock, ms. */
  clockSkewMs?: number;
  /** How long a nonce is remembered, ms: at least twice the skew (checked), so no replay gets in. */
  nonceWindowMs?: number;
  /** Deadline of a call when the route sets none, ms. */
  timeoutMs?: number;
  /** Largest body when the route sets none, bytes. */
  maxBodyBytes?: number;
  /** The service name in traces and metrics. */
  service?: string;
  /** Fraction of traces kept (errors and slow calls always are). */
  sampleRatio?: number;
  /** Export spans and push per-second metrics to the control plane. */
  telemetry?: boolean;
  /** Cluster flow rules take tokens from the control plane (exact global limits). */
  clusterLimits?: boolean;
  /**
   * Requests that are small and simple are read and answered by the gateway's own HTTP/1.1
   * front (over TLS too, when `tls` is set), everything else by node:http (see
   * `core/http-front.ts`). False: node:http serves every request.
   */
  httpFront?: boolean;
  logger?: Logger;
  /** The clock for timestamps, ms. */
  now?: () => number;
}

/** Defaults of {@link GatewayOptions}, written once. */
export const GATEWAY_DEFAULTS = {
  port: 8080,
  host: '127.0.0.1',
  configApp: 'gateway',
  clockSkewMs: 5 * 60_000,
  nonceWindowMs: 15 * 60_000,
  timeoutMs: 3000,
  maxBodyBytes: 1024 * 1024,
  service: 'peak.gateway',
  sampleRatio: 1,
  telemetry: true,
  clusterLimits: true,
  httpFront: true,
} as const;

/** What `#serve` returns when it gave the connection to node:http to serve the request. */
const HANDED_OVER = 0;

/** A request as node:http or the HTTP front gives it. */
type ServedRequest = IncomingMessage | FrontRequest;

type RpcCaller = ReturnType<RpcClient['untyped']>;

/** What the gateway keeps per route: the spec and everything compiled from it. */
interface CompiledRoute {
  spec: GatewayRouteSpec;
  api: string;
  resource: string;
  auth: 'signature' | 'key' | 'none';
  timeoutMs: number;
  maxBodyBytes: number;
  ip: IpFilter;
  cors:
    | { origins: Set<string>; any: boolean; headers: string; maxAge: string; credentials: boolean }
    | undefined;
  guardArgs: CompiledSource[] | undefined;
  signedHeaders: readonly string[];
  /** The server span's name (`POST /api/buy`); undefined for a `*` method (the request's). */
  spanName: string | undefined;
  rpc:
    | {
        call: RpcCaller;
        method: string;
        idempotent: boolean;
        validate: ValidateFunction | undefined;
        mapping: [string, CompiledSource, string | undefined][] | undefined;
        coerce: Map<string, string>;
        statusField: string | undefined;
        statuses: Record<string, number>;
      }
    | undefined;
  http: HttpUpstream | undefined;
  mq: { topic: string; key: CompiledSource | undefined; tag: string | undefined } | undefined;
}

/** A request's outcome as the metrics see it, and the trace id its answer carries. */
interface Outcome {
  api: string;
  app: string;
  /** `x-peak-trace-id` of the answer once the call context exists, else ''. */
  traceId: string;
}

const ignore = (): void => undefined;
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
  SignatureHeaders.apiKey,
  SignatureHeaders.signature,
]);
const KEY_ID = /^gk_[A-Za-z0-9_-]{1,64}$/;
const NONCE = /^[A-Za-z0-9_-]{8,128}$/;
const SIGNATURE = /^[A-Za-z0-9_-]{43}$/;

function fail(
  code: (typeof ErrorCodes)[keyof typeof ErrorCodes],
  message: string,
  details: Record<string, unknown> = {},
): PeakError {
  return new PeakError(code, message, { details });
}

function header(req: ServedRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The open API gateway. */
export class Gateway {
  readonly #o: GatewayOptions;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #http: ControlPlaneClient;
  readonly #registry: HttpRegistry;
  readonly #rpc: RpcClient;
  readonly #guard: Guard;
  readonly #config: ConfigClient;
  readonly #requestHook: GatewayOptions['requestHook'];
  readonly #quota: QuotaLeases;
  readonly #metrics: GatewayMetrics;
  readonly #tracer: Tracer;
  readonly #spans: BatchSpanProcessor | undefined;
  readonly #pusher: MetricsPusher | undefined;
  readonly #state: GatewayState<CompiledRoute>;
  readonly #sync: StateSync<CompiledRoute>;
  readonly #rpcCallers = new Map<string, RpcCaller>();
  readonly #validators = new Map<string, ValidateFunction>();
  /** An app's compiled IP lists, built on its first call (a changed app is a new object). */
  readonly #appIps = new WeakMap<GatewayAppSpec, IpFilter>();
  #producer: Producer | undefined;
  #nonces!: NonceStore;
  #ajv: import('ajv/dist/2020.js').Ajv2020 | undefined;
  #server: http.Server | undefined;
  #front: HttpFront | undefined;
  #tls: TlsFilesWatcher | undefined;
  #url = '';

  constructor(options: GatewayOptions) {
    // A signed timestamp is good from skew before it until skew after it: a nonce forgotten
    // sooner than twice the skew lets a replay of a still-valid request through.
    const skew = options.clockSkewMs ?? GATEWAY_DEFAULTS.clockSkewMs;
    const window = options.nonceWindowMs ?? GATEWAY_DEFAULTS.nonceWindowMs;
    if (window < 2 * skew)
      throw new InvalidArgumentError(
        `the nonce window (${window} ms) must be at least twice the clock skew (${skew} ms): a signed request stays valid for twice the skew, and a replay after its nonce is forgotten would be let through; raise --nonce-window or lower --clock-skew`,
        { details: { input: 'nonceWindowMs', nonceWindowMs: window, clockSkewMs: skew } },
      );
    this.#o = options;
    this.#logger = options.logger ?? silentLogger();
    this.#now = options.now ?? Date.now;
    this.#http = new ControlPlaneClient({
      servers: options.servers,
      token: options.token,
      serverName: 'the control plane',
    });
    // Beside the state's snapshot: the providers' lists and the guard rules, so a gateway
    // started while no control-plane node answers still finds its targets and limits.
    const snap = options.snapshotFile;
    this.#registry = new HttpRegistry({
      servers: options.servers,
      token: options.token,
      ...(snap === undefined ? {} : { snapshotFile: `${snap}.registry.json` }),
    });
    const service = options.service ?? GATEWAY_DEFAULTS.service;
    const telemetry = options.telemetry ?? GATEWAY_DEFAULTS.telemetry;
    this.#spans = telemetry
      ? new BatchSpanProcessor({
          exporter: new ControlPlaneSpanExporter({
            servers: options.servers,
            token: options.token,
          }),
        })
      : undefined;
    this.#tracer = new Tracer({
      service,
      sink: this.#spans ?? { add: () => undefined },
      sampleRatio: options.sampleRatio ?? GATEWAY_DEFAULTS.sampleRatio,
      slowMs: 200,
      enabled: telemetry,
    });
    this.#rpc = new RpcClient({
      registry: this.#registry,
      loadBalancer: 'p2c-ewma',
      warmupMs: 0,
      filters: [rpcTracingFilter(this.#tracer), ...(options.rpcFilters ?? [])],
      logger: this.#logger,
    });
    this.#guard = new Guard();
    this.#requestHook = options.requestHook;
    this.#config = new ConfigClient({
      servers: options.servers,
      token: options.token,
      app: options.configApp ?? GATEWAY_DEFAULTS.configApp,
      logger: this.#logger,
      ...(snap === undefined ? {} : { snapshotFile: `${snap}.config.json` }),
    });
    this.#quota = new QuotaLeases(this.#http, this.#logger, this.#now);
    this.#pusher = telemetry
      ? new MetricsPusher({ servers: options.servers, token: options.token, service })
      : undefined;
    const pusher = this.#pusher;
    if (pusher !== undefined) this.#guard.on('metrics', (m) => pusher.record(m));
    this.#metrics = new GatewayMetrics((resource, window) => pusher?.watchWindow(resource, window));
    this.#state = new GatewayState<CompiledRoute>(
      { compile: (s) => this.#compile(s), release: (r) => r.http?.close() },
      this.#logger,
    );
    this.#sync = new StateSync(this.#http, this.#state, this.#logger, options.snapshotFile);
  }

  /** `http://host:port` (or `https://`) once started. */
  get url(): string {
    return this.#url;
  }

  /** The local state (routes, apps, keys, subscriptions) and its rev. */
  get state(): GatewayState<unknown> {
    return this.#state;
  }

  /** The gateway's config client (its `configApp`), started with it: for what else follows that app's items (the drill's faults). */
  get config(): ConfigClient {
    return this.#config;
  }

  /** The gateway's flow control (rules follow the config item; `loadRules` for tests). */
  get guard(): Guard {
    return this.#guard;
  }

  /** Calls per API and app. */
  get metrics(): GatewayMetrics {
    return this.#metrics;
  }

  /** Calls `fn` with every batch of changes applied. */
  onChanges(
    fn: (changes: readonly import('./gateway-objects.js').GatewayChange[]) => void,
  ): () => void {
    return this.#sync.onChanges(fn);
  }

  /** Loads the state, follows the rules and starts listening. Resolves with where the state came from. */
  async start(): Promise<{ url: string; origin: string }> {
    const { Ajv2020 } = await import('ajv/dist/2020.js');
    const { default: addFormats } = await import('ajv-formats');
    this.#ajv = new Ajv2020({
      strict: false,
      allErrors: false,
      coerceTypes: false,
      useDefaults: true,
    });
    (addFormats as unknown as (a: unknown) => void)(this.#ajv);
    this.#nonces =
      this.#o.redisUrl === undefined
        ? new ControlPlaneNonceStore(this.#http)
        : await RedisNonceStore.connect(this.#o.redisUrl);
    if (this.#o.clusterLimits ?? GATEWAY_DEFAULTS.clusterLimits)
      this.#guard.setClusterClient(
        new HttpTokenClient({
          servers: this.#o.servers,
          token: this.#o.token,
          namespace: this.#o.service ?? GATEWAY_DEFAULTS.service,
        }),
      );
    this.#guard.useRuleSource(new ConfigRuleSource(this.#config));
    const [origin] = await Promise.all([this.#sync.start(), this.#config.start()]);
    const serverOptions = {
      keepAliveTimeout: 30_000,
      requestTimeout: 30_000,
      headersTimeout: 10_000,
    };
    const handle = (req: IncomingMessage, res: ServerResponse) => this.#handle(req, res);
    const tls = this.#o.tls;
    const useFront = this.#o.httpFront ?? GATEWAY_DEFAULTS.httpFront;
    const pair = tls === undefined ? undefined : await readTlsFiles(tls);
    // With the front, node:http is not listening: it takes (decrypted) connections the front
    // hands it. Without, node's server listens, HTTPS when the certificate is given.
    const server: http.Server =
      pair === undefined || useFront
        ? http.createServer(serverOptions, handle)
        : https.createServer({ ...serverOptions, ...pair }, handle);
    server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      if (!socket.writable) return socket.destroy();
      const body = JSON.stringify({
        error: {
          code: ErrorCodes.GATEWAY_BAD_REQUEST,
          message: `the request could not be parsed as HTTP (${err.code ?? err.message}); check its request line and headers`,
          details: { parser: err.code ?? null },
        },
      });
      socket.end(
        `HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    });
    const front = useFront
      ? new HttpFront({
          fallback: server,
          handle: (req, res) => this.#handle(req, res),
          keepAliveTimeoutMs: serverOptions.keepAliveTimeout,
          requestTimeoutMs: serverOptions.requestTimeout,
          maxBodyBytes: FRONT_MAX_BODY_BYTES,
          ...(pair === undefined ? {} : { tls: pair }),
        })
      : undefined;
    const listening: NetServer = front?.server ?? server;
    await new Promise<void>((resolve, reject) => {
      listening.once('error', reject);
      listening.listen(
        this.#o.port ?? GATEWAY_DEFAULTS.port,
        this.#o.host ?? GATEWAY_DEFAULTS.host,
        () => resolve(),
      );
    });
    this.#server = server;
    this.#front = front;
    if (tls !== undefined) {
      this.#tls = new TlsFilesWatcher(tls, listening as https.Server | TlsServer, this.#logger);
    } else if (!isLoopbackHost(this.#o.host ?? GATEWAY_DEFAULTS.host)) {
      this.#logger.warn(
        { host: this.#o.host },
        'listening on a non-loopback address without TLS: API keys and bodies cross the network in clear; pass --tls-cert and --tls-key (peak tls init makes a dev pair)',
      );
    }
    const a = listening.address() as AddressInfo;
    this.#url = `${tls === undefined ? 'http' : 'https'}://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
    this.#logger.info(
      { url: this.#url, origin, routes: this.#state.routes.size, rev: this.#state.rev },
      'gateway listening',
    );
    return { url: this.#url, origin };
  }

  /** The `/metrics` text: process figures, the gateway's counts, guard's resources. */
  renderMetrics(): string {
    return formatPrometheus([...processMetrics(), ...this.#metrics.families()]);
  }

  // ------------------------------------------------------------------ compile a route

  #compile(spec: GatewayRouteSpec): CompiledRoute {
    const t = spec.target;
    const route: CompiledRoute = {
      spec,
      api: apiOf(spec),
      resource: resourceOf(spec),
      auth: spec.auth ?? 'signature',
      timeoutMs: spec.timeoutMs ?? this.#o.timeoutMs ?? GATEWAY_DEFAULTS.timeoutMs,
      maxBodyBytes: spec.maxBodyBytes ?? this.#o.maxBodyBytes ?? GATEWAY_DEFAULTS.maxBodyBytes,
      ip: new IpFilter(spec.ipAllow, spec.ipDeny),
      cors:
        spec.cors === undefined
          ? undefined
          : {
              origins: new Set(spec.cors.origins),
              any: spec.cors.origins.includes('*'),
              headers: [
                ...(spec.cors.headers ?? []),
                'content-type',
                ...Object.values(SignatureHeaders),
              ].join(', '),
              maxAge: String(spec.cors.maxAgeSec ?? 600),
              credentials: spec.cors.credentials === true,
            },
      guardArgs: spec.guardArgs?.map(compileSource),
      signedHeaders: spec.signedHeaders ?? [],
      spanName: spec.method === '*' ? undefined : `${spec.method} ${spec.path}`,
      rpc: undefined,
      http: undefined,
      mq: undefined,
    };
    if (t.kind === 'rpc') {
      const key = serviceKey(t.service, t.version ?? DEFAULT_VERSION, t.group ?? DEFAULT_GROUP);
      let call = this.#rpcCallers.get(key);
      if (call === undefined) {
        call = this.#rpc.untyped(key, { cluster: 'failfast' });
        this.#rpcCallers.set(key, call);
      }
      const schema = t.input as { properties?: Record<string, { type?: unknown }> } | undefined;
      const coerce = new Map<string, string>();
      for (const [name, prop] of Object.entries(schema?.properties ?? {})) {
        if (typeof prop.type === 'string' && prop.type !== 'string') coerce.set(name, prop.type);
      }
      route.rpc = {
        call,
        method: t.method,
        idempotent: t.idempotent === true,
        validate: schema === undefined ? undefined : this.#validator(schema),
        mapping:
          t.mapping === undefined
            ? undefined
            : Object.entries(t.mapping).map(([field, src]) => [
                field,
                compileSource(src),
                coerce.get(field),
              ]),
        coerce,
        statusField: t.statusField,
        statuses: t.statuses ?? {},
      };
    } else if (t.kind === 'http') {
      route.http = new HttpUpstream(t, this.#registry, this.#logger);
    } else {
      route.mq = {
        topic: t.topic,
        key: t.key === undefined ? undefined : compileSource(t.key),
        tag: t.tag,
      };
    }
    return route;
  }

  /** One compiled check per distinct schema (many routes share a method's schema). */
  #validator(schema: unknown): ValidateFunction | undefined {
    if (this.#ajv === undefined) return undefined;
    const text = JSON.stringify(schema);
    let v = this.#validators.get(text);
    if (v === undefined) {
      v = this.#ajv.compile(schema as object);
      this.#validators.set(text, v);
    }
    return v;
  }

  // ------------------------------------------------------------------ the request path

  /**
   * Answers JSON. The head is one flat list handed to `writeHead` (no `setHeader` per field,
   * no merged header object), with a length rather than chunked encoding, so head and
   * body leave in one write.
   */
  #send(
    res: FrontResponse,
    status: number,
    body: unknown,
    headers?: Record<string, string>,
    traceId = '',
  ): void {
    const text = JSON.stringify(body);
    const head: string[] = [
      'content-type',
      'application/json',
      'content-length',
      String(Buffer.byteLength(text)),
    ];
    if (traceId !== '') head.push('x-peak-trace-id', traceId);
    if (headers !== undefined) for (const k in headers) head.push(k, headers[k]!);
    res.writeHead(status, head);
    res.end(text);
  }

  #refuse(
    res: FrontResponse,
    err: PeakError,
    extra?: Record<string, string>,
    traceId = '',
  ): number {
    const status = err.code === ErrorCodes.GUARD_BLOCKED ? 429 : httpStatusOf(err.code);
    if (status >= 500)
      this.#logger.warn({ code: err.code, message: err.message }, 'gateway call failed');
    this.#send(res, status, { error: err.toJSON() }, extra, traceId);
    return status;
  }

  /** Serves one request; `res` is node's `ServerResponse` or the front's answer (its subset). */
  #handle(req: ServedRequest, res: FrontResponse): void {
    const started = performance.now();
    const outcome: Outcome = { api: '', app: '', traceId: '' };
    this.#serve(req, res, outcome).then(
      (status) => {
        if (outcome.api !== '' && status !== HANDED_OVER)
          this.#metrics.record(outcome.api, outcome.app, status, performance.now() - started);
      },
      (err: unknown) => {
        this.#logger.error({ err }, 'gateway request failed');
        let status = 500;
        if (!res.headersSent) {
          const e = isPeakError(err)
            ? err
            : fail(ErrorCodes.INTERNAL, `internal gateway error: ${errorMessage(err)}`);
          status = this.#refuse(res, e, undefined, outcome.traceId);
        } else res.destroy();
        if (outcome.api !== '')
          this.#metrics.record(outcome.api, outcome.app, status, performance.now() - started);
      },
    );
  }

  async #serve(req: ServedRequest, res: FrontResponse, outcome: Outcome): Promise<number> {
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    const path = q < 0 ? raw : raw.slice(0, q);
    const query = q < 0 ? '' : raw.slice(q + 1);
    const method = req.method ?? 'GET';
    if (path.startsWith('/_peak/')) return this.#builtin(req, res, path);
    const preflight =
      method === 'OPTIONS' ? header(req, 'access-control-request-method') : undefined;
    const found = this.#state.routes.match(preflight ?? method, header(req, 'host') ?? '', path);
    if (!isMatch(found)) {
      return this.#refuse(
        res,
        fail(
          ErrorCodes.GATEWAY_NO_ROUTE,
          found.allowed.length > 0
            ? `no route for ${method} ${path}; this path takes ${found.allowed.join(', ')}`
            : `no route for ${method} ${path} on this gateway`,
          { method, path, allowed: found.allowed },
        ),
      );
    }
    const route = found.route.data;
    outcome.api = route.api;
    const origin = header(req, 'origin');
    let cors: Record<string, string> | undefined;
    if (
      route.cors !== undefined &&
      origin !== undefined &&
      (route.cors.any || route.cors.origins.has(origin))
    ) {
      cors = {
        'access-control-allow-origin': route.cors.any && !route.cors.credentials ? '*' : origin,
        vary: 'origin',
        'access-control-expose-headers': 'x-peak-trace-id',
      };
      if (route.cors.credentials) cors['access-control-allow-credentials'] = 'true';
    }
    if (preflight !== undefined) {
      if (cors === undefined)
        return this.#refuse(
          res,
          fail(
            ErrorCodes.GATEWAY_FORBIDDEN,
            `origin ${origin ?? '(none)'} may not call ${path} from a browser`,
            { origin: origin ?? null },
          ),
        );
      res.writeHead(204, {
        ...cors,
        'access-control-allow-methods':
          found.route.spec.method === '*' ? preflight : found.route.spec.method,
        'access-control-allow-headers': route.cors!.headers,
        'access-control-max-age': route.cors!.maxAge,
      });
      res.end();
      return 204;
    }
    if (route.http !== undefined && !(req instanceof http.IncomingMessage)) {
      // A proxied answer is streamed through node's ServerResponse: node:http serves this
      // request (it reads it again) and the rest of its connection. Nothing has run yet.
      req.handOver();
      return HANDED_OVER;
    }
    const injected = this.#requestHook?.(method, path);
    if (injected !== undefined) {
      try {
        if ((await injected) === 'drop') {
          res.destroy();
          return HANDED_OVER;
        }
      } catch (err) {
        return this.#refuse(
          res,
          isPeakError(err) ? err : fail(ErrorCodes.INTERNAL, errorMessage(err)),
          cors,
        );
      }
    }
    const address = req.socket.remoteAddress;
    if (!route.ip.allows(address))
      return this.#refuse(
        res,
        fail(
          ErrorCodes.GATEWAY_FORBIDDEN,
          `address ${address} may not call route '${route.spec.name}'`,
          { address: address ?? null },
        ),
        cors,
      );

    // 4. the body
    const declared = header(req, 'content-length');
    if (declared !== undefined && Number(declared) > route.maxBodyBytes) {
      res.setHeader('connection', 'close');
      return this.#refuse(
        res,
        fail(
          ErrorCodes.GATEWAY_TOO_LARGE,
          `the body is ${declared} bytes; route '${route.spec.name}' takes at most ${route.maxBodyBytes}`,
          { limit: route.maxBodyBytes, got: Number(declared) },
        ),
        cors,
      );
    }
    const body = await readBody(req, route.maxBodyBytes);
    if (body === undefined) {
      res.setHeader('connection', 'close');
      return this.#refuse(
        res,
        fail(
          ErrorCodes.GATEWAY_TOO_LARGE,
          `the body is over ${route.maxBodyBytes} bytes, the most route '${route.spec.name}' takes`,
          { limit: route.maxBodyBytes },
        ),
        cors,
      );
    }

    // 5-6. the credential and the nonce
    let app = '';
    let nonceClaim: Promise<boolean> | undefined;
    if (route.auth !== 'none') {
      const key =
        route.auth === 'key'
          ? this.#checkApiKey(req)
          : this.#checkSignature(req, method, path, query, body, route);
      app = key.app;
      outcome.app = app;
      const a = this.#state.apps.get(app);
      if (a === undefined || a.disabled === true)
        throw fail(
          ErrorCodes.GATEWAY_FORBIDDEN,
          `app '${app}' is ${a === undefined ? 'unknown' : 'disabled'}`,
          { app },
        );
      if ((a.ipAllow !== undefined || a.ipDeny !== undefined) && !this.#appIp(a).allows(address))
        return this.#refuse(
          res,
          fail(ErrorCodes.GATEWAY_FORBIDDEN, `app '${app}' may not call from ${address}`, {
            app,
            address: address ?? null,
          }),
          cors,
        );
      const sub = this.#state.subscriptions.get(`${app}\n${route.api}`);
      if (sub === undefined || sub.status !== 'approved')
        return this.#refuse(
          res,
          fail(
            ErrorCodes.GATEWAY_FORBIDDEN,
            `app '${app}' is not approved for API '${route.api}'${sub === undefined ? '; request it with a subscription' : ` (subscription ${sub.status})`}`,
            { app, api: route.api, subscription: sub?.status ?? null },
          ),
          cors,
        );
      if (route.auth === 'signature') {
        nonceClaim = this.#nonces.claim(
          key.id,
          header(req, SignatureHeaders.nonce)!,
          this.#o.nonceWindowMs ?? GATEWAY_DEFAULTS.nonceWindowMs,
        );
        // A failed claim is answered below; never leave it unhandled meanwhile.
        nonceClaim.catch(ignore);
      }
    }

    // 7. quota
    if (app !== '') {
      let taken = this.#quota.take(app, route.api);
      if (taken !== true && !('resetAt' in taken)) taken = await taken;
      if (taken !== true) {
        const resetAt = (taken as { resetAt: number }).resetAt;
        const wait = Math.max(1, Math.ceil((resetAt - this.#now()) / 1000));
        return this.#refuse(
          res,
          fail(
            ErrorCodes.GATEWAY_QUOTA_EXCEEDED,
            `app '${app}' has used its quota for API '${route.api}'; it resets at ${new Date(resetAt).toISOString()}`,
            { app, api: route.api, resetAt: new Date(resetAt).toISOString() },
          ),
          { ...cors, 'retry-after': String(wait) },
        );
      }
    }

    // 9. the argument (parsed before guard, so a hot-parameter rule can read body fields)
    let parsed: unknown;
    const ctype = header(req, 'content-type');
    if (
      body.length > 0 &&
      (route.rpc !== undefined || route.guardArgs !== undefined) &&
      (ctype === undefined || ctype.includes('json'))
    ) {
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch (err) {
        if (app !== '') this.#quota.giveBack(app, route.api);
        return this.#refuse(
          res,
          fail(ErrorCodes.GATEWAY_BAD_REQUEST, `the body is not valid JSON: ${errorMessage(err)}`, {
            input: 'body',
          }),
          cors,
        );
      }
    }
    const fields: RequestFields = {
      params: decodeParams(found.params),
      query: query === '' ? undefined : new URLSearchParams(query),
      headers: req.headers,
      body: parsed,
      app,
    };

    // 8. guard
    let entry: ReturnType<Guard['entry']>;
    try {
      entry = this.#guard.entry(route.resource, {
        origin: app,
        type: 'in',
        ...(route.guardArgs === undefined
          ? {}
          : { args: route.guardArgs.map((s) => readField(fields, s)) }),
      });
    } catch (err) {
      if (app !== '') this.#quota.giveBack(app, route.api);
      if (isBlockError(err)) return this.#refuse(res, err, { ...cors, 'retry-after': '1' });
      throw err;
    }

    // 10. the call
    let status = 500;
    let failed: unknown;
    const ctx = this.#context(req, route, app);
    const span: Span = this.#tracer.startSpan(route.spanName ?? `${method} ${route.spec.path}`, {
      kind: 'server',
      context: ctx,
      attributes: {
        'http.method': method,
        'gateway.route': route.spec.name,
        'gateway.api': route.api,
        'gateway.app': app,
      },
    });
    outcome.traceId = ctx.traceId;
    try {
      if (entry.waitMs > 0) await new Promise((r) => setTimeout(r, entry.waitMs));
      let input: unknown;
      if (route.rpc !== undefined) {
        input = this.#rpcInput(route, fields, parsed, body.length > 0);
        if (route.rpc.validate !== undefined && !route.rpc.validate(input)) {
          const e = route.rpc.validate.errors?.[0];
          const where =
            e === undefined || e.instancePath === ''
              ? 'the argument'
              : `field ${e.instancePath.slice(1).replaceAll('/', '.')}`;
          throw fail(
            ErrorCodes.GATEWAY_BAD_REQUEST,
            `${where} ${e?.message ?? 'is invalid'} (the schema of ${route.spec.target.kind === 'rpc' ? `${route.spec.target.service}.${route.spec.target.method}` : 'the target'})`,
            { input: e?.instancePath ?? '', rule: e?.keyword ?? null },
          );
        }
      }
      if (nonceClaim !== undefined) {
        let fresh: boolean;
        try {
          fresh = await nonceClaim;
        } catch (err) {
          throw fail(
            ErrorCodes.GATEWAY_UPSTREAM_UNAVAILABLE,
            `the nonce store could not be reached (${errorMessage(err)}); the request was not run, retry it with a new nonce`,
            {},
          );
        }
        if (!fresh)
          throw fail(
            ErrorCodes.GATEWAY_REPLAYED,
            `nonce ${header(req, SignatureHeaders.nonce)} was used before; sign every request with a new nonce`,
            { nonce: header(req, SignatureHeaders.nonce) },
          );
      }
      status = await runWithContext(span.context, () => {
        if (route.rpc !== undefined) return this.#callRpc(res, route, input, cors, ctx.traceId);
        if (route.http !== undefined) {
          res.setHeader('x-peak-trace-id', ctx.traceId);
          // Only node:http's requests get here: the front hands an HTTP route's request over.
          return this.#callHttp(
            req as IncomingMessage,
            res as ServerResponse,
            route,
            path,
            query,
            body,
            span.context,
          );
        }
        return this.#callMq(res, route, fields, body, cors, ctx.traceId);
      });
      return status;
    } catch (err) {
      failed = err;
      if (
        app !== '' &&
        isPeakError(err) &&
        (err.code === ErrorCodes.GATEWAY_BAD_REQUEST || err.code === ErrorCodes.GATEWAY_REPLAYED)
      )
        this.#quota.giveBack(app, route.api);
      status = this.#refuse(res, this.#targetError(err, route), cors, ctx.traceId);
      return status;
    } finally {
      entry.exit(status >= 500 ? (failed ?? new Error(`HTTP ${status}`)) : undefined);
      span.setAttribute('http.status_code', status);
      if (status >= 500) span.recordError(failed ?? new Error(`HTTP ${status}`));
      span.end();
    }
  }

  #appIp(app: GatewayAppSpec): IpFilter {
    let f = this.#appIps.get(app);
    if (f === undefined) {
      f = new IpFilter(app.ipAllow, app.ipDeny);
      this.#appIps.set(app, f);
    }
    return f;
  }

  #checkApiKey(req: ServedRequest): GatewayKey {
    const given = header(req, SignatureHeaders.apiKey);
    if (given === undefined)
      throw fail(
        ErrorCodes.GATEWAY_UNAUTHENTICATED,
        `this route needs an API key: send ${SignatureHeaders.apiKey}: <key id>.<secret>`,
        { header: SignatureHeaders.apiKey },
      );
    const dot = given.indexOf('.');
    const id = dot < 0 ? given : given.slice(0, dot);
    const key = this.#liveKey(id);
    if (dot < 0 || !constantTimeEqual(given.slice(dot + 1), key.secret))
      throw fail(ErrorCodes.GATEWAY_BAD_CREDENTIAL, `the secret of key ${id} is wrong`, {
        key: id,
      });
    return key;
  }

  #liveKey(id: string): GatewayKey {
    const key = KEY_ID.test(id) ? this.#state.keys.get(id) : undefined;
    if (key === undefined)
      throw fail(
        ErrorCodes.GATEWAY_BAD_CREDENTIAL,
        `unknown key ${JSON.stringify(id.slice(0, 80))}`,
        { key: id.slice(0, 80) },
      );
    if (key.revoked)
      throw fail(
        ErrorCodes.GATEWAY_BAD_CREDENTIAL,
        `key ${id} was revoked; use the app's current key`,
        { key: id },
      );
    if (key.expiresAt !== null && key.expiresAt <= this.#now())
      throw fail(
        ErrorCodes.GATEWAY_BAD_CREDENTIAL,
        `key ${id} expired at ${new Date(key.expiresAt).toISOString()} (rotated); use the app's current key`,
        { key: id },
      );
    return key;
  }

  #checkSignature(
    req: ServedRequest,
    method: string,
    path: string,
    query: string,
    body: Buffer,
    route: CompiledRoute,
  ): GatewayKey {
    const id = header(req, SignatureHeaders.key);
    const signature = header(req, SignatureHeaders.signature);
    const timestamp = header(req, SignatureHeaders.timestamp);
    const nonce = header(req, SignatureHeaders.nonce);
    if (
      id === undefined ||
      signature === undefined ||
      timestamp === undefined ||
      nonce === undefined
    ) {
      const missing = [
        [SignatureHeaders.key, id],
        [SignatureHeaders.signature, signature],
        [SignatureHeaders.timestamp, timestamp],
        [SignatureHeaders.nonce, nonce],
      ]
        .filter(([, v]) => v === undefined)
        .map(([n]) => n as string);
      throw fail(
        ErrorCodes.GATEWAY_UNAUTHENTICATED,
        `this route needs a signed request; missing ${missing.join(', ')} (see signRequest in peakware/gateway)`,
        { missing },
      );
    }
    if (!/^\d{1,16}$/.test(timestamp))
      throw fail(
        ErrorCodes.GATEWAY_BAD_REQUEST,
        `${SignatureHeaders.timestamp} must be epoch milliseconds, got ${JSON.stringify(timestamp.slice(0, 40))}`,
        { input: SignatureHeaders.timestamp },
      );
    if (!NONCE.test(nonce))
      throw fail(
        ErrorCodes.GATEWAY_BAD_REQUEST,
        `${SignatureHeaders.nonce} must be 8-128 of A-Z a-z 0-9 _ -`,
        { input: SignatureHeaders.nonce },
      );
    const key = this.#liveKey(id);
    const skew = this.#o.clockSkewMs ?? GATEWAY_DEFAULTS.clockSkewMs;
    const off = this.#now() - Number(timestamp);
    if (Math.abs(off) > skew)
      throw fail(
        ErrorCodes.GATEWAY_EXPIRED,
        `the signed timestamp is ${Math.round(Math.abs(off) / 1000)} s ${off > 0 ? 'old' : 'in the future'}; requests must be signed within ${skew / 1000} s of the gateway's clock`,
        { skewMs: skew, offMs: off },
      );
    const signedText = header(req, SignatureHeaders.signedHeaders) ?? '';
    const signed = signedText === '' ? [] : signedText.split(';');
    for (const h of route.signedHeaders) {
      if (!signed.includes(h))
        throw fail(
          ErrorCodes.GATEWAY_BAD_CREDENTIAL,
          `route '${route.spec.name}' needs header ${h} signed (list it in ${SignatureHeaders.signedHeaders})`,
          { header: h },
        );
    }
    if (!SIGNATURE.test(signature))
      throw fail(
        ErrorCodes.GATEWAY_BAD_CREDENTIAL,
        `${SignatureHeaders.signature} is not a base64url HMAC-SHA256`,
        { key: id },
      );
    const want = signCanonical(key.secret, {
      method,
      path,
      query,
      headers: req.headers,
      signedHeaders: signed,
      bodySha256: body.length === 0 ? EMPTY_BODY_SHA256 : sha256Hex(body),
      timestamp,
      nonce,
    });
    if (!constantTimeEqual(signature, want))
      throw fail(
        ErrorCodes.GATEWAY_BAD_CREDENTIAL,
        `the signature does not match the request (key ${id}); sign method, path, sorted query, the signed headers, the body's SHA-256, timestamp and nonce as peakware/gateway's signRequest does`,
        { key: id },
      );
    return key;
  }

  #context(req: ServedRequest, route: CompiledRoute, app: string): CallContext {
    const incoming = decodeContext(req.headers, this.#now());
    const init: ContextInit = { timeoutMs: route.timeoutMs };
    if (app !== '') init.callerApp = app;
    if (route.spec.tags !== undefined) init.tags = route.spec.tags;
    // A public route's caller is anonymous: its stress flag and tags are not trusted.
    const base =
      route.auth === 'none'
        ? createContext({
            traceId: incoming.traceId,
            spanId: incoming.spanId,
            sampled: incoming.sampled,
            baggage: { ...incoming.baggage },
            ...(incoming.deadline === undefined ? {} : { deadline: incoming.deadline }),
          })
        : incoming;
    const ctx = childContext(base, init);
    if (app === '' && ctx.callerApp !== undefined)
      return childContext(
        createContext({
          traceId: ctx.traceId,
          spanId: ctx.spanId,
          sampled: ctx.sampled,
          ...(ctx.deadline === undefined ? {} : { deadline: ctx.deadline }),
          tags: { ...ctx.tags },
          baggage: { ...ctx.baggage },
        }),
      );
    return ctx;
  }

  #rpcInput(route: CompiledRoute, f: RequestFields, parsed: unknown, hasBody: boolean): unknown {
    const rpc = route.rpc!;
    if (rpc.mapping !== undefined) {
      const input: Record<string, unknown> = {};
      for (const [field, src, type] of rpc.mapping) {
        const v = readField(f, src);
        if (v !== undefined)
          input[field] = typeof v === 'string' && type !== undefined ? coerce(v, type) : v;
      }
      return input;
    }
    const params = Object.keys(f.params);
    if (hasBody) {
      if (
        params.length === 0 ||
        parsed === null ||
        typeof parsed !== 'object' ||
        Array.isArray(parsed)
      )
        return parsed;
      const input = { ...(parsed as Record<string, unknown>) };
      for (const p of params) input[p] = coerce(f.params[p]!, rpc.coerce.get(p));
      return input;
    }
    const input: Record<string, unknown> = {};
    if (f.query !== undefined)
      for (const [k, v] of f.query) input[k] = coerce(v, rpc.coerce.get(k));
    for (const p of params) input[p] = coerce(f.params[p]!, rpc.coerce.get(p));
    return input;
  }

  async #callRpc(
    res: FrontResponse,
    route: CompiledRoute,
    input: unknown,
    cors: Record<string, string> | undefined,
    traceId: string,
  ): Promise<number> {
    const rpc = route.rpc!;
    const result = await rpc.call(rpc.method, input, {
      timeoutMs: Math.max(1, remainingTime()),
      idempotent: rpc.idempotent,
    });
    let status = 200;
    if (rpc.statusField !== undefined && result !== null && typeof result === 'object') {
      const v = (result as Record<string, unknown>)[rpc.statusField];
      const mapped = rpc.statuses[String(v)];
      if (mapped !== undefined) status = mapped;
    }
    this.#send(res, status, result === undefined ? null : result, cors, traceId);
    return status;
  }

  #callHttp(
    req: IncomingMessage,
    res: ServerResponse,
    route: CompiledRoute,
    path: string,
    query: string,
    body: Buffer,
    ctx: CallContext,
  ): Promise<number> {
    const up = route.http!;
    const instance = up.pick();
    if (instance === undefined)
      throw fail(
        ErrorCodes.GATEWAY_UPSTREAM_UNAVAILABLE,
        `no healthy upstream for route '${route.spec.name}' (${up.instances().length} known)`,
        { route: route.spec.name, known: up.instances().length },
      );
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers))
      if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v;
    Object.assign(headers, encodeContext(ctx));
    const forwarded = header(req, 'x-forwarded-for');
    headers['x-forwarded-for'] =
      forwarded === undefined
        ? (req.socket.remoteAddress ?? '')
        : `${forwarded}, ${req.socket.remoteAddress ?? ''}`;
    headers['x-forwarded-host'] = header(req, 'host') ?? '';
    headers['content-length'] = String(body.length);
    const left = Math.max(1, remainingTime(ctx));
    return new Promise<number>((resolve, reject) => {
      let upstream: http.ClientRequest;
      try {
        upstream = http.request({
          host: instance.host,
          port: instance.port,
          method: req.method,
          path: up.rewrite(path) + (query === '' ? '' : `?${query}`),
          headers,
          agent: up.agent,
        });
      } catch (err) {
        reject(
          fail(
            ErrorCodes.GATEWAY_BAD_REQUEST,
            `the request cannot be forwarded: ${errorMessage(err)}`,
            {},
          ),
        );
        return;
      }
      const timer = setTimeout(
        () =>
          upstream.destroy(
            fail(
              ErrorCodes.GATEWAY_TIMEOUT,
              `upstream ${instance.host}:${instance.port} of route '${route.spec.name}' did not answer within ${left} ms`,
              { route: route.spec.name, timeoutMs: left },
            ),
          ),
        left,
      );
      upstream.on('response', (answer) => {
        const out: Record<string, string | string[]> = {};
        for (const [k, v] of Object.entries(answer.headers))
          if (
            v !== undefined &&
            k !== 'connection' &&
            k !== 'keep-alive' &&
            k !== 'transfer-encoding'
          )
            out[k] = v;
        res.writeHead(answer.statusCode ?? 502, out);
        answer.pipe(res);
        answer.on('end', () => {
          clearTimeout(timer);
          resolve(answer.statusCode ?? 502);
        });
        answer.on('error', (err) => {
          clearTimeout(timer);
          res.destroy(err);
          resolve(502);
        });
      });
      upstream.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (isPeakError(err)) return reject(err);
        if (err.code === 'ECONNREFUSED' || err.code === 'ECONNRESET' || err.code === 'EHOSTUNREACH')
          up.failed(instance);
        reject(
          fail(
            ErrorCodes.GATEWAY_UPSTREAM_UNAVAILABLE,
            `upstream ${instance.host}:${instance.port} of route '${route.spec.name}' failed: ${err.code ?? err.message}`,
            { route: route.spec.name, cause: err.code ?? err.message },
          ),
        );
      });
      upstream.end(body);
    });
  }

  async #callMq(
    res: FrontResponse,
    route: CompiledRoute,
    f: RequestFields,
    body: Buffer,
    cors: Record<string, string> | undefined,
    traceId: string,
  ): Promise<number> {
    const mq = route.mq!;
    this.#producer ??= new Producer({ servers: this.#o.servers, token: this.#o.token });
    const key = mq.key === undefined ? undefined : readField(f, mq.key);
    const sent = await this.#producer.send(mq.topic, {
      body,
      ...(mq.tag === undefined ? {} : { tag: mq.tag }),
      ...(key === undefined || key === null ? {} : { keys: [String(key)] }),
    });
    this.#send(res, 202, { id: sent.id, topic: sent.topic }, cors, traceId);
    return 202;
  }

  #targetError(err: unknown, route: CompiledRoute): PeakError {
    if (!isPeakError(err))
      return fail(
        ErrorCodes.GATEWAY_UPSTREAM_UNAVAILABLE,
        `the target of route '${route.spec.name}' failed: ${errorMessage(err)}`,
        { route: route.spec.name },
      );
    switch (err.code) {
      case ErrorCodes.RPC_TIMEOUT:
      case ErrorCodes.DEADLINE_EXCEEDED:
        return fail(
          ErrorCodes.GATEWAY_TIMEOUT,
          `the target of route '${route.spec.name}' did not answer within the deadline (${route.timeoutMs} ms, or the caller's shorter peak-timeout): ${err.message}`,
          { route: route.spec.name, timeoutMs: route.timeoutMs },
        );
      case ErrorCodes.RPC_NO_PROVIDER:
      case ErrorCodes.RPC_UNAVAILABLE:
      case ErrorCodes.RPC_CONNECTION_LOST:
      case ErrorCodes.RPC_SHUTTING_DOWN:
      case ErrorCodes.SERVER_UNREACHABLE:
        return fail(
          ErrorCodes.GATEWAY_UPSTREAM_UNAVAILABLE,
          `the target of route '${route.spec.name}' is unavailable: ${err.message}`,
          { route: route.spec.name, cause: err.code },
        );
      default:
        return err;
    }
  }

  // ------------------------------------------------------------------ built-ins

  #builtin(req: ServedRequest, res: FrontResponse, path: string): number {
    if (path === '/_peak/health') {
      this.#send(res, 200, {
        status: 'ok',
        routes: this.#state.routes.size,
        rev: this.#state.rev,
        origin: this.#sync.origin,
        lastApplyMs: Math.round(this.#sync.lastApplyMs * 1000) / 1000,
      });
      return 200;
    }
    if (path === '/_peak/openapi.json') {
      // The document of what the calling app may call: authenticated with its API key.
      let app: string | undefined;
      try {
        app =
          header(req, SignatureHeaders.apiKey) === undefined
            ? undefined
            : this.#checkApiKey(req).app;
      } catch (err) {
        return this.#refuse(res, err as PeakError);
      }
      if (app === undefined)
        return this.#refuse(
          res,
          fail(
            ErrorCodes.GATEWAY_UNAUTHENTICATED,
            `send ${SignatureHeaders.apiKey}: <key id>.<secret> to read your OpenAPI document`,
            {},
          ),
        );
      this.#send(res, 200, this.openApi(app));
      return 200;
    }
    if (path === '/_peak/metrics') {
      res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE });
      res.end(this.renderMetrics());
      return 200;
    }
    return this.#refuse(
      res,
      fail(
        ErrorCodes.GATEWAY_NO_ROUTE,
        `no built-in ${path}; built-ins are /_peak/health, /_peak/openapi.json, /_peak/metrics`,
        { path },
      ),
    );
  }

  /** The OpenAPI 3.1 document of the routes `app` is approved for (every route when undefined). */
  openApi(app?: string): unknown {
    const routes = [...this.#state.routes.routes()].map((r) => r.spec);
    const approved =
      app === undefined
        ? undefined
        : new Set(
            [...this.#state.subscriptions.values()]
              .filter((s) => s.app === app && s.status === 'approved')
              .map((s) => s.api),
          );
    return gatewayOpenApi(routes, {
      ...(approved === undefined ? {} : { apis: approved }),
      ...(app === undefined ? {} : { app }),
      server: this.#url,
    });
  }

  /** Stops taking requests, lets those in flight answer, gives unused quota back, closes everything. */
  async close(): Promise<void> {
    this.#tls?.close();
    if (this.#front !== undefined) await this.#front.close();
    else if (this.#server !== undefined) {
      const server = this.#server;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
    }
    this.#sync.close();
    await this.#quota.close();
    for (const r of this.#state.routes.routes()) r.data.http?.close();
    await this.#rpc.close();
    await this.#config.close();
    await this.#nonces?.close();
    await this.#producer?.close();
    this.#guard.close();
    await this.#pusher?.close();
    await this.#spans?.shutdown();
    await this.#registry.close();
  }
}

function coerce(v: string, type: string | undefined): unknown {
  if (type === 'number' || type === 'integer') {
    const n = Number(v);
    return v.trim() === '' || Number.isNaN(n) ? v : n;
  }
  if (type === 'boolean') return v === 'true' ? true : v === 'false' ? false : v;
  return v;
}

function decodeParams(raw: Record<string, string>): Record<string, string> {
  for (const k in raw) {
    const v = raw[k]!;
    if (v.includes('%')) {
      try {
        raw[k] = decodeURIComponent(v);
      } catch {
        throw fail(
          ErrorCodes.GATEWAY_BAD_REQUEST,
          `path parameter ${k} is not valid percent-encoding: ${JSON.stringify(v.slice(0, 80))}`,
          { input: k },
        );
      }
    }
  }
  return raw;
}

/** The whole body, or undefined when it passes `limit` (the rest is not read). */
function readBody(req: ServedRequest, limit: number): Promise<Buffer | undefined> {
  if (!(req instanceof http.IncomingMessage))
    return Promise.resolve(req.body.length > limit ? undefined : req.body);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.pause();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
    req.on('error', reject);
  });
}
