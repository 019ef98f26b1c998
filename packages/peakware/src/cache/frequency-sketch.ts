/**
 * A count-min sketch of access frequencies with periodic halving (TinyLFU's "reset"), laid
 * out as Caffeine's current `FrequencySketch`: a key's four counters (capped at 15) sit in
 * one 64-byte block, one in each 16-byte row of it, so counting an access touches one cache
 * line instead of four scattered ones; the estimate is the smallest of the four. After
 * `10 × width` increments every counter is halved, so the sketch remembers recent
 * popularity and forgets history. Memory is fixed: 8 bytes per expected key (a power of
 * two), whatever the number of distinct keys.
 */

const MAX_COUNT = 15;

/** The 32-bit FNV-1a hash of a string's UTF-16 code units. */
export function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Approximate per-key access counts in fixed memory. */
export class FrequencySketch {
  readonly #table: Uint8Array;
  readonly #shift: number;
  readonly #sampleSize: number;
  #additions = 0;

  /** `expectedKeys`: about how many keys matter at once (the cache's capacity). */
  constructor(expectedKeys: number) {
    let width = 16;
    while (width < expectedKeys) width *= 2;
    const blocks = width / 8; // 64 bytes a block, 8 bytes per expected key; at least 2
    this.#table = new Uint8Array(blocks * 64);
    // The product's top log2(blocks) bits pick the block (the best mixed bits).
    this.#shift = 32 - Math.log2(blocks);
    this.#sampleSize = 10 * width;
  }

  /** The block's first byte for a hash. */
  #block(hash: number): number {
    return (Math.imul(hash, 0x9e3779b9) >>> this.#shift) << 6;
  }

  /** The 16 bits that pick a counter in each row (4 bits a row), independent of the block's. */
  static #slots(hash: number): number {
    const h = Math.imul(hash ^ (hash >>> 16), 0x85ebca6b);
    return h ^ (h >>> 13);
  }

  /** Counts one access of the key with this hash. */
  increment(hash: number): void {
    const t = this.#table;
    const b = this.#block(hash);
    const s = FrequencySketch.#slots(hash);
    const i0 = b + (s & 15);
    const i1 = b + 16 + ((s >>> 4) & 15);
    const i2 = b + 32 + ((s >>> 8) & 15);
    const i3 = b + 48 + ((s >>> 12) & 15);
    let added = false;
    if (t[i0]! < MAX_COUNT) {
      t[i0]!++;
      added = true;
    }
    if (t[i1]! < MAX_COUNT) {
      t[i1]!++;
      added = true;
    }
    if (t[i2]! < MAX_COUNT) {
      t[i2]!++;
      added = true;
    }
    if (t[i3]! < MAX_COUNT) {
      t[i3]!++;
      added = true;
    }
    if (added && ++this.#additions >= this.#sampleSize) this.#reset();
  }

  /** The estimated number of recent accesses (0–15) of the key with this hash. */
  frequency(hash: number): number {
    const t = this.#table;
    const b = this.#block(hash);
    const s = FrequencySketch.#slots(hash);
    return Math.min(
      t[b + (s & 15)]!,
      t[b + 16 + ((s >>> 4) & 15)]!,
      t[b + 32 + ((s >>> 8) & 15)]!,
      t[b + 48 + ((s >>> 12) & 15)]!,
    );
  }

  #reset(): void {
    const t = this.#table;
    for (let i = 0; i < t.length; i++) t[i] = t[i]! >>> 1;
    this.#additions = Math.floor(this.#additions / 2);
  }
}
