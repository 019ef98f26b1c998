/**
 * Sharding algorithms: how a sharding-key value picks one of a table's shards. Each
 * algorithm maps a value to a shard index in `[0, shardCount)`; some can also name the
 * shards a range covers (range, interval, small integer ranges under mod), and the
 * hash-family ones expose a "gene" (the low bits that decide the shard) so that gene ids
 * made from a key land on that key's shard.
 */
import { ErrorCodes, PeakError } from '../core/errors.js';

/** A value a sharding key may hold: what arrives as a query parameter or literal. */
export type ShardValue = string | number | bigint | Date | boolean | null;

/** One end of a range condition (`>=`, `>`, `<`, `<=`, `BETWEEN`). */
export interface RangeBound {
  value: ShardValue;
  inclusive: boolean;
}

/** The seam: maps sharding-key values to shard indexes. */
export interface ShardingAlgorithm {
  /** The algorithm's name, for errors and `peak data route`. */
  readonly type: string;
  /** The shard index of one value, in `[0, shardCount)`; throws PEAK_DATA_ROUTE when none. */
  shard(value: ShardValue, shardCount: number): number;
  /** The shards a range may touch, or `undefined` when the algorithm cannot tell (scatter). */
  shardsForRange?(
    low: RangeBound | undefined,
    high: RangeBound | undefined,
    shardCount: number,
  ): number[] | undefined;
  /** The gene of a value (`geneBits` low bits that decide its shard), for gene ids. */
  gene?(value: ShardValue, geneBits: number): number;
  /** The shard of a gene made by `gene()`. */
  shardOfGene?(gene: number, shardCount: number): number;
}

/** Declarative algorithm specs (JSON-friendly, except `custom`). */
export type AlgorithmSpec =
  | { type: 'mod' }
  | { type: 'hash-mod' }
  | { type: 'range'; bounds: number[] }
  | {
      type: 'interval';
      start: string;
      unit: 'hour' | 'day' | 'month' | 'year';
      /** Units per shard. Default 1. */
      step?: number;
    }
  | { type: 'consistent-hash'; buckets?: number; virtualNodes?: number }
  | {
      type: 'custom';
      /** Returns the shard index of a value. */
      shard(value: ShardValue, shardCount: number): number;
      /** Optional: the shards a range covers; omit to scatter range queries. */
      shardsForRange?: ShardingAlgorithm['shardsForRange'];
    };

function routeError(message: string, value: unknown): PeakError {
  return new PeakError(ErrorCodes.DATA_ROUTE, message, {
    details: { value: typeof value === 'bigint' ? value.toString() : value },
  });
}

/** The value as an exact integer (bigint), or throws PEAK_DATA_ROUTE. */
export function toBigInt(value: ShardValue, algorithm: string): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  if (typeof value === 'string' && /^-?\d+$/.test(value.trim())) return BigInt(value.trim());
  throw routeError(
    `${algorithm} sharding needs an integer sharding key, got ${JSON.stringify(String(value))}`,
    value,
  );
}

function toNumber(value: ShardValue, algorithm: string): number {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) {
    return Number(value);
  }
  throw routeError(
    `${algorithm} sharding needs a numeric sharding key, got ${JSON.stringify(String(value))}`,
    value,
  );
}

function toTime(value: ShardValue): number {
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'number') return value;
  if (typeof value === 'string') {
    const t = Date.parse(value);
    if (!Number.isNaN(t)) return t;
  }
  throw routeError(
    `interval sharding needs a timestamp (Date, ISO string or epoch ms), got ${JSON.stringify(String(value))}`,
    value,
  );
}

/** The canonical text of a value for hashing: `42`, `'42'` and `42n` hash alike. */
function canonical(value: ShardValue): string {
  if (value === null) throw routeError('a NULL sharding key matches no shard', value);
  if (value instanceof Date) return value.toISOString();
  // Integers hash alike in every form: 42, 42n, '42', '042', '42.00'.
  if (typeof value === 'string' && /^-?\d+(\.0*)?$/.test(value.trim())) {
    return BigInt(value.trim().split('.')[0]!).toString();
  }
  return String(value);
}

/** FNV-1a, 32 bits, over UTF-16 code units: stable across processes and versions. */
export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // Final avalanche so that consecutive keys spread over low bits too.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

function mod(v: bigint, n: number): number {
  const m = v % BigInt(n);
  return Number(m < 0n ? m + BigInt(n) : m);
}

