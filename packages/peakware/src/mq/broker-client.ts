/**
 * JSON over HTTP to the broker for the SDK: one place for URLs, the consume secret header,
 * timeouts, and turning failures into PeakErrors with the broker's code. Network failures
 * and 5xx answers are retried with a short backoff (Corgi's producer retries): at-least-once
 * means a retried send may store a message twice, never zero times once acknowledged.
 */

import { type ErrorCode, ErrorCodes, errorMessage, PeakError } from '../core/errors.js';
import { type HttpResponse, httpRequest } from '../core/http-client.js';

/** Options of a {@link BrokerClient}. */
export interface BrokerClientOptions {
  /** The peak server URL, e.g. `http://127.0.0.1:7420`. */
  server: string;
  /** The admin token, for admin routes (creating topics, DLQ, reset). */
  token?: string;
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

/** A small HTTP client for the broker routes. */
export class BrokerClient {
  readonly server: string;
  readonly #token: string | undefined;
  readonly #secret: string | undefined;
  readonly #attempts: number;

  constructor(options: BrokerClientOptions) {
    try {
      this.server = new URL(options.server).origin;
    } catch {
      throw new PeakError(
        ErrorCodes.USAGE,
        `server: not a URL: ${JSON.stringify(options.server)}`,
        { details: { input: 'server' } },
      );
    }
    this.#token = options.token;
    this.#secret = options.secret;
    this.#attempts = options.attempts ?? 3;
  }

  /** Calls a route; resolves its JSON or throws a PeakError. */
  async call<T>(
    method: 'GET' | 'POST',
    route: string,
    body?: unknown,
    opts: CallOptions = {},
  ): Promise<T> {
    let last: unknown;
    const attempts = opts.retry === false ? 1 : this.#attempts;
    const timeout = opts.timeoutMs ?? 15_000;
    for (let i = 0; i < attempts; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 100 * 2 ** i));
      let response: HttpResponse;
      try {
        response = await httpRequest(`${this.server}${route}`, {
          method,
          headers: {
            accept: 'application/json',
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
            ...(this.#token === undefined ? {} : { authorization: `Bearer ${this.#token}` }),
            ...(this.#secret === undefined ? {} : { 'x-peak-mq-secret': this.#secret }),
          },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          timeoutMs: timeout,
          ...(opts.signal === undefined ? {} : { signal: opts.signal }),
        });
      } catch (err) {
        last = new PeakError(
          ErrorCodes.SERVER_UNREACHABLE,
          `cannot reach the broker at ${this.server} (${(err as { cause?: { code?: string } }).cause?.code ?? errorMessage(err)})`,
          { cause: err },
        );
        continue;
      }
      const text = response.text;
      let parsed: unknown;
      try {
        parsed = text.length === 0 ? undefined : JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      if (response.ok) return parsed as T;
      const e = (
        parsed as
          | { error?: { code?: string; message?: string; details?: Record<string, unknown> } }
          | undefined
      )?.error;
      const err = new PeakError(
        (e?.code as ErrorCode | undefined) ?? ErrorCodes.INTERNAL,
        e?.message ?? `${method} ${route} answered HTTP ${response.status}`,
        { details: { status: response.status, ...(e?.details ?? {}) } },
      );
      if (response.status < 500) throw err;
      last = err;
    }
    throw last;
  }

  /**
   * Opens a streamed response (NDJSON) and yields its non-empty lines; a refusal before
   * the stream starts throws a PeakError with the broker's code. Ends when the server ends
   * the stream or `signal` aborts.
   */
  async *lines(route: string, body: unknown, signal: AbortSignal): AsyncGenerator<string> {
    let response: Response;
    try {
      response = await fetch(`${this.server}${route}`, {
        method: 'POST',
        headers: {
          accept: 'application/x-ndjson',
          'content-type': 'application/json',
          ...(this.#secret === undefined ? {} : { 'x-peak-mq-secret': this.#secret }),
        },
        body: JSON.stringify(body),
        signal,
      });
    } catch (err) {
      throw new PeakError(
        ErrorCodes.SERVER_UNREACHABLE,
        `cannot reach the broker at ${this.server} (${(err as { cause?: { code?: string } }).cause?.code ?? errorMessage(err)})`,
        { cause: err },
      );
    }
    if (!response.ok || response.body === null) {
      const text = await response.text().catch(() => '');
      let e: { code?: string; message?: string } | undefined;
      try {
        e = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error;
      } catch {
        e = undefined;
      }
      throw new PeakError(
        (e?.code as ErrorCode | undefined) ?? ErrorCodes.INTERNAL,
        e?.message ?? `POST ${route} answered HTTP ${response.status}`,
        { details: { status: response.status } },
      );
    }
    const decoder = new TextDecoder();
    let buffered = '';
    for await (const chunk of response.body) {
      buffered += decoder.decode(chunk as Uint8Array, { stream: true });
      let nl = buffered.indexOf('\n');
      while (nl >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line.length > 0) yield line;
        nl = buffered.indexOf('\n');
      }
    }
  }
}
