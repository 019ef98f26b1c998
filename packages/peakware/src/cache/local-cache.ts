/**
 * The in-process tier (L1): a W-TinyLFU cache bounded by entries and by bytes, as Caffeine's.
 * New entries enter a small LRU window (1 % of the entries); what falls out of the window
 * competes for a place in the main segmented LRU (probation, then protected after a second
 * hit) against the main area's least recently used entry, and wins only when the frequency
 * sketch says it is accessed more often. A scan of one-off keys therefore churns the window
 * and never flushes the popular keys, which a plain LRU would lose. Expiry is lazy: an entry
 * past its `expiresAt` is gone when next read, and eviction takes it in time.
 *
 * Layout, as lru-cache's: entries are slots in parallel arrays (key, value, expiry, size,
 * hash, segment, and the recency lists' prev/next as typed arrays), found through one
 * `Map<string, slot>`. A hit is a map lookup, one sketch cache line and a few typed-array
 * writes; it allocates nothing and touches no hash table but the lookup (a `Map` used as an
 * LRU pays a delete and an insert per hit, and its iterator walks the deleted slots).
 */
import { coarseNow } from '../guard/coarse-clock.js';
import { FrequencySketch, hashKey } from './frequency-sketch.js';

/** Options of {@link LocalCache}. */
export interface LocalCacheOptions {
  /** At most this many entries; default 10 000. */
  maxEntries?: number;
  /** At most this many bytes of values (as the caller sizes them); default 64 MiB. */
  maxBytes?: number;
  /** The clock, epoch ms; default the guard's coarse clock (Date.now from a ticker thread, at most ~1 ms old). */
  now?: () => number;
}

/** Counters since construction. */
export interface LocalCacheStats {
  entries: number;
  bytes: number;
  hits: number;
  misses: number;
  evictions: number;
  /** Candidates the admission policy refused (less popular than the entry they would evict). */
  rejections: number;
}

// Slots 0-2 are the sentinels (list heads) of the three segments; a segment's id is its
// sentinel's slot. In each circular list, next[head] is the least recently used entry.
const WINDOW = 0;
const PROBATION = 1;
const PROTECTED = 2;
const FIRST_SLOT = 3;
const INITIAL_SLOTS = 1024;

/** A bounded in-process cache with W-TinyLFU admission and per-entry expiry. */
export class LocalCache<V> {
  readonly maxEntries: number;
  readonly maxBytes: number;
  readonly #now: () => number;
  readonly #sketch: FrequencySketch;
  readonly #index = new Map<string, number>();
  readonly #windowMax: number;
  readonly #protectedMax: number;
  readonly #maxSlots: number;
  #keys: (string | undefined)[] = [];
  #values: (V | undefined)[] = [];
  #expires = new Float64Array(0);
  #bytesOf = new Float64Array(0);
  #hash = new Uint32Array(0);
  #segment = new Uint8Array(0);
  #prev = new Uint32Array(0);
  #next = new Uint32Array(0);
  readonly #free: number[] = [];
  #top = FIRST_SLOT; // slots below are in use or free-listed
  readonly #sizes = [0, 0, 0];
  #bytes = 0;
  #hits = 0;
  #misses = 0;
  #evictions = 0;
  #rejections = 0;

  constructor(options: LocalCacheOptions = {}) {
    this.maxEntries = Math.max(1, Math.floor(options.maxEntries ?? 10_000));
    this.maxBytes = Math.max(1, options.maxBytes ?? 64 * 1024 * 1024);
    this.#now = options.now ?? coarseNow;
    this.#sketch = new FrequencySketch(this.maxEntries);
    this.#windowMax = Math.max(1, Math.floor(this.maxEntries * 0.01));
    this.#protectedMax = Math.floor((this.maxEntries - this.#windowMax) * 0.8);
    // A new entry enters the window before one leaves it: one slot over maxEntries.
    this.#maxSlots = FIRST_SLOT + this.maxEntries + 1;
    this.#grow(Math.min(this.#maxSlots, FIRST_SLOT + INITIAL_SLOTS));
    for (const head of [WINDOW, PROBATION, PROTECTED]) {
      this.#prev[head] = head;
      this.#next[head] = head;
    }
  }

  /** Entries held now (expired ones not yet evicted included). */
  get size(): number {
    return this.#index.size;
  }

