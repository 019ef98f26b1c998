/**
 * The cluster token client that talks to the control plane's token server over HTTP
 * (`POST /api/v1/guard/cluster/token`). It takes tokens in batches and keeps them locally,
 * so the hot path never waits on the network: a call takes a local token; when the batch
 * runs low the next one is fetched in the background (while it is in flight, up to one
 * batch, never more than the server said is left, is borrowed ahead and paid back); when the server said the shared
 * budget is spent for this second, calls are refused until the second ends; when the
 * server does not answer within `timeoutMs`, calls fall back to the local rule for
 * `retryAfterMs` before the server is tried again.
 */

import { randomBytes } from 'node:crypto';
import os from 'node:os';
import {
  ControlPlaneClient,
  type ControlPlaneOptions,
  serversOf,
} from '../core/control-plane-client.js';
import { errorMessage } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { parseServers } from '../core/server-list.js';
import type { ClusterTokenClient, TokenResult } from './cluster-token-client.js';
import { coarseNow } from './coarse-clock.js';

const TOKEN_ROUTE = '/api/v1/guard/cluster/token';

/** Options for {@link HttpTokenClient}. */
export interface HttpTokenClientOptions extends ControlPlaneOptions {
  /** The service (app) the budgets belong to. */
  namespace: string;
  /** This instance's id. Default `<hostname>-<pid>-<random>`. */
  clientId?: string;
  /** How long to wait for the token server, ms. Default 200. */
  timeoutMs?: number;
  /** How long to use the local rule after the server failed, ms. Default 1000. */
  retryAfterMs?: number;
  /** Tokens per request for a budget of `count`/s. Default max(1, ceil(count / 50)). */
  batchSize?: (count: number) => number;
  /** Where warnings go. Default: none. */
  logger?: Logger;
}

interface FlowState {
  tokens: number;
  validUntil: number;
  exhaustedUntil: number;
  failedUntil: number;
  inflight: boolean;
  /** Tokens taken ahead of a batch in flight, paid back from it. */
  borrowed: number;
  /** True after a failed request, until one succeeds. */
  degraded: boolean;
  /** What the server said is left of this window's budget after its last grant. */
  remaining: number;
}

/** The answer of the token server. */
export interface TokenGrant {
  /** Tokens granted (0..acquire). */
  granted: number;
  /** Time left in the server's current one-second window, ms. */
  windowRemainingMs: number;
  /** Tokens left in the window's budget after this grant (absent from older servers). */
  remaining?: number;
}

/** A {@link ClusterTokenClient} over HTTP with batching and local fallback. */
export class HttpTokenClient implements ClusterTokenClient {
  readonly #flows = new Map<string, FlowState>();
  readonly #http: ControlPlaneClient;
  readonly #namespace: string;
  readonly #clientId: string;
  readonly #timeoutMs: number;
  readonly #retryAfterMs: number;
  readonly #batch: (count: number) => number;
  readonly #logger: Logger;
  #closed = false;
  /** Requests sent, answered and failed (for tests and diagnostics). */
  readonly counters = { requests: 0, answered: 0, failed: 0, borrowed: 0, fallback: 0 };

  constructor(options: HttpTokenClientOptions) {
    this.#timeoutMs = options.timeoutMs ?? 200;
    const servers = parseServers(serversOf(options, 'HttpTokenClient'));
    // One try per node: a refused connection fails over at once; a slow or failing node
    // is not waited on again (the local rule decides meanwhile).
    this.#http = new ControlPlaneClient({
      servers,
      ...(options.token === undefined ? {} : { token: options.token }),
      timeoutMs: this.#timeoutMs,
      retries: servers.length - 1,
    });
    this.#namespace = options.namespace;
    this.#clientId =
      options.clientId ?? `${os.hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.#retryAfterMs = options.retryAfterMs ?? 1000;
    this.#batch = options.batchSize ?? ((count) => Math.max(1, Math.ceil(count / 50)));
    this.#logger = options.logger ?? silentLogger();
  }

  acquire(
    flowId: string,
    count: number,
    thresholdType: 'global' | 'avg-local',
    acquire: number,
  ): TokenResult {
    if (this.#closed) return 'fallback';
    const now = coarseNow();
    let s = this.#flows.get(flowId);
    if (s === undefined) {
      s = {
        tokens: 0,
        validUntil: 0,
        exhaustedUntil: 0,
        failedUntil: 0,
        inflight: false,
        borrowed: 0,
        degraded: false,
        remaining: Number.POSITIVE_INFINITY,
      };
      this.#flows.set(flowId, s);
    }
    if (now >= s.validUntil) {
      s.tokens = 0;
      s.remaining = Number.POSITIVE_INFINITY;
    }
    if (s.tokens >= acquire) {
      s.tokens -= acquire;
      if (s.tokens < this.#batch(count) / 2 && now >= s.exhaustedUntil)
        this.#fetch(s, flowId, count, thresholdType);
      return 'pass';
    }
    if (now < s.failedUntil) {
      this.counters.fallback++;
      return 'fallback';
    }
    if (now < s.exhaustedUntil) return 'block';
    this.#fetch(s, flowId, count, thresholdType);
    // The batch is on its way. After a failure the local rule decides until it lands;
    // otherwise up to one batch is borrowed ahead and paid back from it.
    if (s.degraded) {
      this.counters.fallback++;
      return 'fallback';
    }
    if (s.borrowed + acquire <= Math.min(this.#batch(count), s.remaining)) {
      s.borrowed += acquire;
      this.counters.borrowed += acquire;
      return 'pass';
    }
    return 'block';
  }

  #fetch(s: FlowState, flowId: string, count: number, thresholdType: string): void {
    if (s.inflight || Date.now() < s.failedUntil) return;
    s.inflight = true;
    const want = this.#batch(count);
    this.counters.requests++;
    this.#http
      .post<TokenGrant>(TOKEN_ROUTE, {
        namespace: this.#namespace,
        flowId,
        clientId: this.#clientId,
        count,
        thresholdType,
        acquire: want,
      })
      .then((grant) => {
        this.counters.answered++;
        const now = Date.now();
        const validUntil = now + grant.windowRemainingMs;
        if (now >= s.validUntil || validUntil > s.validUntil + 1) s.tokens = 0;
        s.tokens += grant.granted - s.borrowed;
        s.borrowed = 0;
        s.degraded = false;
        s.remaining = grant.remaining ?? Number.POSITIVE_INFINITY;
        s.validUntil = validUntil;
        s.exhaustedUntil = grant.granted < want ? validUntil : 0;
        s.failedUntil = 0;
      })
      .catch((err: unknown) => {
        this.counters.failed++;
        s.failedUntil = Date.now() + this.#retryAfterMs;
        s.borrowed = 0;
        s.degraded = true;
        this.#logger.warn(
          { flowId, err: errorMessage(err) },
          'guard: token server did not answer; using the local rule',
        );
      })
      .finally(() => {
        s.inflight = false;
      });
  }

  close(): void {
    this.#closed = true;
  }
}
