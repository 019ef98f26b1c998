/**
 * The broker's data-plane API for the SDK (producer, consumer, outbox relay and the CLI's
 * `peak mq send|consume`): every `/api/v1/mq` route they call is named here once, over the
 * one {@link ControlPlaneClient} (failover across nodes, timeouts, PeakErrors with the
 * broker's code), with the consume secret header of a secured topic. Network failures and
 * 5xx answers are retried with a short backoff (Corgi's producer retries): at-least-once
 * means a retried send may store a message twice, never zero times once acknowledged.
 */

import { assertDeadline, remainingTime } from '../core/context.js';
import {
  ControlPlaneClient,
  type ControlPlaneOptions,
  envCredential,
  serversOf,
} from '../core/control-plane-client.js';
import { ControlPlaneRpcPath, USE_HTTP } from '../rpc/control-plane-path.js';
import { MQ_RPC_SERVICE, type MqRpcArgs, type MqRpcMethod } from './binary-protocol.js';
import type { ReceivedMessage, WireMessage } from './message-types.js';

/** How long before a caller's deadline a long poll must be answered, ms. */
export const LONG_POLL_DEADLINE_MARGIN_MS = 100;

/** How an SDK client's sends, receives, acks and nacks travel (producer, consumer, outbox). */
export interface MqTransportOption {
  /**
   * `binary` (the default): over one persistent connection to the node's RPC port when it
   * offers one (`peakware/rpc`'s control-plane-path.ts), else HTTP; `http`: always HTTP (also
   * `PEAK_MQ_TRANSPORT=http`). The rest of the API is HTTP either way.
   */
  transport?: 'binary' | 'http';
}

/** Options of a {@link BrokerClient}. */
export interface BrokerClientOptions extends ControlPlaneOptions, MqTransportOption {
  /** Sent as `x-peak-mq-secret` (a secured topic's consume secret). */
  secret?: string;
  /** Tries for retryable failures. Default 3. */
  attempts?: number;
}

/** Per-call options of {@link BrokerClient.call}. */
export interface CallOptions {
  /** Default 15 000 ms. */
  timeoutMs?: number;
  /** Retry network failures and 5xx. Default true. */
  retry?: boolean;
  /** Abort the call (e.g. a long poll at close). */
  signal?: AbortSignal;
}

/** What a consumer subscribes with, on receive and stream requests. */
export interface Subscription {
  topic: string;
  consumerId: string;
  /** Tags to receive, or `*` for all. */
  tags: readonly string[] | '*';
  startFrom: 'earliest' | 'latest';
  broadcasting: boolean;
  maxRetries?: number;
  backoffMs?: readonly number[];
  invisibleMs?: number;
}

/** The broker's answer to a send. */
export interface SendAnswer {
  /** The stored messages' ids, in request order. */
  ids: string[];
  /** The topic they were stored in (a shadow topic for stress traffic). */
  topic: string;
}

const MQ = '/api/v1/mq';
const seg = encodeURIComponent;

/** `PEAK_MQ_TRANSPORT=http` sends every call over HTTP (the default is `binary`). */
function transportFromEnv(): 'binary' | 'http' {
  return process.env.PEAK_MQ_TRANSPORT === 'http' ? 'http' : 'binary';
}

/** A small client of the broker routes. */
export class BrokerClient {
  readonly #http: ControlPlaneClient;
  readonly #binary: ControlPlaneRpcPath | undefined;
  readonly #secret: string | undefined;