  /**
   * The value, or undefined when absent or expired; counts the access and refreshes recency.
   * `now` (epoch ms) saves a clock read when the caller has one.
   */
  get(key: string, now?: number): V | undefined {
    const i = this.#index.get(key);
    if (i === undefined) {
      this.#misses++;
      this.#sketch.increment(hashKey(key));
      return undefined;
    }
    this.#sketch.increment(this.#hash[i]!);
    if (this.#expires[i]! <= (now ?? this.#now())) {
      this.#remove(i);
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    this.#touch(i);
    return this.#values[i];
  }

  /** The value without counting an access or changing recency. */
  peek(key: string): V | undefined {
    const i = this.#index.get(key);
    return i === undefined || this.#expires[i]! <= this.#now() ? undefined : this.#values[i];
  }

  /** Stores a value until `expiresAt` (epoch ms), `bytes` counted against `maxBytes`. */
  set(key: string, value: V, expiresAt: number, bytes = 1): void {
    if (bytes > this.maxBytes) {
      this.delete(key);
      return;
    }
    const existing = this.#index.get(key);
    if (existing !== undefined) {
      this.#bytes += bytes - this.#bytesOf[existing]!;
      this.#values[existing] = value;
      this.#bytesOf[existing] = bytes;
      this.#expires[existing] = expiresAt;
      this.#touch(existing);
      this.#evictForBytes();
      return;
    }
    const i = this.#allocate();
    this.#keys[i] = key;
    this.#values[i] = value;
    this.#expires[i] = expiresAt;
    this.#bytesOf[i] = bytes;
    this.#hash[i] = hashKey(key);
    this.#index.set(key, i);
    this.#link(i, WINDOW);
    this.#bytes += bytes;
    if (this.#sizes[WINDOW]! > this.#windowMax) this.#admitFromWindow();
    this.#evictForBytes();
  }

  /** Removes the key; true when it was there. */
  delete(key: string): boolean {
    const i = this.#index.get(key);
    if (i === undefined) return false;
    this.#remove(i);
    return true;
  }

  /** Removes every entry (the frequency history stays). */
  clear(): void {
    for (const i of this.#index.values()) this.#release(i);
    this.#index.clear();
    for (const head of [WINDOW, PROBATION, PROTECTED]) {
      this.#prev[head] = head;
      this.#next[head] = head;
      this.#sizes[head] = 0;
    }
    this.#bytes = 0;
  }

  /** Every live key (for tag bookkeeping and tests); expired ones are skipped. */
  *keys(): IterableIterator<string> {
    const now = this.#now();
    for (const [k, i] of this.#index) if (this.#expires[i]! > now) yield k;
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

  // --- recency lists ---------------------------------------------------------------------

  /** Appends slot `i` to segment `seg` as its most recently used entry. */
  #link(i: number, seg: number): void {
    const tail = this.#prev[seg]!;
    this.#prev[i] = tail;
    this.#next[i] = seg;
    this.#next[tail] = i;
    this.#prev[seg] = i;
    this.#segment[i] = seg;
    this.#sizes[seg]!++;
  }

  #unlink(i: number): void {
    const p = this.#prev[i]!;
    const n = this.#next[i]!;
    this.#next[p] = n;
    this.#prev[n] = p;
    this.#sizes[this.#segment[i]!]!--;
  }

  /** The least recently used slot of a segment, or -1 when it is empty. */
  #first(seg: number): number {
    return this.#sizes[seg] === 0 ? -1 : this.#next[seg]!;
  }

  #touch(i: number): void {
    const seg = this.#segment[i]!;
    if (seg !== PROBATION) {
      // Move to the most recently used end of its own segment.
      if (this.#prev[seg] === i) return;
      const p = this.#prev[i]!;
      const n = this.#next[i]!;
      this.#next[p] = n;
      this.#prev[n] = p;
      const tail = this.#prev[seg]!;
      this.#prev[i] = tail;
      this.#next[i] = seg;
      this.#next[tail] = i;
      this.#prev[seg] = i;
      return;
    }
    // A second hit in probation earns a protected place; protected overflow is demoted.
    this.#unlink(i);
    this.#link(i, PROTECTED);
    if (this.#sizes[PROTECTED]! > this.#protectedMax) {
      const demoted = this.#next[PROTECTED]!;
      this.#unlink(demoted);
      this.#link(demoted, PROBATION);
    }
  }

  // --- admission and eviction ------------------------------------------------------------

  #admitFromWindow(): void {
    const cand = this.#next[WINDOW]!;
    this.#unlink(cand);
    if (this.#sizes[PROBATION]! + this.#sizes[PROTECTED]! < this.maxEntries - this.#windowMax) {
      this.#link(cand, PROBATION);
      return;
    }
    const victim = this.#sizes[PROBATION]! > 0 ? this.#next[PROBATION]! : this.#next[PROTECTED]!;
    // An expired victim always loses; otherwise the more frequent key keeps the place.
    if (
      this.#expires[victim]! <= this.#now() ||
      this.#sketch.frequency(this.#hash[cand]!) > this.#sketch.frequency(this.#hash[victim]!)
    ) {
      this.#remove(victim);
      this.#evictions++;
      this.#link(cand, PROBATION);
    } else {
      this.#index.delete(this.#keys[cand]!);
      this.#bytes -= this.#bytesOf[cand]!;
      this.#release(cand);
      this.#rejections++;
    }
  }

  #evictForBytes(): void {
    while (this.#bytes > this.maxBytes) {
      let victim = this.#first(PROBATION);
      if (victim < 0) victim = this.#first(WINDOW);
      if (victim < 0) victim = this.#first(PROTECTED);
      if (victim < 0) return;
      this.#remove(victim);
      this.#evictions++;
    }
  }

  #remove(i: number): void {
    this.#unlink(i);
    this.#index.delete(this.#keys[i]!);
    this.#bytes -= this.#bytesOf[i]!;
    this.#release(i);
  }

  // --- slots -----------------------------------------------------------------------------

  #allocate(): number {
    const reused = this.#free.pop();
    if (reused !== undefined) return reused;
    if (this.#top === this.#expires.length)
      this.#grow(Math.min(this.#maxSlots, this.#expires.length * 2));
    return this.#top++;
  }

  /** Drops a slot's references (so its value can be collected) and frees it. */
  #release(i: number): void {
    this.#keys[i] = undefined;
    this.#values[i] = undefined;
    this.#free.push(i);
  }

  #grow(slots: number): void {
    const grown = <A extends Float64Array | Uint32Array | Uint8Array>(old: A, next: A): A => {
      next.set(old);
      return next;
    };
    this.#expires = grown(this.#expires, new Float64Array(slots));
    this.#bytesOf = grown(this.#bytesOf, new Float64Array(slots));
    this.#hash = grown(this.#hash, new Uint32Array(slots));
    this.#segment = grown(this.#segment, new Uint8Array(slots));
    this.#prev = grown(this.#prev, new Uint32Array(slots));
    this.#next = grown(this.#next, new Uint32Array(slots));
    for (let i = this.#keys.length; i < slots; i++) {
      this.#keys.push(undefined);
      this.#values.push(undefined);
    }
  }
}
