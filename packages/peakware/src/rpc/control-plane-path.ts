/**
 * The SDK's side of the control plane's RPC port (`GET /api/v1/rpc`; the server half is the
 * host's control-plane-rpc.ts): one persistent connection to the node the client's HTTP
 * client is using, carrying that client's hot calls (the broker's send, receive, ack and
 * nack; the coordinator's submits) as RPC frames, each with the client's credential.
 *
 * A node serving HTTPS serves TLS on the port from the same certificate; the client checks
 * it as HTTPS does (the CA it was given, the name it reached the node by) and never goes
 * from HTTPS to a plaintext port.
 *
 * HTTP stays the way that always works. A call goes over HTTP instead when the node has no
 * RPC port (turned off, an older node, a plaintext port behind HTTPS), when the port is on
 * loopback and the node was reached by another name (a client on another machine), or when
 * the connection is not usable now (connecting failed, reconnecting, the node said GOAWAY).
 * A connection that fails is dropped and looked up again a second later, through whichever
 * node the HTTP client then uses, so a node that died is left for another as HTTP's
 * failover leaves it.
 */
import { isIP } from 'node:net';
import type { ControlPlaneClient, TokenSource } from '../core/control-plane-client.js';
import { ErrorCodes, httpStatusOf, isPeakError } from '../core/errors.js';
import { RpcConnection } from './rpc-connection.js';
import { TlsTransport } from './transport.js';

/** The route that tells a client where the node it reached has its RPC port. */
export const RPC_ENDPOINT_ROUTE = '/api/v1/rpc';

/** What {@link RPC_ENDPOINT_ROUTE} answers. */
export type RpcEndpointAnswer =
  | { available: true; host: string; port: number; tls?: boolean }
  | { available: false; reason: string };

/** What {@link ControlPlaneRpcPath.call} answers when the call should go over HTTP instead. */
export const USE_HTTP: unique symbol = Symbol('use HTTP');

/** How long a node without a usable port is asked again, ms. */
const RECHECK_MS = 30_000;
/** How long after a failed connection the port is looked up again, ms. */
const RETRY_MS = 1000;

/** Errors of the transport (the call was not run, or its outcome is unknown), not of the node. */
const TRANSPORT_ERRORS: ReadonlySet<string> = new Set([
  ErrorCodes.RPC_UNAVAILABLE,
  ErrorCodes.RPC_CONNECTION_LOST,
  ErrorCodes.RPC_TIMEOUT,
  ErrorCodes.RPC_OVERLOADED,
  ErrorCodes.RPC_SHUTTING_DOWN,
  ErrorCodes.RPC_PROTOCOL,
  ErrorCodes.RPC_UNKNOWN_SERVICE,
]);

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

/** The RPC connection of one SDK client of the control plane. */
export class ControlPlaneRpcPath {
  readonly #http: ControlPlaneClient;
  readonly #token: TokenSource | undefined;
  #conn: RpcConnection | undefined;
  #finding: Promise<RpcConnection | undefined> | undefined;
  #askAgainAt = 0;

  /** `http`: the client whose node is used; `token` goes with every call. */
  constructor(http: ControlPlaneClient, token: TokenSource | undefined) {
    this.#http = http;
    this.#token = token;
  }

  /**
   * Runs `service.method(args + token)` over the connection: its answer, the node's error, or
   * {@link USE_HTTP} when it should go over HTTP instead. A transport failure after the call
   * was sent, or a failure of the node's own (what HTTP answers with a 5xx), answers
   * {@link USE_HTTP} only when `resendable` (calls HTTP would retry); otherwise it throws.
   */
  async call<T>(
    service: string,
    method: string,
    args: Record<string, unknown>,
    timeoutMs: number,
    resendable: boolean,
  ): Promise<T | typeof USE_HTTP> {
    const conn = await this.#connection();
    if (conn === undefined) return USE_HTTP;
    const token = typeof this.#token === 'function' ? await this.#token() : this.#token;
    const full = token === undefined || token === '' ? args : { ...args, token };
    try {
      return (await conn.call(service, method, {}, full, timeoutMs)) as T;
    } catch (err) {
      if (!isPeakError(err)) throw err;
      if (!TRANSPORT_ERRORS.has(err.code)) {
        // The node's own failure (its database, say): HTTP's tries and failover take it.
        if (resendable && httpStatusOf(err.code) >= 500) return USE_HTTP;
        throw err;
      }
      this.#drop(conn, RETRY_MS);
      if (err.details.sent === false || resendable) return USE_HTTP;
      throw err;
    }
  }

  /**
   * Closes the connection now (its calls fail: a long poll on it ends on the node); the
   * next call opens another. The socket never holds the process open, so a client nobody
   * closes leaves nothing behind.
   */
  reset(): void {
    const conn = this.#conn;
    if (conn !== undefined) this.#drop(conn, 0);
  }

  #drop(conn: RpcConnection, askAgainInMs: number): void {
    if (this.#conn === conn) this.#conn = undefined;
    conn.close();
    this.#askAgainAt = Date.now() + askAgainInMs;
  }

  /** The open connection, or undefined when calls should go over HTTP now. */
  async #connection(): Promise<RpcConnection | undefined> {
    const conn = this.#conn;
    if (conn !== undefined) {
      if (conn.state === 'open' && !conn.draining) return conn;
      if (conn.state === 'connecting') return conn;
      // Failed, or the node said GOAWAY (it is stopping): HTTP's failover picks the next node.
      this.#drop(conn, RETRY_MS);
    }
    if (Date.now() < this.#askAgainAt) return undefined;
    this.#finding ??= this.#find().finally(() => {
      this.#finding = undefined;
    });
    return this.#finding;
  }

  async #find(): Promise<RpcConnection | undefined> {
    const url = new URL(this.#http.server);
    let info: RpcEndpointAnswer;
    try {
      info = await this.#http.request<RpcEndpointAnswer>('GET', RPC_ENDPOINT_ROUTE, {
        retry: false,
        timeoutMs: 3000,
      });
    } catch {
      // An older node (404), or the node is down: HTTP's own failover handles the calls.
      this.#askAgainAt = Date.now() + RECHECK_MS;
      return undefined;
    }
    const reachedBy = url.hostname.replace(/^\[(.*)\]$/, '$1');
    if (
      !info.available ||
      (isLoopback(info.host) && !isLoopback(reachedBy)) ||
      // Never from HTTPS to plaintext (an older node under HTTPS answers unavailable anyway).
      (url.protocol === 'https:' && info.tls !== true)
    ) {
      this.#askAgainAt = Date.now() + RECHECK_MS;
      return undefined;
    }
    const conn = new RpcConnection(info.host, info.port, {
      // TLS as HTTPS to the node: the same trust (the client's `ca`, else the system's roots)
      // and the certificate checked against the name the node was reached by, whatever
      // address the port answered with (the node serves one certificate on both).
      ...(info.tls === true
        ? {
            transport: new TlsTransport({
              ...(this.#http.ca === undefined ? {} : { ca: this.#http.ca }),
              servername: reachedBy,
              reloadIntervalMs: 0,
            }),
          }
        : {}),
      // A receive's answer may hold many bodies (the port's bound is the same).
      maxFrameBytes: 64 * 1024 * 1024,
      connectTimeoutMs: 2000,
      // A client left open does not keep its process alive (HTTP's did not).
      holdsProcess: false,
    });
    try {
      await conn.connect();
    } catch {
      conn.close();
      this.#askAgainAt = Date.now() + RECHECK_MS;
      return undefined;
    }
    this.#conn = conn;
    return conn;
  }
}