/** `key mod shardCount` over integers; small integer ranges are enumerated. */
export class ModAlgorithm implements ShardingAlgorithm {
  readonly type = 'mod';
  shard(value: ShardValue, shardCount: number): number {
    return mod(toBigInt(value, 'mod'), shardCount);
  }
  shardsForRange(low: RangeBound | undefined, high: RangeBound | undefined, shardCount: number) {
    if (low === undefined || high === undefined) return undefined;
    let lo: bigint;
    let hi: bigint;
    try {
      lo = toBigInt(low.value, 'mod');
      hi = toBigInt(high.value, 'mod');
    } catch {
      return undefined; // a non-integer bound: scatter, and let PostgreSQL compare
    }
    if (!low.inclusive) lo++;
    if (!high.inclusive) hi--;
    if (hi < lo) return [];
    if (hi - lo + 1n >= BigInt(shardCount)) return undefined;
    const out = new Set<number>();
    for (let v = lo; v <= hi; v++) out.add(mod(v, shardCount));
    return [...out];
  }
  gene(value: ShardValue, geneBits: number): number {
    return mod(toBigInt(value, 'mod'), 2 ** geneBits);
  }
  shardOfGene(gene: number, shardCount: number): number {
    return gene % shardCount;
  }
}

/** `fnv1a32(key) mod shardCount`: any key type, spreads sequential keys. */
export class HashModAlgorithm implements ShardingAlgorithm {
  readonly type = 'hash-mod';
  shard(value: ShardValue, shardCount: number): number {
    return fnv1a32(canonical(value)) % shardCount;
  }
  gene(value: ShardValue, geneBits: number): number {
    return fnv1a32(canonical(value)) % 2 ** geneBits;
  }
  shardOfGene(gene: number, shardCount: number): number {
    return gene % shardCount;
  }
}

