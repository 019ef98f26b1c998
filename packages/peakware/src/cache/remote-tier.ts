/**
 * The seam between the cache and its shared tier (L2). Redis implements it
 * (`redis-tier.ts`, one Redis or a Redis Cluster); another store (memcached) would too. Keys here
 * are the cache's full keys (shadow prefix included); every key has a version stamp that
 * invalidations bump, so a load that raced an invalidation cannot write its old value back.
 */

/** What the shared tier holds for a key. */
export interface RemoteRead {
  /** The stored payload (the cache's envelope), or null. */
  payload: string | null;
  /** The key's version stamp now (0 when never invalidated). */
  version: number;
}

/** Called for each key another instance (or this one) invalidated or rewrote, with its new version. */
export type InvalidationListener = (key: string, version: number) => void;

/** The shared tier of a {@link Cache}. */
export interface RemoteTier {
  /** The payload and version stamp of a key, in one round trip. */
  read(key: string): Promise<RemoteRead>;
  /** Stores the payload for `ttlMs` only if the key's version is still `version`; false if an invalidation came between. */
  writeIfVersion(
    key: string,
    version: number,
    payload: string,
    ttlMs: number,
    tags: readonly string[],
  ): Promise<boolean>;
  /** Stores the payload unconditionally, bumps the version and tells every instance; the new version. */
  write(key: string, payload: string, ttlMs: number, tags: readonly string[]): Promise<number>;
  /** Removes the keys, bumps their versions and tells every instance. */
  invalidate(keys: readonly string[]): Promise<void>;
  /** Invalidates every key written with the tag; how many. */
  invalidateTag(tag: string): Promise<number>;
  /** Takes a short cross-process lock on a key's load; false when another process holds it. */
  tryLock(key: string, ttlMs: number): Promise<boolean>;
  /** Releases a lock taken by {@link tryLock}. */
  unlock(key: string): Promise<void>;
  /**
   * Delivers every invalidation to `onInvalidate`; `onResync` when messages may have been
   * missed (the subscription reconnected), so the caller drops its whole L1.
   */
  subscribe(onInvalidate: InvalidationListener, onResync: () => void): Promise<void>;
  /** Closes connections this tier opened. */
  close(): Promise<void>;
}
