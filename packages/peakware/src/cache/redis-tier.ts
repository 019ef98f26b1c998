/**
 * The cache's shared tier on Redis (ioredis). Reads are batched by this tier: every read
 * asked for in one event-loop turn goes out as ONE `MGET` of each key's payload and version
 * (up to 512 keys a command), so a busy process pays one command, one promise and one
 * timeout timer per batch instead of per read; other commands are auto-pipelined by ioredis. Keys live under `peak:cache:<name>:`: `k:<key>` the
 * payload, `v:<key>` its version stamp, `t:<tag>` a tag's member keys, `l:<key>` a load lock.
 * Writes and invalidations are Lua scripts, so the version check, the write and the
 * publish are one atomic step. Invalidations go over Redis pub/sub on one channel per cache:
 * the cache already depends on Redis, a publish reaches every subscriber in well under a
 * millisecond, and a missed message costs no more than an L1 TTL, because a reconnecting
 * subscriber drops its whole L1 (pub/sub has no replay; the MQ's durability would buy
 * nothing the TTL does not already bound, at a broker hop per change).
 *
 * On a **Redis Cluster** (`redis+cluster://host:port,…` or an ioredis `Cluster`) the same
 * model holds with the keys laid out for slots: `k:{<key>}`, `v:{<key>}` and `l:{<key>}`
 * share the key's hash tag, so a key's payload and version sit in one slot and its
 * scripts stay atomic, while different keys spread over the masters; a tag's set
 * `t:{<tag>}` has its own slot. What a single Redis does in one script across keys is then
 * per key: a batch read is one MGET per key (auto-pipelined to each node), a write adds
 * the key to its tag sets just before the versioned write (so a tag invalidation in
 * between bumps the version and the write is refused, as a race with any invalidation
 * is), a tag invalidation takes the set atomically (SMEMBERS + DEL) and then invalidates
 * each member, each with its own publish. Publishes reach every node's subscribers (the
 * cluster bus carries classic pub/sub).
 */
import { Command, type Redis } from 'ioredis';
import { isCluster, openRedis, type RedisClient } from './redis-connection.js';
import type { InvalidationListener, RemoteRead, RemoteTier } from './remote-tier.js';

/** Options of {@link RedisTier}. */
export interface RedisTierOptions {
  /** The cache's name: the key namespace and the invalidation channel. */
  name: string;
  /**
   * A Redis URL, a cluster URL (`redis+cluster://host:port,host:port`; this tier opens and
   * closes its connections) or an ioredis client or cluster client (yours).
   */
  redis: string | RedisClient;
  /** Per-command timeout when this tier opens the connection; default 50 ms. */
  commandTimeoutMs?: number;
  /** How long version stamps and tag sets outlive their last change; default 1 day. */
  versionTtlMs?: number;
}

const SET_IF_VERSION = `
local cur = tonumber(redis.call('GET', KEYS[2]) or '0')
if cur ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
for i = 3, #KEYS do
  redis.call('SADD', KEYS[i], ARGV[5])
  redis.call('PEXPIRE', KEYS[i], ARGV[4])
end
return 1`;

const WRITE = `
local v = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
for i = 3, #KEYS do
  redis.call('SADD', KEYS[i], ARGV[5])
  redis.call('PEXPIRE', KEYS[i], ARGV[4])
end
redis.call('PUBLISH', ARGV[3], cjson.encode({{ARGV[5], v}}))
return v`;

// KEYS: none (computed from the prefix, so single-node only); ARGV: prefix, channel, ttl, keys...
const INVALIDATE = `
local out = {}
for i = 4, #ARGV do
  local k = ARGV[i]
  local v = redis.call('INCR', ARGV[1] .. 'v:' .. k)
  redis.call('PEXPIRE', ARGV[1] .. 'v:' .. k, ARGV[3])
  redis.call('DEL', ARGV[1] .. 'k:' .. k)
  out[#out + 1] = {k, v}
end
if #out > 0 then redis.call('PUBLISH', ARGV[2], cjson.encode(out)) end
return #out`;

// Cluster: one key's invalidation (its payload and version share a slot).
// KEYS: k, v; ARGV: channel, ttl, key.
const INVALIDATE_ONE = `
local v = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[1], cjson.encode({{ARGV[3], v}}))
return v`;

// Cluster: a tag's members, taken with the set in one step. KEYS: t.
const TAKE_TAG = `
local members = redis.call('SMEMBERS', KEYS[1])
redis.call('DEL', KEYS[1])
return members`;

