/**
 * The one HTTP client of the control plane. Every SDK client (broker, registry, config,
 * guard's token client and reporter, telemetry's exporter and pusher), the admin API
 * (`peakware/admin`), the `peak` CLI and the shop talk to `peak server` through it, so
 * failover, auth, timeouts, retries and error decoding are written once:
 *
 * - **Servers and failover** ({@link ServerList}): a list of nodes; the client sticks to
 *   one while it answers, moves on on a network error or a 5xx, and skips a failed node
 *   for `failoverCooldownMs`.
 * - **Auth**: a bearer token (an app credential, or an operator token), or a function
 *   returning one per request (credentials that rotate plug in there); by default the
 *   `PEAK_CREDENTIAL` environment variable, so a service started with its app's credential
 *   in the environment needs no code for it.
 * - **Timeouts** per try (`timeoutMs`), and an `AbortSignal` per call.
 * - **Retries** with exponential backoff and jitter ({@link backoffDelay}) on network
 *   errors and 5xx, for idempotent calls only (GET, HEAD, PUT, DELETE, OPTIONS, or a call
 *   marked `idempotent`). A non-idempotent POST or PATCH is tried again only when the
 *   caller says so (`retry: true`: it accepts a duplicate) or when the request provably
 *   never reached a server (connection refused, host not found). A call to a node this
 *   call has not tried yet goes at once; a node tried already waits the backoff first.
 * - **Errors** are PeakErrors: the server's `{ error: { code, message, details } }` body
 *   becomes a PeakError with that code (details carry the HTTP `status`); a node that
 *   cannot be reached becomes PEAK_SERVER_UNREACHABLE naming the node and the socket code.
 * - **Streams**: Server-Sent Events ({@link ControlPlaneClient.events}, and
 *   {@link ControlPlaneClient.subscribe} that reconnects with backoff across the nodes) and
 *   NDJSON lines ({@link ControlPlaneClient.lines}).
 *
 * The transport is `node:http` with keep-alive (core/http-client.ts), not `fetch`: on the
 * order path fetch cost 3-5x the client CPU per call.
 */
import { type BackoffOptions, backoffDelay, type Sleep, sleep, sleepUnref } from './backoff.js';
import { type ErrorCode, ErrorCodes, errorMessage, PeakError } from './errors.js';
import { type HttpResponse, type HttpStream, httpOpen, httpRequest } from './http-client.js';
import { readNdjsonLines } from './ndjson-reader.js';
import { ServerList } from './server-list.js';
import { readSseEvents, type SseEvent } from './sse-reader.js';

/** A bearer token, or a function that returns the one to send now (undefined: none). */
export type TokenSource = string | (() => string | undefined | Promise<string | undefined>);

/** Query parameters; arrays repeat the key, `undefined` leaves it out. */
export type QueryParams = Record<string, string | number | boolean | readonly string[] | undefined>;

/**
 * The control-plane options every SDK client takes (producer, consumer, registry, config,
 * guard, telemetry): `servers`, one URL or several, and the credential. Clients that took a
 * single `server` before 0.1 still accept it (deprecated).
 */
export interface ControlPlaneOptions {
  /** The control-plane node URL, or several (failover in order), e.g. `http://127.0.0.1:7420`. */
  servers?: string | readonly string[];
  /** @deprecated Use `servers` (`{ servers: url }`, same URL); still accepted, to be removed before 1.0. */
  server?: string;
  /**
   * The app credential (or an operator token), or a function returning one per request.
   * Default: the `PEAK_CREDENTIAL` environment variable.
   */
  token?: TokenSource;
}

/** The nodes a {@link ControlPlaneOptions} names; throws PEAK_USAGE naming `owner` when none is given. */
export function serversOf(options: ControlPlaneOptions, owner: string): string | readonly string[] {
  const servers = options.servers ?? options.server;
  if (servers === undefined) {
    throw new PeakError(
      ErrorCodes.USAGE,
      `${owner}: give the control plane as servers (a URL or a list), e.g. { servers: 'http://127.0.0.1:7420' }`,
      { details: { input: 'servers' } },
    );
  }
  return servers;
}

