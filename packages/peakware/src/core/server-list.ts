/**
 * Which control-plane node a client talks to. The client sticks to one node while it
 * answers; a network error or a 5xx moves it to the next one, and the failed node is
 * remembered for `cooldownMs`, so later calls skip it instead of paying its timeout
 * again. When every node failed recently, the one that failed longest ago is tried.
 */
import { ErrorCodes, PeakError } from './errors.js';

/** Options of a {@link ServerList}. */
export interface ServerListOptions {
  /** How long a failed node is skipped, ms. Default 5000. */
  cooldownMs?: number;
  /** The clock, ms; tests pass their own. Default `Date.now`. */
  now?: () => number;
}

/**
 * Normalises a `servers` option (one URL or several) to origins without a trailing slash;
 * throws PEAK_USAGE naming the option when it is empty or not a URL.
 */
export function parseServers(servers: string | readonly string[], option = 'servers'): string[] {
  const list = (typeof servers === 'string' ? [servers] : [...servers])
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (list.length === 0) {
    throw new PeakError(
      ErrorCodes.USAGE,
      `${option}: give at least one control-plane URL, e.g. http://127.0.0.1:7420`,
      { details: { input: option } },
    );
  }
  return list.map((s) => {
    let url: URL;
    try {
      url = new URL(s);
    } catch {
      throw new PeakError(ErrorCodes.USAGE, `${option}: not a URL: ${JSON.stringify(s)}`, {
        details: { input: option },
      });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new PeakError(
        ErrorCodes.USAGE,
        `${option}: ${JSON.stringify(s)} is not an http(s) URL`,
        { details: { input: option } },
      );
    }
    return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
  });
}

/** The nodes of a control plane, with the one in use and the ones that failed lately. */
export class ServerList {
  readonly #servers: readonly string[];
  readonly #cooldownMs: number;
  readonly #now: () => number;
  readonly #failedAt = new Map<string, number>();
  #current = 0;

  constructor(servers: string | readonly string[], options: ServerListOptions = {}) {
    this.#servers = parseServers(servers);
    this.#cooldownMs = options.cooldownMs ?? 5000;
    this.#now = options.now ?? Date.now;
  }

  /** Every node, in the order given. */
  get all(): readonly string[] {
    return this.#servers;
  }

  /** The node in use now. */
  get current(): string {
    return this.#servers[this.#current]!;
  }

  /**
   * The node to try next: the one in use unless it failed within the cooldown (or is in
   * `skip`, the nodes this call already tried), else the next healthy one in order, else
   * the one that failed longest ago.
   */
  pick(skip: ReadonlySet<string> = new Set()): string {
    const now = this.#now();
    const n = this.#servers.length;
    for (let i = 0; i < n; i++) {
      const s = this.#servers[(this.#current + i) % n]!;
      if (skip.has(s)) continue;
      const failed = this.#failedAt.get(s);
      if (failed === undefined || now - failed >= this.#cooldownMs) return s;
    }
    const untried = this.#servers.filter((s) => !skip.has(s));
    const pool = untried.length > 0 ? untried : this.#servers;
    let best = pool[0]!;
    for (const s of pool) {
      if ((this.#failedAt.get(s) ?? 0) < (this.#failedAt.get(best) ?? 0)) best = s;
    }
    return best;
  }

  /** Records that `server` answered: it becomes the node in use and is healthy again. */
  succeeded(server: string): void {
    this.#failedAt.delete(server);
    const i = this.#servers.indexOf(server);
    if (i >= 0) this.#current = i;
  }

  /** Records that `server` failed; if it was in use, the next node in order takes over. */
  failed(server: string): void {
    this.#failedAt.set(server, this.#now());
    const i = this.#servers.indexOf(server);
    if (i === this.#current) this.#current = (i + 1) % this.#servers.length;
  }

  /** Whether `server` failed within the cooldown. */
  isFailing(server: string): boolean {
    const failed = this.#failedAt.get(server);
    return failed !== undefined && this.#now() - failed < this.#cooldownMs;
  }
}
