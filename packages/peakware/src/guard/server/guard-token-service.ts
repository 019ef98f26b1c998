/**
 * The guard's cluster token server across several control-plane nodes. Budgets are
 * counted in memory, so exactly one node may count them: the node holding the guard's
 * advisory lock (as Sentinel runs one token server per cluster). Any node takes token
 * requests; a node that does not lead forwards them to the one that does (found through
 * the lock holder's session name, its node id, and `peak.nodes`), so a client may talk to
 * any node behind a load balancer and every instance still draws from one budget.
 *
 * When the leader dies its session ends, the lock frees, and the next node to check takes
 * it (within `checkMs`); counts restart for the current second on the new leader. While no
 * leader answers, a request fails with PEAK_GUARD_TOKEN_SERVER_UNAVAILABLE (503) and the
 * clients fall back to their local rules, as they do when no control plane answers.
 */
import type pg from 'pg';
import { ErrorCodes, errorMessage, PeakError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { AdvisoryLeader, GUARD_TOKEN_SERVER_LOCK_KEY } from '../../server/advisory-leader.js';
import { ClusterTokenServer, type TokenRequest } from './cluster-token-server.js';

/** What a token request is answered with. */
export interface TokenAnswer {
  granted: number;
  windowRemainingMs: number;
  remaining: number;
  /** The node that counted the grant (the leader). */
  nodeId: string;
}

/** Options for {@link GuardTokenService}. */
export interface GuardTokenServiceOptions {
  pool: pg.Pool;
  nodeId: string;
  logger: Logger;
  /** Take part in leadership (default true; `PEAK_GUARD_TOKEN_SERVER=off` says false). */
  lead?: boolean;
  /** How often leadership is checked, ms. Default 1000. */
  checkMs?: number;
  /** How long a forwarded request may take, ms. Default 150 (clients wait 200 by default). */
  forwardTimeoutMs?: number;
}

/** The request header marking a request one node forwarded to the leader. */
export const FORWARDED_HEADER = 'peak-forwarded-by';

/** Grants tokens here when leading, forwards to the leader otherwise. */
export class GuardTokenService {
  readonly tokens = new ClusterTokenServer();
  readonly #pool: pg.Pool;
  readonly #nodeId: string;
  readonly #logger: Logger;
  readonly #leader: AdvisoryLeader | undefined;
  readonly #forwardTimeoutMs: number;
  readonly #timer: NodeJS.Timeout | undefined;
  /** The leader's URL as last looked up, and until when to trust it. */
  #leaderUrl: { url: string; nodeId: string; until: number } | undefined;

  constructor(options: GuardTokenServiceOptions) {
    this.#pool = options.pool;
    this.#nodeId = options.nodeId;
    this.#logger = options.logger;
    this.#forwardTimeoutMs = options.forwardTimeoutMs ?? 150;
    if (options.lead !== false) {
      this.#leader = new AdvisoryLeader(
        options.pool,
        GUARD_TOKEN_SERVER_LOCK_KEY,
        options.logger,
        options.nodeId,
      );
      const check = () => {
        this.#leader?.holds().catch(() => undefined);
      };
      check();
      this.#timer = setInterval(check, options.checkMs ?? 1000);
      this.#timer.unref();
    }
  }

  /** Whether this node counts the budgets now. */
  get leading(): boolean {
    return this.#leader?.leader === true;
  }

  /**
   * Grants from this node's budgets when it leads (or when the request was already
   * forwarded once: never forward twice), else forwards to the leader with the caller's
   * `authorization` (the leader checks the credential again).
   */
  async grant(
    req: TokenRequest,
    forwardedBy: string | undefined,
    authorization?: string,
  ): Promise<TokenAnswer> {
    if (this.leading || forwardedBy !== undefined) return this.#grantHere(req);
    const leader = await this.#findLeader();
    if (leader === undefined) {
      // Nobody leads (a fresh cluster, or the leader just died): try to take it over now.
      if (this.#leader !== undefined && (await this.#leader.holds())) return this.#grantHere(req);
      throw new PeakError(
        ErrorCodes.GUARD_TOKEN_SERVER_UNAVAILABLE,
        'no control-plane node leads the cluster token server right now (a node holding the guard lock is expected within a second or two); the client uses its local rule meanwhile',
      );
    }
    try {
      const res = await fetch(`${leader.url}/api/v1/guard/cluster/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [FORWARDED_HEADER]: this.#nodeId,
          ...(authorization === undefined ? {} : { authorization }),
        },
        body: JSON.stringify(req),
        signal: AbortSignal.timeout(this.#forwardTimeoutMs),
      });
      if (!res.ok) throw new Error(`HTTP ${res.status} ${(await res.text()).slice(0, 200)}`);
      return (await res.json()) as TokenAnswer;
    } catch (err) {
      this.#leaderUrl = undefined;
      throw new PeakError(
        ErrorCodes.GUARD_TOKEN_SERVER_UNAVAILABLE,
        `the cluster token server on node ${leader.nodeId} (${leader.url}) did not answer: ${errorMessage(err)}; the client uses its local rule meanwhile`,
      );
    }
  }

  /** Which node leads, as this node sees it. */
  async leaderNodeId(): Promise<string | undefined> {
    if (this.leading) return this.#nodeId;
    return (await this.#findLeader())?.nodeId;
  }

  /** Stops checking and gives the lock up. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#leader?.close();
  }

  #grantHere(req: TokenRequest): TokenAnswer {
    const result = this.tokens.grant(req);
    return {
      granted: result.granted,
      windowRemainingMs: result.windowRemainingMs,
      remaining: Math.max(0, result.threshold - result.used),
      nodeId: this.#nodeId,
    };
  }

  async #findLeader(): Promise<{ url: string; nodeId: string } | undefined> {
    const cached = this.#leaderUrl;
    if (cached !== undefined && cached.until > Date.now()) return cached;
    try {
      const nodeId = await AdvisoryLeader.holderName(this.#pool, GUARD_TOKEN_SERVER_LOCK_KEY);
      if (nodeId === undefined) return undefined;
      const res = await this.#pool.query<{ http_url: string }>(
        'SELECT http_url FROM peak.nodes WHERE node_id = $1',
        [nodeId],
      );
      const url = res.rows[0]?.http_url;
      if (url === undefined) return undefined;
      this.#leaderUrl = { url, nodeId, until: Date.now() + 1000 };
      return this.#leaderUrl;
    } catch (err) {
      this.#logger.warn({ err: errorMessage(err) }, 'guard: looking up the token server failed');
      return undefined;
    }
  }
}
