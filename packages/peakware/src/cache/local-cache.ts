/**
 * The in-process tier (L1): a W-TinyLFU cache bounded by entries and by bytes, as Caffeine's.
 * New entries enter a small LRU window (1 % of the entries); what falls out of the window
 * competes for a place in the main segmented LRU (probation, then protected after a second
 * hit) against the main area's least recently used entry, and wins only when the frequency
 * sketch says it is accessed more often. A scan of one-off keys therefore churns the window
 * and never flushes the popular keys, which a plain LRU would lose. Expiry is lazy: an entry
 * past its `expiresAt` is gone when next read, and eviction takes it in time.
 */
import { FrequencySketch, hashKey } from './frequency-sketch.js';

/** Options of {@link LocalCache}. */
export interface LocalCacheOptions {
  /** At most this many entries; default 10 000. */
  maxEntries?: number;
  /** At most this many bytes of values (as the caller sizes them); default 64 MiB. */
  maxBytes?: number;
  /** The clock, epoch ms; default `Date.now`. */
  now?: () => number;
}

interface Node<V> {
  value: V;
  bytes: number;
  expiresAt: number;
  hash: number;
  segment: 0 | 1 | 2; // window, probation, protected
}

const WINDOW = 0;
const PROBATION = 1;
const PROTECTED = 2;

/** Why an entry left (for stats). */
export interface LocalCacheStats {
  entries: number;
  bytes: number;
  hits: number;
  misses: number;
  evictions: number;
  /** Candidates the admission policy refused (less popular than the entry they would evict). */
  rejections: number;
}

