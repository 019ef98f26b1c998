/**
 * One cached value with its lifetimes: fresh until `freshUntil`, then served while one
 * refresh runs until `staleUntil` (stale-while-revalidate), and kept to serve when the loader
 * fails until `graceUntil`. In L2 an entry is stored as an envelope,
 * `freshUntil|staleUntil|graceUntil|negative|payload`, parsed without a JSON pass over the
 * header. TTLs are spread by ± `jitter` so keys loaded together do not expire together.
 */
import type { ResolvedCacheOptions } from './cache-options.js';

/** A cached value (or a cached "not found") and its lifetimes, epoch ms. */
export interface CacheEntry {
  value: unknown;
  /** True for a cached "not found" (a loader's `undefined`). */
  negative: boolean;
  freshUntil: number;
  staleUntil: number;
  graceUntil: number;
  /** The key's L2 version stamp this copy belongs to (0: none known). */
  version: number;
  tags: readonly string[];
  /** Serialized size, counted against L1's maxBytes. */
  bytes: number;
}

/** An envelope read back from L2, before its payload is decoded. */
export interface Envelope {
  freshUntil: number;
  staleUntil: number;
  graceUntil: number;
  negative: boolean;
  payload: string;
}

/** `freshUntil|staleUntil|graceUntil|negative|payload`: parsed without a JSON pass over the header. */
export function encodeEnvelope(e: CacheEntry, payload: string): string {
  return `${e.freshUntil}|${e.staleUntil}|${e.graceUntil}|${e.negative ? 1 : 0}|${payload}`;
}

/** The envelope in `text`, or undefined when it is not one. */
export function decodeEnvelope(text: string): Envelope | undefined {
  const a = text.indexOf('|');
  const b = text.indexOf('|', a + 1);
  const c = text.indexOf('|', b + 1);
  const d = text.indexOf('|', c + 1);
  if (a < 0 || b < 0 || c < 0 || d < 0) return undefined;
  const freshUntil = Number(text.slice(0, a));
  const staleUntil = Number(text.slice(a + 1, b));
  const graceUntil = Number(text.slice(b + 1, c));
  if (!Number.isFinite(freshUntil) || !Number.isFinite(staleUntil) || !Number.isFinite(graceUntil))
    return undefined;
  return {
    freshUntil,
    staleUntil,
    graceUntil,
    negative: text[c + 1] === '1',
    payload: text.slice(d + 1),
  };
}

/** Makes entries with a cache's lifetimes (TTL with jitter, stale-while-revalidate, grace). */
export class EntryLifetimes {
  readonly #opts: ResolvedCacheOptions;
  readonly #now: () => number;

  constructor(opts: ResolvedCacheOptions, now: () => number) {
    this.#opts = opts;
    this.#now = now;
  }

  /** A new entry, fresh from now for `ttlMs` (default the cache's; `negativeTtlMs` for "not found"). */
  create(
    value: unknown,
    negative: boolean,
    ttlMs: number | undefined,
    tags: readonly string[],
  ): CacheEntry {
    const o = this.#opts;
    const now = this.#now();
    const fresh = now + this.#ttl(negative ? o.negativeTtlMs : (ttlMs ?? o.ttlMs));
    return {
      value,
      negative,
      freshUntil: fresh,
      staleUntil: fresh + o.staleWhileRevalidateMs,
      graceUntil: fresh + o.graceMs,
      version: 0,
      tags,
      bytes: 1,
    };
  }

  /** How long L2 keeps an entry: until its stale or grace window ends, whichever is later. */
  remoteTtl(e: CacheEntry): number {
    return Math.max(e.staleUntil, e.graceUntil) - this.#now();
  }

  #ttl(ms: number): number {
    const jitter = this.#opts.jitter;
    return jitter === 0 ? ms : ms * (1 - jitter + 2 * jitter * Math.random());
  }
}