/** Options of a {@link ControlPlaneClient}; the defaults are {@link CONTROL_PLANE_CLIENT_DEFAULTS}. */
export interface ControlPlaneClientOptions {
  /** The control-plane node URL, or several (failover in order), e.g. `http://127.0.0.1:7420`. */
  servers: string | readonly string[];
  /**
   * Sent as `authorization: Bearer <token>`: an app credential or operator token, or a
   * function returning one. Default: the `PEAK_CREDENTIAL` environment variable, if set.
   */
  token?: TokenSource;
  /** Headers sent with every request (e.g. a topic's consume secret). */
  headers?: Record<string, string>;
  /**
   * CA certificates (PEM) to trust for `https:` nodes besides the system's roots (a dev CA
   * from `peak tls init`). SDK clients that take no `ca` trust what Node trusts: the system
   * roots plus `NODE_EXTRA_CA_CERTS`.
   */
  ca?: string | Buffer;
  /** Longest one try may take, ms. */
  timeoutMs?: number;
  /** Tries after the first, for the calls that may be retried. */
  retries?: number;
  /** How the wait between tries grows. */
  backoff?: BackoffOptions;
  /** How long a node that failed is skipped, ms. */
  failoverCooldownMs?: number;
  /** Waits between tries; tests pass one that records and resolves at once. */
  sleep?: Sleep;
  /** The clock of the failover bookkeeping, ms; tests pass their own. */
  now?: () => number;
  /** How messages name the server: "cannot reach <serverName> at ...". */
  serverName?: string;
  /** Appended to PEAK_SERVER_UNREACHABLE messages: what the user can do about it. */
  unreachableHint?: string;
}

/** The defaults of {@link ControlPlaneClientOptions}, in one place. */
export const CONTROL_PLANE_CLIENT_DEFAULTS = {
  timeoutMs: 10_000,
  retries: 2,
  backoff: { initialMs: 100, maxMs: 2000 },
  failoverCooldownMs: 5000,
  serverName: 'the control plane',
  /** Silence after which a stream (SSE or NDJSON) is treated as dead, ms. */
  streamIdleMs: 45_000,
} as const;

/** Per-call options of {@link ControlPlaneClient.request}. */
export interface RequestOptions {
  /** Query parameters appended to the path. */
  query?: QueryParams;
  /** The JSON body. */
  body?: unknown;
  /** Headers of this call (over the client's). */
  headers?: Record<string, string>;
  /** Longest one try may take, ms (default: the client's `timeoutMs`). */
  timeoutMs?: number;
  /** Aborts the call; it rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * Whether sending it twice is harmless. Default: true for GET, HEAD, PUT, DELETE and
   * OPTIONS, false for POST and PATCH.
   */
  idempotent?: boolean;
  /**
   * `true`: retry network errors and 5xx even when not idempotent (the caller accepts a
   * duplicate, e.g. at-least-once sends). `false`: one try only, not even failover.
   * Default: retry when idempotent, else only failures that never reached a server.
   */
  retry?: boolean;
  /** Statuses besides 2xx whose body is returned instead of thrown (e.g. 503 of `/ready`). */
  acceptStatus?: readonly number[];
}

/** Options of one stream ({@link ControlPlaneClient.events}, {@link ControlPlaneClient.lines}). */
export interface StreamOptions {
  query?: QueryParams;
  /** The JSON body (streams opened with POST). */
  body?: unknown;
  headers?: Record<string, string>;
  /** Ends the stream; the call then resolves (events) or returns (lines). */
  signal?: AbortSignal;
  /** Silence after which the stream is treated as dead, ms. Default 45 000. */
  idleMs?: number;
}

/** What {@link ControlPlaneClient.subscribe} takes. */
export interface SubscribeOptions {
  /** The query of each connection, read again at every (re)connect. */
  query?: () => QueryParams;
  /** Reconnect delays; reset after a connection that delivered an event. Default 200 ms doubling to 5 s. */
  backoff?: BackoffOptions;
  /** Silence after which a stream is treated as dead, ms. Default 45 000. */
  idleMs?: number;
  /** Waits between reconnects (default: an unreferenced timer, never holding the process). */
  sleep?: Sleep;
  /** Told of each failed or ended connection (for a debug log). */
  onError?: (err: unknown, server: string) => void;
  /**
   * Told before each connection is opened: every event until the next call comes from that
   * connection (a registry client treats the first list of a new connection with care).
   */
  onConnect?: (server: string) => void;
}