/** A bounded in-process cache with W-TinyLFU admission and per-entry expiry. */
export class LocalCache<V> {
  readonly maxEntries: number;
  readonly maxBytes: number;
  readonly #now: () => number;
  readonly #sketch: FrequencySketch;
  // Maps keep insertion order: the first key is the least recently used.
  readonly #segments: [Map<string, Node<V>>, Map<string, Node<V>>, Map<string, Node<V>>] = [
    new Map(),
    new Map(),
    new Map(),
  ];
  readonly #windowMax: number;
  readonly #protectedMax: number;
  #bytes = 0;
  #hits = 0;
  #misses = 0;
  #evictions = 0;
  #rejections = 0;

  constructor(options: LocalCacheOptions = {}) {
    this.maxEntries = Math.max(1, Math.floor(options.maxEntries ?? 10_000));
    this.maxBytes = Math.max(1, options.maxBytes ?? 64 * 1024 * 1024);
    this.#now = options.now ?? Date.now;
    this.#sketch = new FrequencySketch(this.maxEntries);
    this.#windowMax = Math.max(1, Math.floor(this.maxEntries * 0.01));
    this.#protectedMax = Math.floor((this.maxEntries - this.#windowMax) * 0.8);
  }

  /** Entries held now (expired ones not yet evicted included). */
  get size(): number {
    return this.#segments[0].size + this.#segments[1].size + this.#segments[2].size;
  }

  #find(key: string): Node<V> | undefined {
    return (
      this.#segments[PROTECTED].get(key) ??
      this.#segments[PROBATION].get(key) ??
      this.#segments[WINDOW].get(key)
    );
  }

  /** The value, or undefined when absent or expired; counts the access and refreshes recency. */
  get(key: string): V | undefined {
    const node = this.#find(key);
    if (node === undefined) {
      this.#misses++;
      this.#sketch.increment(hashKey(key));
      return undefined;
    }
    this.#sketch.increment(node.hash);
    if (node.expiresAt <= this.#now()) {
      this.#remove(key, node);
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    this.#touch(key, node);
    return node.value;
  }

  /** The value without counting an access or changing recency. */
  peek(key: string): V | undefined {
    const node = this.#find(key);
    return node === undefined || node.expiresAt <= this.#now() ? undefined : node.value;
  }

  /** Stores a value until `expiresAt` (epoch ms), `bytes` counted against `maxBytes`. */
  set(key: string, value: V, expiresAt: number, bytes = 1): void {
    if (bytes > this.maxBytes) {
      this.delete(key);
      return;
    }
    const existing = this.#find(key);
    if (existing !== undefined) {
      this.#bytes += bytes - existing.bytes;
      existing.value = value;
      existing.bytes = bytes;
      existing.expiresAt = expiresAt;
      this.#touch(key, existing);
      this.#evictForBytes();
      return;
    }
    const hash = hashKey(key);
    const node: Node<V> = { value, bytes, expiresAt, hash, segment: WINDOW };
    this.#segments[WINDOW].set(key, node);
    this.#bytes += bytes;
    if (this.#segments[WINDOW].size > this.#windowMax) this.#admitFromWindow();
    this.#evictForBytes();
  }

  /** Removes the key; true when it was there. */
  delete(key: string): boolean {
    const node = this.#find(key);
    if (node === undefined) return false;
    this.#remove(key, node);
    return true;
  }

  /** Removes every entry (the frequency history stays). */
  clear(): void {
    for (const s of this.#segments) s.clear();
    this.#bytes = 0;
  }

  /** Every live key (for tag bookkeeping and tests); expired ones are skipped. */
  *keys(): IterableIterator<string> {
    const now = this.#now();
    for (const s of this.#segments) for (const [k, n] of s) if (n.expiresAt > now) yield k;
  }

  /** Counters since construction. */
  stats(): LocalCacheStats {
    return {
      entries: this.size,
      bytes: this.#bytes,
      hits: this.#hits,
      misses: this.#misses,
      evictions: this.#evictions,
      rejections: this.#rejections,
    };
  }

  #touch(key: string, node: Node<V>): void {
    const seg = this.#segments[node.segment];
    if (node.segment === PROBATION) {
      // A second hit in probation earns a protected place; protected overflow is demoted.
      seg.delete(key);
      node.segment = PROTECTED;
      this.#segments[PROTECTED].set(key, node);
      if (this.#segments[PROTECTED].size > this.#protectedMax) {
        const [k, n] = this.#segments[PROTECTED].entries().next().value as [string, Node<V>];
        this.#segments[PROTECTED].delete(k);
        n.segment = PROBATION;
        this.#segments[PROBATION].set(k, n);
      }
      return;
    }
    seg.delete(key);
    seg.set(key, node);
  }

  #admitFromWindow(): void {
    const window = this.#segments[WINDOW];
    const [ck, cand] = window.entries().next().value as [string, Node<V>];
    window.delete(ck);
    const mainSize = this.#segments[PROBATION].size + this.#segments[PROTECTED].size;
    if (mainSize < this.maxEntries - this.#windowMax) {
      cand.segment = PROBATION;
      this.#segments[PROBATION].set(ck, cand);
      return;
    }
    const victimSeg =
      this.#segments[PROBATION].size > 0 ? this.#segments[PROBATION] : this.#segments[PROTECTED];
    const [vk, victim] = victimSeg.entries().next().value as [string, Node<V>];
    // An expired victim always loses; otherwise the more frequent key keeps the place.
    if (
      victim.expiresAt <= this.#now() ||
      this.#sketch.frequency(cand.hash) > this.#sketch.frequency(victim.hash)
    ) {
      victimSeg.delete(vk);
      this.#bytes -= victim.bytes;
      this.#evictions++;
      cand.segment = PROBATION;
      this.#segments[PROBATION].set(ck, cand);
    } else {
      this.#bytes -= cand.bytes;
      this.#rejections++;
    }
  }

  #evictForBytes(): void {
    while (this.#bytes > this.maxBytes) {
      const seg =
        this.#segments[PROBATION].size > 0
          ? this.#segments[PROBATION]
          : this.#segments[WINDOW].size > 0
            ? this.#segments[WINDOW]
            : this.#segments[PROTECTED];
      const first = seg.entries().next();
      if (first.done) return;
      const [k, n] = first.value;
      seg.delete(k);
      this.#bytes -= n.bytes;
      this.#evictions++;
    }
  }

  #remove(key: string, node: Node<V>): void {
    this.#segments[node.segment].delete(key);
    this.#bytes -= node.bytes;
  }
}
