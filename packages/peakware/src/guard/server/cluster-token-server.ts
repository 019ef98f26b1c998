/**
 * The token server's counting, kept apart from HTTP so it can be tested alone: one budget
 * per (namespace, flowId) and one-second window, granted first come first served. Counts
 * live in this process's memory, which is exact for one control-plane node; with several
 * nodes behind a load balancer each would count alone (see the README for what multi-node
 * needs).
 */

/** A request for tokens. */
export interface TokenRequest {
  namespace: string;
  flowId: string;
  clientId: string;
  /** The rule's threshold per second. */
  count: number;
  thresholdType: 'global' | 'avg-local';
  /** Tokens wanted. */
  acquire: number;
}

interface Budget {
  window: number;
  used: number;
  clients: Map<string, number>;
}

/** How long a client counts as connected for `avg-local` budgets, ms. */
const CLIENT_TTL_MS = 5000;

/** Counts tokens of shared budgets per one-second window. */
export class ClusterTokenServer {
  readonly #budgets = new Map<string, Budget>();

  constructor(
    readonly maxBudgets = 10_000,
    readonly clock: () => number = Date.now,
  ) {}

  /** Grants up to `acquire` tokens of the current second's budget. */
  grant(req: TokenRequest): {
    granted: number;
    windowRemainingMs: number;
    threshold: number;
    used: number;
  } {
    const now = this.clock();
    const window = Math.floor(now / 1000);
    const key = `${req.namespace}\u0000${req.flowId}`;
    let b = this.#budgets.get(key);
    if (b === undefined) {
      if (this.#budgets.size >= this.maxBudgets) this.#evict(now);
      b = { window, used: 0, clients: new Map() };
      this.#budgets.set(key, b);
    }
    if (b.window !== window) {
      b.window = window;
      b.used = 0;
    }
    b.clients.set(req.clientId, now);
    let connected = 0;
    for (const [id, seen] of b.clients) {
      if (now - seen > CLIENT_TTL_MS) b.clients.delete(id);
      else connected++;
    }
    const threshold = req.thresholdType === 'avg-local' ? req.count * connected : req.count;
    const granted = Math.max(0, Math.min(req.acquire, Math.floor(threshold - b.used)));
    b.used += granted;
    return { granted, windowRemainingMs: (window + 1) * 1000 - now, threshold, used: b.used };
  }

  /** The budgets seen in the last `seconds`: tokens granted in the current second, clients connected. */
  list(
    seconds = 60,
  ): { namespace: string; flowId: string; second: number; used: number; clients: number }[] {
    const now = this.clock();
    const window = Math.floor(now / 1000);
    const out: {
      namespace: string;
      flowId: string;
      second: number;
      used: number;
      clients: number;
    }[] = [];
    for (const [key, b] of this.#budgets) {
      if (b.window < window - seconds) continue;
      const [namespace = '', flowId = ''] = key.split('\u0000');
      let clients = 0;
      for (const seen of b.clients.values()) if (now - seen <= CLIENT_TTL_MS) clients++;
      out.push({
        namespace,
        flowId,
        second: b.window * 1000,
        used: b.window === window ? b.used : 0,
        clients,
      });
    }
    return out;
  }

  #evict(now: number): void {
    const window = Math.floor(now / 1000);
    for (const [key, b] of this.#budgets) if (b.window < window - 5) this.#budgets.delete(key);
    if (this.#budgets.size >= this.maxBudgets) {
      const oldest = this.#budgets.keys().next().value;
      if (oldest !== undefined) this.#budgets.delete(oldest);
    }
  }
}
