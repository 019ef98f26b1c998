/**
 * The SDK's side of the binary data path (binary-protocol.ts): one persistent connection
 * to the broker node the HTTP client is using, found through that node's
 * `GET /api/v1/mq/binary`, carrying sends, receives, acks and nacks as RPC frames.
 *
 * HTTP stays the way that always works. A call goes over HTTP instead when the node has no
 * binary endpoint (turned off, an older node, HTTPS: no TLS on this path yet), when its
 * address is loopback and the node was reached by another name (a client on another
 * machine), or when the connection is not usable now (connecting failed, reconnecting,
 * the node said GOAWAY). A connection that fails is dropped and looked up again a second
 * later, through whichever node the HTTP client then uses, so a broker node that died is
 * left for another as HTTP's failover leaves it.
 */
import { isIP } from 'node:net';
import type { ControlPlaneClient, TokenSource } from '../core/control-plane-client.js';
import { ErrorCodes, httpStatusOf, isPeakError } from '../core/errors.js';
import { RpcConnection } from '../rpc/index.js';
import {
  MQ_BINARY_ROUTE,
  MQ_BINARY_SERVICE,
  type MqBinaryArgs,
  type MqBinaryEndpointInfo,
  type MqBinaryMethod,
} from './binary-protocol.js';

/** What {@link BinaryPath.call} answers when the call should go over HTTP instead (not sent). */
export const USE_HTTP: unique symbol = Symbol('use HTTP');

/** How long a node without a usable endpoint is asked again, ms. */
const RECHECK_MS = 30_000;
/** How long after a failed connection the endpoint is looked up again, ms. */
const RETRY_MS = 1000;

/** Errors of the transport (the call was not run, or its outcome is unknown), not of the broker. */
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

/** The binary connection of one {@link BrokerClient}. */
export class BinaryPath {
  readonly #http: ControlPlaneClient;
  readonly #token: TokenSource | undefined;
  readonly #secret: string | undefined;
  #conn: RpcConnection | undefined;
  #finding: Promise<RpcConnection | undefined> | undefined;
  #askAgainAt = 0;

  /** `http`: the client whose node is used; `token` and `secret` go with every call. */
  constructor(http: ControlPlaneClient, token: TokenSource | undefined, secret?: string) {
    this.#http = http;
    this.#token = token;
    this.#secret = secret;
  }

  /**
   * Runs `method` over the binary connection: its answer, the broker's error, or
   * {@link USE_HTTP} when it should go over HTTP instead. A transport failure after the call
   * was sent, or a failure of the broker's own (what HTTP answers with a 5xx), answers
   * {@link USE_HTTP} only when `resendable` (at-least-once calls, which HTTP retries);
   * otherwise it throws.
   */
  async call<T>(
    method: MqBinaryMethod,
    args: Omit<MqBinaryArgs, 'token' | 'secret'>,
    timeoutMs: number,
    resendable: boolean,
  ): Promise<T | typeof USE_HTTP> {
    const conn = await this.#connection();
    if (conn === undefined) return USE_HTTP;
    const token = typeof this.#token === 'function' ? await this.#token() : this.#token;
    const full: MqBinaryArgs = {
      ...args,
      ...(token === undefined || token === '' ? {} : { token }),
      ...(this.#secret === undefined ? {} : { secret: this.#secret }),
    };
    try {
      return (await conn.call(MQ_BINARY_SERVICE, method, {}, full, timeoutMs)) as T;
    } catch (err) {
      if (!isPeakError(err)) throw err;
      if (!TRANSPORT_ERRORS.has(err.code)) {
        // The broker's own failure (its database, say): HTTP's tries and failover take it.
        if (resendable && httpStatusOf(err.code) >= 500) return USE_HTTP;
        throw err;
      }
      this.#drop(conn, RETRY_MS);
      if (err.details.sent === false || resendable) return USE_HTTP;
      throw err;
    }
  }

  /**
   * Closes the connection now (its calls fail: a long poll on it ends on the broker); the
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
      this.#drop(conn, conn.draining ? 0 : RETRY_MS);
    }
    if (Date.now() < this.#askAgainAt) return undefined;
    this.#finding ??= this.#find().finally(() => {
      this.#finding = undefined;
    });
    return this.#finding;
  }

  async #find(): Promise<RpcConnection | undefined> {
    const server = this.#http.server;
    const url = new URL(server);
    if (url.protocol !== 'http:') {
      this.#askAgainAt = Number.POSITIVE_INFINITY; // no TLS on this path yet: HTTPS stays HTTPS
      return undefined;
    }
    let info: MqBinaryEndpointInfo;
    try {
      info = await this.#http.request<MqBinaryEndpointInfo>('GET', MQ_BINARY_ROUTE, {
        retry: false,
        timeoutMs: 3000,
      });
    } catch {
      // An older node (404), or the node is down: HTTP's own failover handles the calls.
      this.#askAgainAt = Date.now() + RECHECK_MS;
      return undefined;
    }
    const reachedBy = url.hostname.replace(/^\[(.*)\]$/, '$1');
    if (!info.available || (isLoopback(info.host) && !isLoopback(reachedBy))) {
      this.#askAgainAt = Date.now() + RECHECK_MS;
      return undefined;
    }
    const conn = new RpcConnection(info.host, info.port, {
      // A receive's answer may hold many bodies (the endpoint's bound is the same).
      maxFrameBytes: 64 * 1024 * 1024,
      connectTimeoutMs: 2000,
      // A producer or consumer left open does not keep its process alive (HTTP's did not).
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