/** A running subscription of {@link ControlPlaneClient.subscribe}. */
export interface EventSubscription {
  /** Drops the connection and opens a new one at once (with a fresh query), no backoff. */
  reconnect(): void;
  /** Closes the stream and stops reconnecting. */
  close(): void;
  /** Settles when the subscription has stopped after {@link close}. */
  readonly done: Promise<void>;
}

/** The reconnect delays of a subscription unless it names its own. */
const SUBSCRIBE_BACKOFF: BackoffOptions = { initialMs: 200, maxMs: 5000 };

const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);

/** Socket codes that prove a request never reached a server: safe to send anywhere again. */
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'EADDRNOTAVAIL',
]);

/** The socket code of a transport failure (`cause.code` of core/http-client's errors). */
function socketCode(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown } }).cause;
  return typeof cause?.code === 'string' ? cause.code : errorMessage(err);
}

/** The credential of the `PEAK_CREDENTIAL` environment variable, if set. */
export function envCredential(): string | undefined {
  const value = process.env.PEAK_CREDENTIAL;
  return value === undefined || value === '' ? undefined : value;
}

/** The query string of `query` (with its `?`), or ''. */
export function queryString(query: QueryParams | undefined): string {
  if (query === undefined) return '';
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const item of v) q.append(k, item);
    else q.set(k, String(v));
  }
  const s = q.toString();
  return s.length === 0 ? '' : `?${s}`;
}

/**
 * The PeakError an answer of `status` with body `text` stands for: the server's
 * `{ error: { code, message, details } }`, else PEAK_INTERNAL naming the call.
 */
export function errorFromResponse(
  status: number,
  text: string,
  method: string,
  path: string,
): PeakError {
  let body: unknown;
  try {
    body = text.length === 0 ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  const e = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } })?.error;
  const details =
    typeof e?.details === 'object' && e.details !== null && !Array.isArray(e.details)
      ? (e.details as Record<string, unknown>)
      : {};
  if (typeof e?.code === 'string') {
    return new PeakError(
      e.code as ErrorCode,
      typeof e.message === 'string' ? e.message : `${method} ${path} answered HTTP ${status}`,
      { details: { ...details, status } },
    );
  }
  return new PeakError(ErrorCodes.INTERNAL, `${method} ${path} answered HTTP ${status}`, {
    details: { status, ...(text.length > 0 ? { body: text.slice(0, 300) } : {}) },
  });
}

/** JSON over HTTP to the control plane, with failover, auth, retries and streams. */
export class ControlPlaneClient {
  readonly #servers: ServerList;
  readonly #token: TokenSource | undefined;
  readonly #headers: Record<string, string>;
  readonly #ca: string | Buffer | undefined;
  readonly #timeoutMs: number;
  readonly #retries: number;
  readonly #backoff: BackoffOptions;
  readonly #sleep: Sleep;
  readonly #serverName: string;
  readonly #hint: string | undefined;