  constructor(options: BrokerClientOptions) {
    this.#http = new ControlPlaneClient({
      servers: serversOf(options, 'BrokerClient'),
      ...(options.token === undefined ? {} : { token: options.token }),
      ...(options.secret === undefined ? {} : { headers: { 'x-peak-mq-secret': options.secret } }),
      retries: Math.max(1, options.attempts ?? 3) - 1,
      timeoutMs: 15_000,
      backoff: { initialMs: 200, maxMs: 2000 },
      serverName: 'the broker',
    });
    const transport = options.transport ?? transportFromEnv();
    this.#binary =
      transport === 'http'
        ? undefined
        : new ControlPlaneRpcPath(this.#http, options.token ?? envCredential());
    this.#secret = options.secret;
  }

  /**
   * Whether sends, receives, acks and nacks go over the binary path when the node offers
   * it (transport `binary`, the default), rather than always HTTP.
   */
  get binary(): boolean {
    return this.#binary !== undefined;
  }

  /** Closes the binary connection (a call after it opens another). */
  close(): void {
    this.#binary?.reset();
  }

  /**
   * `method` over the binary path when it is usable, else `http()`; a call the binary path
   * sent and lost goes over HTTP again only when `resendable`.
   */
  async #hot<T>(
    method: MqRpcMethod,
    args: Omit<MqRpcArgs, 'token' | 'secret'>,
    timeoutMs: number,
    resendable: boolean,
    http: () => Promise<T>,
  ): Promise<T> {
    if (this.#binary !== undefined) {
      const full = this.#secret === undefined ? args : { ...args, secret: this.#secret };
      const r = await this.#binary.call<T>(MQ_RPC_SERVICE, method, full, timeoutMs, resendable);
      if (r !== USE_HTTP) return r;
    }
    return http();
  }

  /** The broker node in use now. */
  get server(): string {
    return this.#http.server;
  }

  /**
   * Calls a route; resolves its JSON or throws a PeakError. Retried on network failures
   * and 5xx unless `retry: false` (at-least-once: the caller accepts a duplicate).
   */
  call<T>(
    method: 'GET' | 'POST',
    route: string,
    body?: unknown,
    opts: CallOptions = {},
  ): Promise<T> {
    return this.#http.request<T>(method, route, {
      ...(body === undefined ? {} : { body }),
      timeoutMs: opts.timeoutMs ?? 15_000,
      retry: opts.retry ?? true,
      ...(opts.signal === undefined ? {} : { signal: opts.signal }),
    });
  }

  /**
   * Opens a streamed response (NDJSON, `POST route`) and yields its non-empty lines; a
   * refusal before the stream starts throws a PeakError with the broker's code. Ends when
   * the server ends the stream or `signal` aborts.
   */
  lines(route: string, body: unknown, signal: AbortSignal): AsyncGenerator<string> {
    return this.#http.lines('POST', route, { body, signal });
  }

  /** Stores messages in `topic` (one batch: all or none). Retried: at-least-once. */
  send(topic: string, messages: readonly WireMessage[]): Promise<SendAnswer> {
    const body = { messages };
    return this.#hot('send', { topic, body }, 15_000, true, () =>
      this.call('POST', `${MQ}/topics/${seg(topic)}/messages`, body),
    );
  }

  /** Stores a half (transactional) message, invisible until committed. */
  sendHalf(topic: string, message: WireMessage, producerGroup: string): Promise<{ id: string }> {
    return this.call('POST', `${MQ}/topics/${seg(topic)}/half`, { message, producerGroup });
  }

  /** Commits or rolls back a half message; `secret` is the topic's produce secret, if secured. */
  endHalf(
    id: string,
    action: 'commit' | 'rollback',
    by: 'producer' | 'check-back',
    secret?: string,
  ): Promise<{ id: string; action: string }> {
    return this.call('POST', `${MQ}/transactions/${seg(id)}/${action}`, {
      by,
      ...(secret === undefined ? {} : { secret }),
    });
  }

  /** The half messages of a producer group waiting for its verdict (check-backs). */
  checks(
    producerGroup: string,
    max: number,
    secrets: Readonly<Record<string, string>>,
  ): Promise<{ checks: ReceivedMessage[] }> {
    return this.call('POST', `${MQ}/producer-groups/${seg(producerGroup)}/checks`, {
      max,
      secrets,
    });
  }

  /**
   * One long poll: up to `max` messages, waiting up to `waitMs` for the first. Not retried.
   * Inside a call context with a deadline the broker waits no longer than the deadline
   * allows ({@link LONG_POLL_DEADLINE_MARGIN_MS} before it, for the answer's way back), and
   * a deadline that already passed throws PEAK_DEADLINE_EXCEEDED without a request.
   * `acks`: receipts the broker acks first, as {@link ack} would (one request, not two).
   */
  async receive(
    group: string,
    subscription: Subscription,
    take: { max: number; waitMs: number; acks?: readonly string[] },
    opts: Pick<CallOptions, 'signal' | 'timeoutMs'> = {},
  ): Promise<{ messages: ReceivedMessage[] }> {
    assertDeadline(`mq receive from group ${group}`);
    const left = remainingTime();
    const waitMs = Math.max(0, Math.min(take.waitMs, left - LONG_POLL_DEADLINE_MARGIN_MS));
    const body = { ...subscription, ...take, waitMs };
    const timeoutMs = opts.timeoutMs ?? Math.min(waitMs + 10_000, Math.max(1, left));
    const http = () =>
      this.call<{ messages: ReceivedMessage[] }>(
        'POST',
        `${MQ}/groups/${seg(group)}/receive`,
        body,
        {
          ...opts,
          retry: false,
          timeoutMs,
        },
      );
    const signal = opts.signal;
    if (signal === undefined) return this.#hot('receive', { group, body }, timeoutMs, false, http);
    if (signal.aborted) throw signal.reason;
    // An abort ends the call at once, as it ends an HTTP request. A binary call cannot be
    // withdrawn on its own: the connection closes, which ends the poll on the broker (so it
    // claims nothing for nobody); the next call opens another.
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.#binary?.reset();
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#hot('receive', { group, body }, timeoutMs, false, http)
        .then(resolve, reject)
        .finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  /** Streamed push: NDJSON deliveries (one JSON message a line), at most `inflight` unacked. */
  stream(
    group: string,
    subscription: Subscription,
    inflight: number,
    signal: AbortSignal,
  ): AsyncGenerator<string> {
    return this.lines(`${MQ}/groups/${seg(group)}/stream`, { ...subscription, inflight }, signal);
  }

  /** Acks deliveries by receipt. */
  ack(
    group: string,
    topic: string,
    consumerId: string,
    receipts: readonly string[],
  ): Promise<unknown> {
    const body = { topic, consumerId, receipts };
    return this.#hot('ack', { group, body }, 15_000, true, () =>
      this.call('POST', `${MQ}/groups/${seg(group)}/ack`, body),
    );
  }

  /** Nacks deliveries: retried after the group's backoff, or dead-lettered after the last try. */
  nack(
    group: string,
    topic: string,
    consumerId: string,
    receipts: readonly string[],
    reason: string,
  ): Promise<unknown> {
    const body = { topic, consumerId, receipts, reason };
    return this.#hot('nack', { group, body }, 15_000, true, () =>
      this.call('POST', `${MQ}/groups/${seg(group)}/nack`, body),
    );
  }

  /** Leaves the group: the consumer's queues move to the others at once. */
  leave(
    group: string,
    topic: string,
    consumerId: string,
    broadcasting: boolean,
  ): Promise<{ left: boolean }> {
    return this.call('POST', `${MQ}/groups/${seg(group)}/leave`, {
      topic,
      consumerId,
      broadcasting,
    });
  }
}
