/**
 * Where signature nonces are remembered so a request replayed to any gateway is refused:
 * a store shared by every gateway process. Claims are batched (every claim made in one turn
 * of the event loop travels in one round trip), so a busy gateway pays one round trip per
 * batch, not per request. The Redis store sends a claim made while none is in flight at
 * once: an idle gateway's claim then travels while the request's other checks run, instead
 * of after them at the end of the turn.
 *
 * - {@link RedisNonceStore}: `SET key 1 NX PX <window>` per nonce, a batch in one script
 *   call (the fast one;
 *   Redis is the shared store for hot state, as for the cache tier);
 * - {@link ControlPlaneNonceStore}: the control plane's PostgreSQL (an unlogged table),
 *   for gateways without Redis.
 */
import type { ControlPlaneClient } from '../core/control-plane-client.js';

/** A shared memory of nonces. */
export interface NonceStore {
  /** Records `nonce` of `key` for `ttlMs`; resolves true when it was not seen within that time. */
  claim(key: string, nonce: string, ttlMs: number): Promise<boolean>;
  /** Lets go of connections. */
  close(): Promise<void>;
}

interface Pending {
  key: string;
  nonce: string;
  ttlMs: number;
  resolve: (fresh: boolean) => void;
  reject: (err: unknown) => void;
}

/**
 * Collects claims of one event-loop turn and sends them as one batch. With `sendWhenIdle`
 * a claim made while no batch is in flight (and none is collecting) goes at once, alone:
 * only for a store whose batches arrive in the order they are sent (one connection), so a
 * nonce claimed alone and again in the next batch is fresh for the first.
 */
abstract class BatchingNonceStore implements NonceStore {
  readonly #sendWhenIdle: boolean;
  #pending: Pending[] = [];
  #scheduled = false;
  #inFlight = 0;

  constructor(sendWhenIdle: boolean) {
    this.#sendWhenIdle = sendWhenIdle;
  }

  claim(key: string, nonce: string, ttlMs: number): Promise<boolean> {
    return new Promise((resolve, reject) => {
      const item: Pending = { key, nonce, ttlMs, resolve, reject };
      if (this.#sendWhenIdle && this.#inFlight === 0 && !this.#scheduled) {
        this.#sendBatch([item]);
        return;
      }
      this.#pending.push(item);
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const batch = this.#pending;
    this.#pending = [];
    this.#sendBatch(batch);
  }

  #sendBatch(batch: readonly Pending[]): void {
    this.#inFlight++;
    this.send(batch).then(
      (fresh) => {
        this.#inFlight--;
        for (let i = 0; i < batch.length; i++) batch[i]!.resolve(fresh[i] === true);
      },
      (err: unknown) => {
        this.#inFlight--;
        for (const p of batch) p.reject(err);
      },
    );
  }

  /** Sends one batch; resolves with one freshness flag per item. */
  protected abstract send(batch: readonly Pending[]): Promise<boolean[]>;

  abstract close(): Promise<void>;
}

/** Nonces in the control plane's PostgreSQL (POST /api/v1/gateway/nonces, one call a batch). */
export class ControlPlaneNonceStore extends BatchingNonceStore {
  readonly #http: ControlPlaneClient;

  constructor(http: ControlPlaneClient) {
    // Batches are HTTP calls that may overtake each other: always collect the turn's claims.
    super(false);
    this.#http = http;
  }

  protected async send(batch: readonly Pending[]): Promise<boolean[]> {
    // One window per batch (a gateway has one); the longest wins if they differ.
    const ttlMs = Math.max(...batch.map((p) => p.ttlMs));
    const r = await this.#http.post<{ fresh: boolean[] }>(
      '/api/v1/gateway/nonces',
      { ttlMs, items: batch.map((p) => ({ key: p.key, nonce: p.nonce })) },
      { retry: false },
    );
    return r.fresh;
  }

  async close(): Promise<void> {}
}

/** The few ioredis calls this store makes. */
interface RedisLike {
  defineCommand(name: string, definition: { lua: string }): void;
  claimNonces(numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  set(key: string, value: string, px: 'PX', ms: number, nx: 'NX'): Promise<string | null>;
  quit(): Promise<unknown>;
  disconnect(): void;
}

/** Sets each key that is not set yet (for ARGV[1] ms); answers 1 (it was fresh) or 0 per key. */
const CLAIM_SCRIPT = `
local out = {}
for i = 1, #KEYS do
  if redis.call('SET', KEYS[i], '1', 'PX', ARGV[1], 'NX') then out[i] = 1 else out[i] = 0 end
end
return out`;

/** Nonces in Redis, `peak:gw:nonce:<key>:<nonce>`, one script call a batch (a plain SET NX for one). */
export class RedisNonceStore extends BatchingNonceStore {
  readonly #redis: RedisLike;

  private constructor(redis: RedisLike) {
    // One connection, commands answered in order: a lone claim may go at once.
    super(true);
    this.#redis = redis;
  }

  /** Connects to `url` (ioredis is loaded only here). */
  static async connect(url: string): Promise<RedisNonceStore> {
    const { Redis } = await import('ioredis');
    const redis = new Redis(url, {
      maxRetriesPerRequest: 1,
      enableOfflineQueue: true,
      connectTimeout: 3000,
    });
    redis.on('error', () => undefined); // a failed claim says it; the gateway logs it
    const client = redis as unknown as RedisLike;
    client.defineCommand('claimNonces', { lua: CLAIM_SCRIPT });
    return new RedisNonceStore(client);
  }

  protected async send(batch: readonly Pending[]): Promise<boolean[]> {
    // One command a batch (a script setting every key), not one per nonce: the client's
    // per-command cost is what a busy gateway would pay per request.
    const ttlMs = Math.max(...batch.map((p) => p.ttlMs));
    const keys = batch.map((item) => `peak:gw:nonce:${item.key}:${item.nonce}`);
    // A lone claim (an idle gateway's) is a plain SET NX: no script to run.
    if (keys.length === 1)
      return [(await this.#redis.set(keys[0]!, '1', 'PX', ttlMs, 'NX')) === 'OK'];
    const fresh = (await this.#redis.claimNonces(keys.length, ...keys, ttlMs)) as number[];
    return fresh.map((v) => v === 1);
  }

  async close(): Promise<void> {
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }
}