const INVALIDATE_TAG = `
local members = redis.call('SMEMBERS', KEYS[1])
redis.call('DEL', KEYS[1])
local out = {}
for _, k in ipairs(members) do
  local v = redis.call('INCR', ARGV[1] .. 'v:' .. k)
  redis.call('PEXPIRE', ARGV[1] .. 'v:' .. k, ARGV[3])
  redis.call('DEL', ARGV[1] .. 'k:' .. k)
  out[#out + 1] = {k, v}
end
if #out > 0 then redis.call('PUBLISH', ARGV[2], cjson.encode(out)) end
return #out`;

/** Most keys one batched read asks for (each costs two MGET arguments). */
const MAX_READ_BATCH = 512;

interface CacheScripts {
  peakCacheSetIfVersion(...args: (string | number)[]): Promise<number>;
  peakCacheWrite(...args: (string | number)[]): Promise<number>;
  peakCacheSetIfVersionOne(...args: (string | number)[]): Promise<number>;
  peakCacheWriteOne(...args: (string | number)[]): Promise<number>;
  peakCacheInvalidate(...args: (string | number)[]): Promise<number>;
  peakCacheInvalidateTag(...args: (string | number)[]): Promise<number>;
  peakCacheInvalidateOne(...args: (string | number)[]): Promise<number>;
  peakCacheTakeTag(...args: (string | number)[]): Promise<string[]>;
}

/** The Redis implementation of {@link RemoteTier}. */
export class RedisTier implements RemoteTier {
  readonly #redis: RedisClient & CacheScripts;
  readonly #owned: boolean;
  /** On a Redis Cluster: keys carry hash tags and cross-key steps go per key. */
  readonly #cluster: boolean;
  /** A command's bound on a cluster, ms (see {@link RedisTier.#bound}). */
  readonly #clusterTimeoutMs: number;
  readonly #prefix: string;
  readonly #channel: string;
  readonly #versionTtlMs: number;
  #subscriber: RedisClient | undefined;
  // Reads waiting for the next batch: key, then its callbacks, in parallel arrays.
  #batchKeys: string[] = [];
  #batchResolves: ((read: RemoteRead) => void)[] = [];
  #batchRejects: ((err: unknown) => void)[] = [];
  #batchScheduled = false;

  constructor(options: RedisTierOptions) {
    this.#owned = typeof options.redis === 'string';
    const redis =
      typeof options.redis === 'string'
        ? openRedis(options.redis, {
            commandTimeout: options.commandTimeoutMs ?? 50,
            // Commands sent before the first connect (or during a reconnect) wait in the
            // offline queue, each bounded by commandTimeout; after one failed reconnect they
            // fail, and the cache's breaker then skips Redis for a while.
            maxRetriesPerRequest: 1,
          })
        : options.redis;
    this.#cluster = isCluster(redis);
    this.#clusterTimeoutMs = isCluster(redis)
      ? (redis.options.redisOptions?.commandTimeout ?? options.commandTimeoutMs ?? 50)
      : 0;
    redis.on('error', () => undefined); // surfaced per command; the cache's breaker counts them
    for (const [name, lua, keys] of [
      ['peakCacheSetIfVersion', SET_IF_VERSION, undefined],
      ['peakCacheWrite', WRITE, undefined],
      // The same scripts with their two keys declared (a cluster routes, and ioredis
      // pipelines, a command by its first key: a leading key count would be taken for it).
      ['peakCacheSetIfVersionOne', SET_IF_VERSION, 2],
      ['peakCacheWriteOne', WRITE, 2],
      ['peakCacheInvalidate', INVALIDATE, 0],
      ['peakCacheInvalidateTag', INVALIDATE_TAG, 1],
      ['peakCacheInvalidateOne', INVALIDATE_ONE, 2],
      ['peakCacheTakeTag', TAKE_TAG, 1],
    ] as const) {
      if (!(name in redis)) redis.defineCommand(name, { lua, numberOfKeys: keys });
    }
    this.#redis = redis as RedisClient & CacheScripts;
    this.#prefix = `peak:cache:${options.name}:`;
    this.#channel = `peak:cache:${options.name}:invalidate`;
    this.#versionTtlMs = options.versionTtlMs ?? 86_400_000;
  }

  /** The client this tier sends commands on (shared with hot-key reporting). */
  get client(): RedisClient {
    return this.#redis;
  }

