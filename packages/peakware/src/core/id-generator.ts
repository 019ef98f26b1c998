/**
 * Time-ordered 64-bit ids (the Snowflake layout): 41 bits of milliseconds since the
 * Peakware epoch (2024-01-01T00:00:00Z, good until 2093), 10 bits of worker id, 12 bits of
 * sequence. Ids from one generator strictly increase; ids from different workers never
 * collide; sorting ids sorts by creation time to the millisecond.
 *
 * The clock never runs backwards here: if the wall clock steps back (NTP), the generator
 * keeps counting on its own last millisecond, borrowing sequence numbers from the future
 * instead of failing or repeating an id.
 */
import { randomFillSync } from 'node:crypto';
import { ErrorCodes, PeakError } from './errors.js';

/** 2024-01-01T00:00:00Z in epoch ms. */
export const PEAK_EPOCH_MS = 1_704_067_200_000;

/** Bits of the worker id: up to 1024 workers. */
export const WORKER_BITS = 10;
/** Bits of the per-millisecond sequence: up to 4096 ids per ms per worker. */
export const SEQUENCE_BITS = 12;

const MAX_WORKER = (1 << WORKER_BITS) - 1;
const MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1;
const MAX_TIMESTAMP = 2 ** 41 - 1;

/** Options for {@link IdGenerator}. */
export interface IdGeneratorOptions {
  /** This process's worker id, 0..1023, unique among live processes. Default 0. */
  workerId?: number;
  /** The clock, epoch ms. Default `Date.now`. */
  clock?: () => number;
}

/** The parts of an id, as {@link decodeId} returns them. */
export interface DecodedId {
  /** Creation time, epoch ms. */
  timestamp: number;
  workerId: number;
  sequence: number;
}

/** Makes time-ordered, unique 64-bit ids as `bigint` (or decimal strings for JSON). */
export class IdGenerator {
  /** The worker id stamped into every id. */
  readonly workerId: number;
  readonly #clock: () => number;
  #lastMs = -1;
  #sequence = 0;

  constructor(options: IdGeneratorOptions = {}) {
    const workerId = options.workerId ?? 0;
    if (!Number.isInteger(workerId) || workerId < 0 || workerId > MAX_WORKER) {
      throw new PeakError(
        ErrorCodes.ID_GENERATOR,
        `id generator: workerId must be an integer from 0 to ${MAX_WORKER}, got ${workerId}; give each live process its own worker id`,
        { details: { input: 'workerId' } },
      );
    }
    this.workerId = workerId;
    this.#clock = options.clock ?? Date.now;
  }

  /** The next id. */
  next(): bigint {
    let ms = this.#clock() - PEAK_EPOCH_MS;
    if (ms <= this.#lastMs) {
      // Same millisecond, or the clock stepped back: continue on our own timeline.
      ms = this.#lastMs;
      this.#sequence++;
      if (this.#sequence > MAX_SEQUENCE) {
        ms++;
        this.#sequence = 0;
      }
    } else {
      this.#sequence = 0;
    }
    if (ms < 0 || ms > MAX_TIMESTAMP) {
      throw new PeakError(
        ErrorCodes.ID_GENERATOR,
        `id generator: the clock reads ${new Date(ms + PEAK_EPOCH_MS).toISOString()}, outside the id range (2024-01-01 to 2093); check the system clock`,
      );
    }
    this.#lastMs = ms;
    return (
      (BigInt(ms) << BigInt(WORKER_BITS + SEQUENCE_BITS)) |
      (BigInt(this.workerId) << BigInt(SEQUENCE_BITS)) |
      BigInt(this.#sequence)
    );
  }

  /** The next id as a decimal string (JSON-safe: 64-bit ids exceed 2^53). */
  nextString(): string {
    return this.next().toString();
  }
}

/** The creation time, worker id and sequence inside an id made by {@link IdGenerator}. */
export function decodeId(id: bigint | string): DecodedId {
  let value: bigint;
  try {
    value = typeof id === 'bigint' ? id : BigInt(id);
  } catch {
    throw new PeakError(ErrorCodes.INVALID_ARGUMENT, `not a Peakware id: ${JSON.stringify(id)}`, {
      details: { input: 'id' },
    });
  }
  if (value < 0n || value >= 1n << 63n) {
    throw new PeakError(ErrorCodes.INVALID_ARGUMENT, `not a Peakware id (out of range): ${id}`, {
      details: { input: 'id' },
    });
  }
  return {
    timestamp: Number(value >> BigInt(WORKER_BITS + SEQUENCE_BITS)) + PEAK_EPOCH_MS,
    workerId: Number((value >> BigInt(SEQUENCE_BITS)) & BigInt(MAX_WORKER)),
    sequence: Number(value & BigInt(MAX_SEQUENCE)),
  };
}

const uuidPool = Buffer.allocUnsafe(16 * 256);
let uuidOffset = uuidPool.length;

/**
 * A UUID of version 7 (RFC 9562): 48 bits of epoch milliseconds, then 74 random bits.
 * Unique without any coordination between processes, and ordered by creation time to the
 * millisecond, so rows keyed by it go to the right edge of a btree index (a random UUID
 * touches a random leaf page per insert: more pages dirtied, and after every checkpoint a
 * full-page image in the WAL for each).
 */
export function uuidV7(now: number = Date.now()): string {
  // Random bytes drawn 256 UUIDs at a time, as crypto.randomUUID does (a randomBytes(16)
  // call each showed in the coordinator's profile).
  if (uuidOffset + 16 > uuidPool.length) {
    randomFillSync(uuidPool);
    uuidOffset = 0;
  }
  const b = uuidPool.subarray(uuidOffset, uuidOffset + 16);
  uuidOffset += 16;
  b.writeUIntBE(now, 0, 6);
  b[6] = (b[6]! & 0x0f) | 0x70;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
