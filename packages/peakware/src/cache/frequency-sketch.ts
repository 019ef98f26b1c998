/**
 * A count-min sketch of access frequencies with periodic halving (TinyLFU's "reset"), as
 * Caffeine's `FrequencySketch`: four counters per key, capped at 15, each in its own row;
 * the estimate is the smallest. After `10 × width` increments every counter is halved, so
 * the sketch remembers recent popularity and forgets history. Memory is fixed: 4 rows ×
 * width bytes, whatever the number of distinct keys.
 */

const MAX_COUNT = 15;
// Odd 32-bit multipliers, one per row (from Caffeine's seeds, truncated).
const SEEDS = [0x97cb3127, 0xb092_6b3d, 0xc3a5c85d, 0x9e3779b9];

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
  readonly #mask: number;
  readonly #shift: number;
  readonly #sampleSize: number;
  #additions = 0;

  /** `expectedKeys`: about how many keys matter at once (the cache's capacity). */
  constructor(expectedKeys: number) {
    let width = 16;
    while (width < expectedKeys) width *= 2;
    this.#table = new Uint8Array(width * 4);
    this.#mask = width - 1;
    this.#shift = Math.clz32(width) + 1; // 32 - log2(width): keeps the top log2(width) bits
    this.#sampleSize = 10 * width;
  }

  #index(hash: number, row: number): number {
    const h = Math.imul(hash, SEEDS[row]!) >>> 0;
    // The high bits of the product are the best mixed; `row * width` selects the row.
    return row * (this.#mask + 1) + (h >>> this.#shift);
  }

  /** Counts one access of the key with this hash. */
  increment(hash: number): void {
    const t = this.#table;
    let added = false;
    for (let row = 0; row < 4; row++) {
      const i = this.#index(hash, row);
      if (t[i]! < MAX_COUNT) {
        t[i]!++;
        added = true;
      }
    }
    if (added && ++this.#additions >= this.#sampleSize) this.#reset();
  }

  /** The estimated number of recent accesses (0–15) of the key with this hash. */
  frequency(hash: number): number {
    const t = this.#table;
    let min = MAX_COUNT;
    for (let row = 0; row < 4; row++) {
      const c = t[this.#index(hash, row)]!;
      if (c < min) min = c;
    }
    return min;
  }

  #reset(): void {
    const t = this.#table;
    for (let i = 0; i < t.length; i++) t[i] = t[i]! >>> 1;
    this.#additions = Math.floor(this.#additions / 2);
  }
}