  constructor(options: ControlPlaneClientOptions) {
    const d = CONTROL_PLANE_CLIENT_DEFAULTS;
    this.#servers = new ServerList(options.servers, {
      cooldownMs: options.failoverCooldownMs ?? d.failoverCooldownMs,
      ...(options.now === undefined ? {} : { now: options.now }),
    });
    this.#token = options.token ?? envCredential();
    this.#headers = { ...(options.headers ?? {}) };
    this.#ca = options.ca;
    this.#timeoutMs = options.timeoutMs ?? d.timeoutMs;
    this.#retries = Math.max(0, options.retries ?? d.retries);
    this.#backoff = options.backoff ?? d.backoff;
    this.#sleep = options.sleep ?? sleep;
    this.#serverName = options.serverName ?? d.serverName;
    this.#hint = options.unreachableHint;
  }

  /** Every node, in the order given. */
  get servers(): readonly string[] {
    return this.#servers.all;
  }

  /** The CA certificates trusted for `https:` nodes besides the system's roots (options.ca). */
  get ca(): string | Buffer | undefined {
    return this.#ca;
  }

  /** The node in use now (the one that answered last). */
  get server(): string {
    return this.#servers.current;
  }

  /** The URL of `path` (with `query`) on the node in use now, for logs and messages. */
  url(path: string, query?: QueryParams): string {
    return `${this.#servers.current}${path}${queryString(query)}`;
  }

  /** `GET path`. */
  get<T>(path: string, options?: RequestOptions): Promise<T> {
    return this.request<T>('GET', path, options);
  }

  /** `POST path` with `body` (not retried after it may have arrived unless `retry: true`). */
  post<T>(path: string, body?: unknown, options?: RequestOptions): Promise<T> {
    return this.request<T>('POST', path, { ...options, body });
  }

  /** `PUT path` with `body`. */
  put<T>(path: string, body?: unknown, options?: RequestOptions): Promise<T> {
    return this.request<T>('PUT', path, { ...options, body });
  }

  /** `PATCH path` with `body`. */
  patch<T>(path: string, body?: unknown, options?: RequestOptions): Promise<T> {
    return this.request<T>('PATCH', path, { ...options, body });
  }

  /** `DELETE path`. */
  delete<T>(path: string, options?: RequestOptions): Promise<T> {
    return this.request<T>('DELETE', path, options);
  }

  async #headersFor(
    accept: string,
    body: boolean,
    extra: Record<string, string> | undefined,
  ): Promise<Record<string, string>> {
    const token = typeof this.#token === 'function' ? await this.#token() : this.#token;
    return {
      accept,
      ...(body ? { 'content-type': 'application/json' } : {}),
      ...(token === undefined || token.length === 0 ? {} : { authorization: `Bearer ${token}` }),
      ...this.#headers,
      ...(extra ?? {}),
    };
  }

  #unreachable(err: unknown, tried: readonly string[]): PeakError {
    const code = socketCode(err);
    return new PeakError(
      ErrorCodes.SERVER_UNREACHABLE,
      `cannot reach ${this.#serverName} at ${tried.join(', ')} (${code})${this.#hint === undefined ? '' : `; ${this.#hint}`}`,
      { cause: err, details: { servers: [...tried], code } },
    );
  }

  /**
   * Sends one call and resolves with its JSON answer (undefined when empty). Throws a
   * PeakError: the server's error, or PEAK_SERVER_UNREACHABLE; rejects with the signal's
   * reason when `signal` aborts.
   */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const idempotent = options.idempotent ?? IDEMPOTENT_METHODS.has(method);
    const retryAll = options.retry === true || (options.retry === undefined && idempotent);
    const attempts = options.retry === false ? 1 : this.#retries + 1;
    const hasBody = options.body !== undefined;
    const payload = hasBody ? JSON.stringify(options.body) : undefined;
    const route = `${path}${queryString(options.query)}`;
    const tried: string[] = [];
    let waits = 0;
    let last: unknown;
    for (let attempt = 0; attempt < attempts; attempt++) {
      const server = this.#servers.pick(new Set(tried));
      if (tried.includes(server)) {
        // Failover to an untried node goes at once; the same node again waits first.
        await this.#sleep(backoffDelay(waits++, this.#backoff), options.signal);
      } else {
        tried.push(server);
      }
      let response: HttpResponse;
      try {
        response = await httpRequest(`${server}${route}`, {
          method,
          headers: await this.#headersFor('application/json', hasBody, options.headers),
          ...(payload === undefined ? {} : { body: payload }),
          timeoutMs: options.timeoutMs ?? this.#timeoutMs,
          ...(options.signal === undefined ? {} : { signal: options.signal }),
          ...(this.#ca === undefined ? {} : { ca: this.#ca }),
        });
      } catch (err) {
        if (options.signal?.aborted === true) throw options.signal.reason;
        this.#servers.failed(server);
        last = this.#unreachable(err, tried);
        if (!retryAll && !NOT_SENT_CODES.has(socketCode(err))) break;
        continue;
      }
      if (response.status >= 500 && !options.acceptStatus?.includes(response.status)) {
        this.#servers.failed(server);
        last = errorFromResponse(response.status, response.text, method, path);
        if (!retryAll) break;
        continue;
      }
      this.#servers.succeeded(server);
      if (!response.ok && !options.acceptStatus?.includes(response.status)) {
        throw errorFromResponse(response.status, response.text, method, path);
      }
      try {
        return (response.text.length === 0 ? undefined : JSON.parse(response.text)) as T;
      } catch {
        return response.text as T;
      }
    }
    throw last;
  }

  /** Opens a stream on the node to use; a refusal before it starts throws a PeakError. */
  async #open(method: string, path: string, accept: string, o: StreamOptions) {
    const server = this.#servers.pick();
    const hasBody = o.body !== undefined;
    let stream: HttpStream;
    try {
      stream = await httpOpen(`${server}${path}${queryString(o.query)}`, {
        method,
        headers: await this.#headersFor(accept, hasBody, o.headers),
        ...(hasBody ? { body: JSON.stringify(o.body) } : {}),
        idleMs: o.idleMs ?? CONTROL_PLANE_CLIENT_DEFAULTS.streamIdleMs,
        ...(o.signal === undefined ? {} : { signal: o.signal }),
        ...(this.#ca === undefined ? {} : { ca: this.#ca }),
      });
    } catch (err) {
      if (o.signal?.aborted === true) throw o.signal.reason;
      this.#servers.failed(server);
      throw this.#unreachable(err, [server]);
    }
    if (!stream.ok) {
      const text = await stream.text().catch(() => '');
      if (stream.status >= 500) this.#servers.failed(server);
      else this.#servers.succeeded(server);
      throw errorFromResponse(stream.status, text, method, path);
    }
    this.#servers.succeeded(server);
    return { server, stream };
  }

  /**
   * Opens one Server-Sent-Events stream (`GET path`) and calls `onEvent` per event.
   * Resolves when the server ends the stream or `signal` aborts; rejects on a refusal, a
   * broken or silent connection, or a throw of `onEvent`. The node is marked failed
   * whenever the stream ends other than by `signal`, so the next one goes elsewhere.
   */
  async events(
    path: string,
    onEvent: (event: SseEvent) => void,
    options: StreamOptions = {},
  ): Promise<void> {
    const { server, stream } = await this.#open('GET', path, 'text/event-stream', options);
    try {
      await readSseEvents(stream.body, onEvent);
    } catch (err) {
      if (options.signal?.aborted === true) return;
      this.#servers.failed(server);
      throw err;
    } finally {
      stream.close();
    }
    if (options.signal?.aborted !== true) this.#servers.failed(server);
  }

  /**
   * Holds a Server-Sent-Events stream open until {@link EventSubscription.close}: when a
   * connection fails or ends it reconnects (to the next node, after a backoff that starts
   * over once a connection delivered an event). `path` and `options.query` are read at
   * every connect.
   */
  subscribe(
    path: string,
    onEvent: (event: SseEvent) => void,
    options: SubscribeOptions = {},
  ): EventSubscription {
    const closed = new AbortController();
    let connection: AbortController | undefined;
    let restart = false;
    const wait = options.sleep ?? sleepUnref;
    const backoff = options.backoff ?? SUBSCRIBE_BACKOFF;
    const run = async () => {
      let failures = 0;
      while (!closed.signal.aborted) {
        const abort = new AbortController();
        connection = abort;
        restart = false;
        let received = false;
        const server = this.#servers.pick();
        options.onConnect?.(server);
        try {
          await this.events(
            path,
            (e) => {
              received = true;
              onEvent(e);
            },
            {
              ...(options.query === undefined ? {} : { query: options.query() }),
              signal: abort.signal,
              ...(options.idleMs === undefined ? {} : { idleMs: options.idleMs }),
            },
          );
          if (!abort.signal.aborted) options.onError?.(new Error('the stream ended'), server);
        } catch (err) {
          if (!abort.signal.aborted) options.onError?.(err, server);
        }
        if (closed.signal.aborted) return;
        if (restart) continue;
        failures = received ? 0 : failures + 1;
        try {
          await wait(backoffDelay(Math.max(0, failures - 1), backoff), closed.signal);
        } catch {
          return;
        }
      }
    };
    const done = run();
    return {
      reconnect: () => {
        restart = true;
        connection?.abort();
      },
      close: () => {
        closed.abort();
        connection?.abort();
      },
      done,
    };
  }

  /**
   * Opens a streamed answer (NDJSON) and yields its non-empty lines. A refusal before the
   * stream starts throws the server's PeakError; the generator returns when the server
   * ends the stream and throws when it breaks (or `signal` aborts).
   */
  async *lines(
    method: string,
    path: string,
    options: StreamOptions = {},
  ): AsyncGenerator<string, void, undefined> {
    const { server, stream } = await this.#open(method, path, 'application/x-ndjson', options);
    try {
      yield* readNdjsonLines(stream.body);
    } catch (err) {
      if (options.signal?.aborted !== true) this.#servers.failed(server);
      throw err;
    } finally {
      stream.close();
    }
  }
}