/** Shard i holds `[bounds[i-1], bounds[i])`; shard 0 is below `bounds[0]`. */
export class RangeAlgorithm implements ShardingAlgorithm {
  readonly type = 'range';
  readonly #bounds: number[];
  constructor(bounds: number[]) {
    this.#bounds = bounds;
  }
  shard(value: ShardValue): number {
    const v = toNumber(value, 'range');
    let i = 0;
    while (i < this.#bounds.length && v >= this.#bounds[i]!) i++;
    return i;
  }
  shardsForRange(low: RangeBound | undefined, high: RangeBound | undefined, shardCount: number) {
    const first = low === undefined ? 0 : this.shard(low.value);
    const last = high === undefined ? shardCount - 1 : this.shard(high.value);
    const out: number[] = [];
    for (let i = first; i <= last; i++) out.push(i);
    return out;
  }
}

const UNIT_MS = { hour: 3_600_000, day: 86_400_000 } as const;

/** Time buckets from `start`: shard i holds the i-th `step × unit` interval. */
export class IntervalAlgorithm implements ShardingAlgorithm {
  readonly type = 'interval';
  readonly #start: Date;
  readonly #unit: 'hour' | 'day' | 'month' | 'year';
  readonly #step: number;
  constructor(start: Date, unit: 'hour' | 'day' | 'month' | 'year', step: number) {
    this.#start = start;
    this.#unit = unit;
    this.#step = step;
  }
  #index(t: number): number {
    const s = this.#start;
    if (this.#unit === 'hour' || this.#unit === 'day') {
      return Math.floor((t - s.getTime()) / (UNIT_MS[this.#unit] * this.#step));
    }
    const d = new Date(t);
    let months =
      (d.getUTCFullYear() - s.getUTCFullYear()) * 12 + (d.getUTCMonth() - s.getUTCMonth());
    // Before the start's day-of-month and time within the month: still the previous month.
    const startInMonth = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
    const offsetStart = s.getTime() - Date.UTC(s.getUTCFullYear(), s.getUTCMonth(), 1);
    if (t - startInMonth < offsetStart) months--;
    const units = this.#unit === 'year' ? Math.floor(months / 12) : months;
    return Math.floor(units / this.#step);
  }
  shard(value: ShardValue, shardCount: number): number {
    const i = this.#index(toTime(value));
    if (i < 0 || i >= shardCount) {
      throw routeError(
        `interval sharding: ${String(value instanceof Date ? value.toISOString() : value)} falls outside the ${shardCount} declared intervals from ${this.#start.toISOString()}; add shards or check the value`,
        value,
      );
    }
    return i;
  }
  shardsForRange(low: RangeBound | undefined, high: RangeBound | undefined, shardCount: number) {
    const first = low === undefined ? 0 : Math.max(0, this.#index(toTime(low.value)));
    const last =
      high === undefined
        ? shardCount - 1
        : Math.min(shardCount - 1, this.#index(toTime(high.value)));
    const out: number[] = [];
    for (let i = first; i <= last; i++) out.push(i);
    return out;
  }
}

/**
 * Consistent hashing over virtual buckets: a key hashes to one of `buckets` (a power of
 * two), buckets sit on a hash ring with `virtualNodes` points per shard. Adding a shard
 * moves only the buckets the new points take over. The bucket is the key's gene.
 */
export class ConsistentHashAlgorithm implements ShardingAlgorithm {
  readonly type = 'consistent-hash';
  readonly buckets: number;
  readonly #virtualNodes: number;
  readonly #maps = new Map<number, Uint16Array>();
  constructor(buckets: number, virtualNodes: number) {
    this.buckets = buckets;
    this.#virtualNodes = virtualNodes;
  }
  #map(shardCount: number): Uint16Array {
    let map = this.#maps.get(shardCount);
    if (map !== undefined) return map;
    const ring: { point: number; shard: number }[] = [];
    for (let s = 0; s < shardCount; s++) {
      for (let v = 0; v < this.#virtualNodes; v++) {
        ring.push({ point: fnv1a32(`shard-${s}#${v}`), shard: s });
      }
    }
    ring.sort((a, b) => a.point - b.point || a.shard - b.shard);
    map = new Uint16Array(this.buckets);
    for (let b = 0; b < this.buckets; b++) {
      const p = fnv1a32(`bucket-${b}`);
      let lo = 0;
      let hi = ring.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (ring[mid]!.point < p) lo = mid + 1;
        else hi = mid;
      }
      map[b] = ring[lo % ring.length]!.shard;
    }
    this.#maps.set(shardCount, map);
    return map;
  }
  shard(value: ShardValue, shardCount: number): number {
    return this.#map(shardCount)[fnv1a32(canonical(value)) % this.buckets]!;
  }
  gene(value: ShardValue, geneBits: number): number {
    return (fnv1a32(canonical(value)) % this.buckets) % 2 ** geneBits;
  }
  shardOfGene(gene: number, shardCount: number): number {
    return this.#map(shardCount)[gene % this.buckets]!;
  }
}

/** Wraps a user function as an algorithm. */
class CustomAlgorithm implements ShardingAlgorithm {
  readonly type = 'custom';
  readonly shardsForRange: ShardingAlgorithm['shardsForRange'];
  readonly #fn: (value: ShardValue, shardCount: number) => number;
  constructor(spec: Extract<AlgorithmSpec, { type: 'custom' }>) {
    this.#fn = spec.shard;
    this.shardsForRange = spec.shardsForRange;
  }
  shard(value: ShardValue, shardCount: number): number {
    const s = this.#fn(value, shardCount);
    if (!Number.isInteger(s) || s < 0 || s >= shardCount) {
      throw routeError(
        `custom sharding function returned ${s} for ${JSON.stringify(String(value))}; it must return an integer in [0, ${shardCount})`,
        value,
      );
    }
    return s;
  }
}

function layoutError(where: string, message: string): PeakError {
  return new PeakError(ErrorCodes.DATA_LAYOUT, `data layout: ${where}: ${message}`, {
    details: { input: where },
  });
}

/** Builds (and validates) an algorithm from its spec; `where` names it in errors. */
export function createAlgorithm(
  spec: AlgorithmSpec,
  shardCount: number,
  where: string,
): ShardingAlgorithm {
  switch (spec?.type) {
    case 'mod':
      return new ModAlgorithm();
    case 'hash-mod':
      return new HashModAlgorithm();
    case 'range': {
      const b = spec.bounds;
      if (!Array.isArray(b) || b.some((x, i) => !Number.isFinite(x) || (i > 0 && x <= b[i - 1]!))) {
        throw layoutError(where, 'range bounds must be a strictly increasing list of numbers');
      }
      if (b.length + 1 !== shardCount) {
        throw layoutError(
          where,
          `${b.length} range bounds make ${b.length + 1} ranges, but the table has ${shardCount} shards; give shardCount - 1 bounds`,
        );
      }
      return new RangeAlgorithm(b);
    }
    case 'interval': {
      const start = new Date(spec.start);
      if (Number.isNaN(start.getTime())) {
        throw layoutError(where, `interval start ${JSON.stringify(spec.start)} is not a date`);
      }
      if (!['hour', 'day', 'month', 'year'].includes(spec.unit)) {
        throw layoutError(where, `interval unit must be hour, day, month or year`);
      }
      const step = spec.step ?? 1;
      if (!Number.isInteger(step) || step < 1) {
        throw layoutError(where, 'interval step must be a positive integer');
      }
      return new IntervalAlgorithm(start, spec.unit, step);
    }
    case 'consistent-hash': {
      const buckets = spec.buckets ?? 1024;
      if (!Number.isInteger(buckets) || buckets < shardCount || (buckets & (buckets - 1)) !== 0) {
        throw layoutError(
          where,
          `consistent-hash buckets must be a power of two and at least the shard count (${shardCount}), got ${buckets}`,
        );
      }
      const virtualNodes = spec.virtualNodes ?? 64;
      if (!Number.isInteger(virtualNodes) || virtualNodes < 1) {
        throw layoutError(where, 'consistent-hash virtualNodes must be a positive integer');
      }
      if (shardCount > 65535) throw layoutError(where, 'at most 65535 shards');
      return new ConsistentHashAlgorithm(buckets, virtualNodes);
    }
    case 'custom':
      if (typeof spec.shard !== 'function') {
        throw layoutError(where, 'a custom algorithm needs a shard(value, shardCount) function');
      }
      return new CustomAlgorithm(spec);
    default:
      throw layoutError(
        where,
        `unknown algorithm ${JSON.stringify((spec as { type?: unknown } | undefined)?.type)}; use mod, hash-mod, range, interval, consistent-hash or custom`,
      );
  }
}
