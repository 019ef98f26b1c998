/**
 * The `LoadBalancer` seam and its five implementations: weighted random, smooth weighted
 * round robin (nginx's), least-active, power of two choices on EWMA latency, and
 * consistent hashing on an argument. All read weights at call time, so runtime weight
 * changes and warm-up apply at once.
 */
import type { Endpoint } from './endpoint.js';
import type { Invocation } from './rpc-filter.js';

/** Picks one endpoint for a call among routed, available candidates (never empty). */
export interface LoadBalancer {
  /** Returns one of `candidates`. */
  select(candidates: readonly Endpoint[], invocation: Invocation): Endpoint;
}

/** The built-in balancers by name. */
export type LoadBalancerName =
  | 'random'
  | 'round-robin'
  | 'least-active'
  | 'p2c-ewma'
  | 'consistent-hash';

function weightedPick(candidates: readonly Endpoint[], now: number): Endpoint {
  let total = 0;
  let same = true;
  let first = -1;
  const weights = new Array<number>(candidates.length);
  for (let i = 0; i < candidates.length; i++) {
    const w = candidates[i]!.weight(now);
    weights[i] = w;
    total += w;
    if (first < 0) first = w;
    else if (w !== first) same = false;
  }
  if (total <= 0 || same) return candidates[Math.floor(Math.random() * candidates.length)]!;
  let r = Math.random() * total;
  for (let i = 0; i < candidates.length; i++) {
    r -= weights[i]!;
    if (r < 0) return candidates[i]!;
  }
  return candidates[candidates.length - 1]!;
}

/** Picks at random in proportion to weight. */
export class WeightedRandomBalancer implements LoadBalancer {
  select(candidates: readonly Endpoint[], _invocation?: Invocation): Endpoint {
    return candidates.length === 1 ? candidates[0]! : weightedPick(candidates, Date.now());
  }
}

/**
 * Smooth weighted round robin: each pick adds every weight to its endpoint's running score,
 * takes the highest, and subtracts the total from it. Spreads picks evenly (a, a, b, a...
 * never a burst of one endpoint).
 */
export class SmoothRoundRobinBalancer implements LoadBalancer {
  readonly #current = new WeakMap<Endpoint, number>();

  select(candidates: readonly Endpoint[], _invocation?: Invocation): Endpoint {
    if (candidates.length === 1) return candidates[0]!;
    const now = Date.now();
    let total = 0;
    let best: Endpoint | undefined;
    let bestScore = Number.NEGATIVE_INFINITY;
    for (const e of candidates) {
      const w = e.weight(now);
      total += w;
      const score = (this.#current.get(e) ?? 0) + w;
      this.#current.set(e, score);
      if (score > bestScore) {
        bestScore = score;
        best = e;
      }
    }
    const chosen = best ?? candidates[0]!;
    this.#current.set(chosen, bestScore - total);
    return chosen;
  }
}

/** Picks among the endpoints with the fewest calls in flight (weighted random on ties). */
export class LeastActiveBalancer implements LoadBalancer {
  select(candidates: readonly Endpoint[], _invocation?: Invocation): Endpoint {
    if (candidates.length === 1) return candidates[0]!;
    let least = Number.POSITIVE_INFINITY;
    const ties: Endpoint[] = [];
    for (const e of candidates) {
      if (e.active < least) {
        least = e.active;
        ties.length = 0;
        ties.push(e);
      } else if (e.active === least) {
        ties.push(e);
      }
    }
    return ties.length === 1 ? ties[0]! : weightedPick(ties, Date.now());
  }
}

/**
 * Power of two choices: two endpoints at random, keep the one with the lower cost
 * `(ewmaLatency + 1) × (active + 1) / weight`. Routes around slow instances quickly with
 * no global state.
 */
export class P2cEwmaBalancer implements LoadBalancer {
  select(candidates: readonly Endpoint[], _invocation?: Invocation): Endpoint {
    const n = candidates.length;
    if (n === 1) return candidates[0]!;
    const i = Math.floor(Math.random() * n);
    let j = Math.floor(Math.random() * (n - 1));
    if (j >= i) j++;
    const a = candidates[i]!;
    const b = candidates[j]!;
    const now = Date.now();
    const cost = (e: Endpoint) => ((e.ewmaMs + 1) * (e.active + 1)) / Math.max(e.weight(now), 1e-6);
    return cost(a) <= cost(b) ? a : b;
  }
}

/** 32-bit FNV-1a with a murmur3 finaliser, for ring positions and keys. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Options of {@link ConsistentHashBalancer}. */
export interface ConsistentHashOptions {
  /** The hash key of a call; default: the argument field named `field`, else the JSON of it. */
  key?: (args: unknown) => string;
  /** The argument field to hash on (e.g. `userId`). */
  field?: string;
  /** Virtual nodes per endpoint. Default 160. */
  replicas?: number;
}

/**
 * Consistent hashing on an argument: the same key goes to the same instance while the set
 * of instances holds, and only about 1/n of keys move when one joins or leaves.
 */
export class ConsistentHashBalancer implements LoadBalancer {
  readonly #key: (args: unknown) => string;
  readonly #replicas: number;
  #ringFor = '';
  #points: Uint32Array = new Uint32Array(0);
  #owners: Endpoint[] = [];

  constructor(options: ConsistentHashOptions = {}) {
    const field = options.field;
    this.#key =
      options.key ??
      ((args) => {
        if (field !== undefined && typeof args === 'object' && args !== null) {
          return String((args as Record<string, unknown>)[field]);
        }
        return JSON.stringify(args) ?? '';
      });
    this.#replicas = options.replicas ?? 160;
  }

  #build(candidates: readonly Endpoint[]): void {
    const id = candidates.map((e) => e.instance.instanceId + e.address).join('|');
    if (id === this.#ringFor) return;
    const entries: [number, Endpoint][] = [];
    for (const e of candidates) {
      for (let r = 0; r < this.#replicas; r++) entries.push([hash32(`${e.address}#${r}`), e]);
    }
    entries.sort((x, y) => x[0] - y[0]);
    this.#points = Uint32Array.from(entries.map((x) => x[0]));
    this.#owners = entries.map((x) => x[1]);
    this.#ringFor = id;
  }

  select(candidates: readonly Endpoint[], invocation: Invocation): Endpoint {
    if (candidates.length === 1) return candidates[0]!;
    this.#build(candidates);
    const h = hash32(this.#key(invocation.args));
    let lo = 0;
    let hi = this.#points.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#points[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    return this.#owners[lo === this.#points.length ? 0 : lo] ?? candidates[0]!;
  }
}

/** A balancer by name (each call makes a new one: balancers may hold per-service state). */
export function createLoadBalancer(
  name: LoadBalancerName,
  options: ConsistentHashOptions = {},
): LoadBalancer {
  switch (name) {
    case 'random':
      return new WeightedRandomBalancer();
    case 'round-robin':
      return new SmoothRoundRobinBalancer();
    case 'least-active':
      return new LeastActiveBalancer();
    case 'p2c-ewma':
      return new P2cEwmaBalancer();
    case 'consistent-hash':
      return new ConsistentHashBalancer(options);
  }
}