  /**
   * On a cluster, a command bounded by the command timeout as a whole: ioredis bounds each
   * attempt on a node, but waits and retries on CLUSTERDOWN, MOVED and reconnects (a
   * failover holds a command a second or more), and the cache promises that a slow Redis
   * never holds a request; its breaker then counts the failure.
   */
  #bound<T>(command: Promise<T>): Promise<T> {
    if (!this.#cluster) return command;
    const ms = this.#clusterTimeoutMs;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `Redis Cluster did not answer within ${ms} ms (a failover or a slot move in progress?)`,
            ),
          ),
        ms,
      );
      command.then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  }

  /** A key's stored name: `k:<key>` (payload), `v:` (version), `l:` (load lock), `t:` (tag set). */
  #name(kind: 'k' | 'v' | 'l' | 't', key: string): string {
    return this.#cluster ? `${this.#prefix}${kind}:{${key}}` : `${this.#prefix}${kind}:${key}`;
  }

  /** Resolves when the connection is ready (or rejects after `ms`). */
  async ready(ms = 5000): Promise<void> {
    if (this.#redis.status === 'ready') return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#redis.off('ready', onReady);
        reject(new Error(`Redis not ready after ${ms} ms (status ${this.#redis.status})`));
      }, ms);
      const onReady = () => {
        clearTimeout(timer);
        resolve();
      };
      this.#redis.once('ready', onReady);
    });
  }

  read(key: string): Promise<RemoteRead> {
    return new Promise<RemoteRead>((resolve, reject) => {
      this.#batchKeys.push(key);
      this.#batchResolves.push(resolve);
      this.#batchRejects.push(reject);
      if (!this.#batchScheduled) {
        this.#batchScheduled = true;
        // setImmediate, as ioredis's auto-pipelining: reads that I/O callbacks of this turn
        // start (replies, requests) join the batch.
        setImmediate(this.#flushReads);
      }
    });
  }

  readonly #flushReads = (): void => {
    const keys = this.#batchKeys;
    const resolves = this.#batchResolves;
    const rejects = this.#batchRejects;
    this.#batchKeys = [];
    this.#batchResolves = [];
    this.#batchRejects = [];
    this.#batchScheduled = false;
    if (this.#cluster) {
      // Each key's pair is in its own slot: one MGET a key, auto-pipelined per node.
      for (let i = 0; i < keys.length; i++) {
        this.#bound(this.#redis.mget(this.#name('k', keys[i]!), this.#name('v', keys[i]!))).then(
          ([payload, version]) =>
            resolves[i]!({
              payload: payload ?? null,
              version: version == null ? 0 : Number(version),
            }),
          (err: unknown) => rejects[i]!(err),
        );
      }
      return;
    }
    for (let from = 0; from < keys.length; from += MAX_READ_BATCH) {
      const to = Math.min(keys.length, from + MAX_READ_BATCH);
      const args: string[] = new Array((to - from) * 2);
      for (let i = from, a = 0; i < to; i++, a += 2) {
        args[a] = `${this.#prefix}k:${keys[i]}`;
        args[a + 1] = `${this.#prefix}v:${keys[i]}`;
      }
      // Sent as a command of its own: the batch is the pipelining, no second wait for
      // ioredis's auto-pipeline.
      const mget = new Command('mget', args, { replyEncoding: 'utf8' });
      this.#redis.sendCommand(mget);
      (mget.promise as Promise<(string | null)[]>).then(
        (values) => {
          for (let i = from, a = 0; i < to; i++, a += 2) {
            const version = values[a + 1];
            resolves[i]!({
              payload: values[a] ?? null,
              version: version == null ? 0 : Number(version),
            });
          }
        },
        (err: unknown) => {
          for (let i = from; i < to; i++) rejects[i]!(err);
        },
      );
    }
  };

  async writeIfVersion(
    key: string,
    version: number,
    payload: string,
    ttlMs: number,
    tags: readonly string[],
  ): Promise<boolean> {
    const keys = await this.#keysWithTags(key, tags);
    const args = [version, payload, Math.max(1, Math.ceil(ttlMs)), this.#versionTtlMs, key];
    const ok = this.#cluster
      ? await this.#bound(this.#redis.peakCacheSetIfVersionOne(...keys, ...args))
      : await this.#redis.peakCacheSetIfVersion(keys.length, ...keys, ...args);
    return ok === 1;
  }

  async write(
    key: string,
    payload: string,
    ttlMs: number,
    tags: readonly string[],
  ): Promise<number> {
    const keys = await this.#keysWithTags(key, tags);
    const args = [payload, Math.max(1, Math.ceil(ttlMs)), this.#channel, this.#versionTtlMs, key];
    return this.#cluster
      ? this.#bound(this.#redis.peakCacheWriteOne(...keys, ...args))
      : this.#redis.peakCacheWrite(keys.length, ...keys, ...args);
  }

  /**
   * The keys of a versioned write: payload, version, then (single Redis) the tag sets the
   * script adds the key to. On a cluster the tag sets are in other slots, so the key is
   * added to them here, before the write: a tag invalidation in between bumps the version,
   * and a conditional write is then refused.
   */
  async #keysWithTags(key: string, tags: readonly string[]): Promise<string[]> {
    const keys = [this.#name('k', key), this.#name('v', key)];
    if (!this.#cluster) {
      for (const t of tags) keys.push(this.#name('t', t));
      return keys;
    }
    await Promise.all(
      tags.map((t) => {
        const set = this.#name('t', t);
        return this.#bound(
          this.#redis.multi().sadd(set, key).pexpire(set, this.#versionTtlMs).exec(),
        ).then((replies) => {
          const failed = replies?.find(([err]) => err !== null)?.[0];
          if (failed) throw failed;
        });
      }),
    );
    return keys;
  }

  async invalidate(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    if (this.#cluster) {
      await Promise.all(keys.map((k) => this.#invalidateOne(k)));
      return;
    }
    await this.#redis.peakCacheInvalidate(this.#prefix, this.#channel, this.#versionTtlMs, ...keys);
  }

  #invalidateOne(key: string): Promise<number> {
    return this.#bound(
      this.#redis.peakCacheInvalidateOne(
        this.#name('k', key),
        this.#name('v', key),
        this.#channel,
        this.#versionTtlMs,
        key,
      ),
    );
  }

  async invalidateTag(tag: string): Promise<number> {
    if (this.#cluster) {
      const members = await this.#bound(this.#redis.peakCacheTakeTag(this.#name('t', tag)));
      await Promise.all(members.map((k) => this.#invalidateOne(k)));
      return members.length;
    }
    return this.#redis.peakCacheInvalidateTag(
      this.#name('t', tag),
      this.#prefix,
      this.#channel,
      this.#versionTtlMs,
    );
  }

  async tryLock(key: string, ttlMs: number): Promise<boolean> {
    const ok = await this.#bound(this.#redis.set(this.#name('l', key), '1', 'PX', ttlMs, 'NX'));
    return ok === 'OK';
  }

  async unlock(key: string): Promise<void> {
    await this.#bound(this.#redis.del(this.#name('l', key)));
  }

  async subscribe(onInvalidate: InvalidationListener, onResync: () => void): Promise<void> {
    // A subscriber connection has no command timeout (it waits for messages) and queues the
    // SUBSCRIBE until connected; ioredis re-subscribes on reconnect.
    const sub: RedisClient = isCluster(this.#redis)
      ? this.#redis.duplicate(undefined, {
          enableOfflineQueue: true,
          enableAutoPipelining: false,
          redisOptions: {
            ...this.#redis.options.redisOptions,
            commandTimeout: undefined,
            maxRetriesPerRequest: null,
          },
        })
      : (this.#redis as Redis).duplicate({
          commandTimeout: undefined,
          enableOfflineQueue: true,
          maxRetriesPerRequest: null,
          enableAutoPipelining: false,
        });
    sub.on('error', () => undefined);
    this.#subscriber = sub;
    let connectedOnce = false;
    sub.on('ready', () => {
      // Anything published while we were away is lost: the caller drops its L1.
      if (connectedOnce) onResync();
      connectedOnce = true;
    });
    sub.on('message', (_channel: string, message: string) => {
      let pairs: unknown;
      try {
        pairs = JSON.parse(message);
      } catch {
        return; // not ours; nothing to drop
      }
      if (!Array.isArray(pairs)) return;
      for (const p of pairs) {
        if (Array.isArray(p) && typeof p[0] === 'string' && typeof p[1] === 'number') {
          onInvalidate(p[0], p[1]);
        }
      }
    });
    await sub.subscribe(this.#channel);
  }

  async close(): Promise<void> {
    const sub = this.#subscriber;
    this.#subscriber = undefined;
    if (sub !== undefined) sub.disconnect();
    if (this.#owned) this.#redis.disconnect();
  }
}
