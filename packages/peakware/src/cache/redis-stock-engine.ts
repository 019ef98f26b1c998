/**
 * The hot-stock engine on Redis: a deduction is a Lua script that checks the stock, checks
 * the order id against the SKU's hash of order → units (idempotency), takes the units and
 * XADDs a deduction record onto a Redis Stream, all in ONE atomic step. Deductions of one
 * SKU asked for in the same event-loop turn go in one script call (up to `maxBatch`), each
 * answered as if it had run alone, in arrival order: a flash sale's thousands of buyers cost
 * Redis one command per batch, not one per order. A {@link StockWriter} drains the stream
 * into the PostgreSQL tables of {@link PgStockEngine} behind the sale.
 *
 * Why a Redis Stream and not Peakware's MQ for the trip to PostgreSQL: the record is
 * appended by the same script that deducts, so "deducted but never queued" cannot exist; a
 * crash of this process, of the writer or of anything between them leaves either both or
 * neither. A message sent to a broker after the script would open exactly that window. Run
 * redis-server with an append-only file written before each reply
 * (`startRedisServer({ durability: 'write' })`) so an acknowledged deduction also survives a
 * kill -9 of Redis; `'always'` adds an fsync per reply, for power loss too.
 *
 * Keys, under `peak:stock:<name>:`: `s:<sku>` units left, `i:<sku>` initial, `n:<sku>`
 * units sold, `e:<sku>` the sale's epoch, `o:<sku>` the hash of order id → units (negative
 * once released), and `log` the stream. Single Redis (or a primary with replicas) only:
 * the stream is one key shared by every SKU, which Redis Cluster would refuse in one script.
 *
 * {@link RedisStockEngine.reconcile} compares Redis with PostgreSQL for a SKU, writes what
 * PostgreSQL is missing, and reports the books of both.
 */
import { Redis } from 'ioredis';
import type pg from 'pg';
import { type CallContext, currentContext } from '../core/context.js';
import { ErrorCodes, errorMessage, isPeakError, PeakError, UsageError } from '../core/errors.js';
import {
  type CacheCollector,
  type CacheOperation,
  RedisReporter,
  safeCollector,
} from './cache-events.js';
import {
  checkSchema,
  DEFAULT_STOCK_SCHEMA,
  explainPgError,
  installStockTables,
  loadStockRow,
  readStockBooks,
  unknownSku,
} from './pg-stock-engine.js';
import { isClusterUrl, redisPeerOf } from './redis-connection.js';
import {
  checkCount,
  checkOrderId,
  checkSku,
  type DeductResult,
  type ReleaseResult,
  type StockBooks,
  type StockEngine,
} from './stock-shaver.js';

/** The consumer group of the stream that {@link StockWriter}s share unless told otherwise. */
export const DEFAULT_WRITER_GROUP = 'peak-stock-writer';

/** Options of {@link RedisStockEngine}. */
export interface RedisStockEngineOptions {
  /** A Redis URL (the engine opens and closes its connection) or an ioredis client (yours). */
  redis: string | Redis;
  /** The PostgreSQL database the writer fills; `load` and `reconcile` use it directly. */
  pool: pg.Pool;
  /** The engine's name: the Redis key namespace `peak:stock:<name>:`. Default `default`. */
  name?: string;
  /** Schema of the stock tables; default `peak_stock`. */
  schema?: string;
  /** Consumer group the writers read the stream in; default `peak-stock-writer`. */
  group?: string;
  /** Per-command timeout when the engine opens the connection; default 2 000 ms. */
  commandTimeoutMs?: number;
  /** Most deductions of one SKU in one script call; default 500. */
  maxBatch?: number;
  /**
   * Receives every load, deduction, release and stock read as an operation on Redis (e.g.
   * `cacheSpanCollector(tracer)` from `peakware/telemetry`: a span of the caller's trace
   * each, the inventory → Redis edge in the topology); default none.
   */
  collector?: CacheCollector;
}

/** One side's books in a {@link ReconcileReport}. */
export interface ReconcileSide {
  /** Units left. */
  left: number;
  /** Units held by orders (summed from the order hash in Redis, from the log in PostgreSQL). */
  sold: number;
  /** Orders holding units. */
  orders: number;
  /** `left + sold === initial`. */
  balanced: boolean;
}

/** What {@link RedisStockEngine.reconcile} found and did. */
export interface ReconcileReport {
  sku: string;
  /** Units loaded (stored in both at load). */
  initial: number;
  /** The sale's epoch, the same in both. */
  epoch: number;
  redis: ReconcileSide;
  postgres: ReconcileSide;
  /** Deductions PostgreSQL was missing (the writer had not applied them yet), now written. */
  written: number;
  /** Orders whose release PostgreSQL was missing, now applied. */
  releasesApplied: number;
  /** Orders holding units in PostgreSQL but not in Redis (Redis lost writes); left as they are. */
  unexplained: string[];
  /** Both balanced, and they agree on left and sold. */
  consistent: boolean;
}

// KEYS: s, i, n, e, o (of the sku); ARGV: units, epoch. Returns 1, or 0 when a newer load won.
const LOAD = `
local cur = tonumber(redis.call('GET', KEYS[4]) or '0')
if cur >= tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[1])
redis.call('SET', KEYS[3], 0)
redis.call('SET', KEYS[4], ARGV[2])
redis.call('DEL', KEYS[5])
return 1`;

// KEYS: s, n, e, o, log; ARGV: sku, then (order id, qty) pairs. Returns a flat list of
// (code, left, prior qty) triples, one per pair in order: code -1 unknown sku, 0 too few
// left, 1 deducted, 2 duplicate (prior: the order's units, negative once released).
const DEDUCT = `
local left = redis.call('GET', KEYS[1])
local out = {}
if not left then
  for i = 2, #ARGV, 2 do
    out[#out + 1] = -1; out[#out + 1] = 0; out[#out + 1] = 0
  end
  return out
end
left = tonumber(left)
local epoch = redis.call('GET', KEYS[3])
local taken = 0
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  local q = tonumber(ARGV[i + 1])
  local prior = redis.call('HGET', KEYS[4], id)
  if prior then
    out[#out + 1] = 2; out[#out + 1] = left; out[#out + 1] = tonumber(prior)
  elseif left < q then
    out[#out + 1] = 0; out[#out + 1] = left; out[#out + 1] = 0
  else
    left = left - q
    taken = taken + q
    redis.call('HSET', KEYS[4], id, q)
    redis.call('XADD', KEYS[5], '*', 'k', 'd', 's', ARGV[1], 'o', id, 'q', q, 'e', epoch)
    out[#out + 1] = 1; out[#out + 1] = left; out[#out + 1] = 0
  end
end
if taken > 0 then
  redis.call('DECRBY', KEYS[1], taken)
  redis.call('INCRBY', KEYS[2], taken)
end
return out`;

// KEYS: s, n, e, o, log; ARGV: order id, sku. Returns {code, left}: -1 unknown, 0 nothing held, 1 released.
const RELEASE = `
local left = redis.call('GET', KEYS[1])
if not left then return {-1, 0} end
local q = tonumber(redis.call('HGET', KEYS[4], ARGV[1]) or '0')
if q <= 0 then return {0, tonumber(left)} end
redis.call('HSET', KEYS[4], ARGV[1], -q)
redis.call('DECRBY', KEYS[2], q)
left = redis.call('INCRBY', KEYS[1], q)
redis.call('XADD', KEYS[5], '*', 'k', 'r', 's', ARGV[2], 'o', ARGV[1], 'q', q, 'e', redis.call('GET', KEYS[3]))
return {1, left}`;

interface StockScripts {
  peakStockLoad(...args: (string | number)[]): Promise<number>;
  peakStockDeduct(...args: (string | number)[]): Promise<number[]>;
  peakStockRelease(...args: (string | number)[]): Promise<number[]>;
}

interface QueuedDeduction {
  orderId: string;
  qty: number;
  resolve(result: DeductResult): void;
  reject(err: unknown): void;
  /** With a collector: when it was asked for (`performance.now()`) and by whom. */
  started?: number;
  context?: CallContext | undefined;
}

/** A deduction's answer in a word, for its span. */
function deductOutcome(r: DeductResult): string {
  return r.duplicate === true ? 'duplicate' : r.ok ? 'deducted' : 'sold-out';
}

/** The Redis keys of one engine. */
export interface StockKeys {
  /** The stream of deduction and release records. */
  log: string;
  left(sku: string): string;
  initial(sku: string): string;
  sold(sku: string): string;
  epoch(sku: string): string;
  orders(sku: string): string;
}

/** The key layout of engine `name` (shared with {@link StockWriter}). */
export function stockKeys(name: string): StockKeys {
  if (!/^[\w.-]{1,64}$/.test(name))
    throw new UsageError(`name must be 1-64 of A-Z a-z 0-9 _ . -, got ${JSON.stringify(name)}`, {
      details: { input: 'name' },
    });
  const p = `peak:stock:${name}:`;
  return {
    log: `${p}log`,
    left: (sku) => `${p}s:${sku}`,
    initial: (sku) => `${p}i:${sku}`,
    sold: (sku) => `${p}n:${sku}`,
    epoch: (sku) => `${p}e:${sku}`,
    orders: (sku) => `${p}o:${sku}`,
  };
}

/** Creates the stream's consumer group (from the stream's start) unless it exists. */
export async function ensureWriterGroup(redis: Redis, stream: string, group: string) {
  try {
    await redis.xgroup('CREATE', stream, group, '0', 'MKSTREAM');
  } catch (err) {
    if (!/BUSYGROUP/.test(errorMessage(err))) throw err;
  }
}

/** `PEAK_CACHE_UNAVAILABLE` for a Redis command that failed (unless it already is a PeakError). */
export function redisFailure(err: unknown, what: string): unknown {
  if (isPeakError(err)) return err;
  return new PeakError(
    ErrorCodes.CACHE_UNAVAILABLE,
    `Redis did not complete ${what}: ${errorMessage(err)}; the call is idempotent by order id, retry it with the same one`,
    { cause: err },
  );
}

/** The Redis hot-stock engine: Lua deductions, written to PostgreSQL through a stream. */
export class RedisStockEngine implements StockEngine {
  readonly #redis: Redis & StockScripts;
  readonly #ownsRedis: boolean;
  readonly #pool: pg.Pool;
  readonly #schema: string;
  readonly #group: string;
  readonly #keys: StockKeys;
  readonly #maxBatch: number;
  readonly #redisReporter: RedisReporter | undefined;
  // Deductions waiting for this turn's script calls, by SKU.
  #queued = new Map<string, QueuedDeduction[]>();
  #inFlight = 0;
  readonly #idle = new Set<() => void>();
  #closed = false;

  constructor(options: RedisStockEngineOptions) {
    const maxBatch = options.maxBatch ?? 500;
    if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > 10_000)
      throw new UsageError(`maxBatch must be an integer from 1 to 10000, got ${maxBatch}`, {
        details: { input: 'maxBatch' },
      });
    this.#maxBatch = maxBatch;
    const name = options.name ?? 'default';
    this.#keys = stockKeys(name);
    this.#schema = checkSchema(options.schema ?? DEFAULT_STOCK_SCHEMA);
    this.#group = options.group ?? DEFAULT_WRITER_GROUP;
    this.#pool = options.pool;
    if (typeof options.redis === 'string' && isClusterUrl(options.redis))
      throw new UsageError(
        'the Redis stock engine runs on one Redis (a primary, with replicas if you like), not a Redis Cluster: its deductions and their stream are one script; give it a plain redis:// URL (the cache tier can use the cluster)',
        { details: { input: 'redis' } },
      );
    this.#ownsRedis = typeof options.redis === 'string';
    const redis =
      typeof options.redis === 'string'
        ? new Redis(options.redis, {
            commandTimeout: options.commandTimeoutMs ?? 2000,
            maxRetriesPerRequest: 1,
            lazyConnect: false,
          })
        : options.redis;
    if (this.#ownsRedis) redis.on('error', () => undefined); // surfaced per command
    this.#redisReporter =
      options.collector === undefined
        ? undefined
        : new RedisReporter(safeCollector(options.collector), name, redisPeerOf(options.redis));
    redis.defineCommand('peakStockLoad', { numberOfKeys: 5, lua: LOAD });
    redis.defineCommand('peakStockDeduct', { numberOfKeys: 5, lua: DEDUCT });
    redis.defineCommand('peakStockRelease', { numberOfKeys: 5, lua: RELEASE });
    this.#redis = redis as Redis & StockScripts;
  }

  /** The Redis keys this engine uses (for tools and tests). */
  get keys(): StockKeys {
    return this.#keys;
  }

  /** Creates the PostgreSQL tables and the stream's consumer group (idempotent). */
  async install(): Promise<void> {
    await installStockTables(this.#pool, this.#schema);
    await ensureWriterGroup(this.#redis, this.#keys.log, this.#group).catch((err: unknown) => {
      throw redisFailure(err, 'creating the writer group');
    });
  }

  /**
   * Puts `units` on sale: first in PostgreSQL (the stock row with its initial and a new
   * epoch; earlier deductions deleted), then in Redis with that epoch. Records of the
   * earlier sale still in the stream carry the old epoch, and the writer drops them.
   */
  async load(sku: string, units: number): Promise<void> {
    checkSku(sku);
    checkCount('units', units, 0);
    await this.#reported('stock-load', sku, () => this.#load(sku, units));
  }

  async #load(sku: string, units: number): Promise<void> {
    const k = this.#keys;
    let current: number;
    try {
      current = Number((await this.#redis.get(k.epoch(sku))) ?? '0');
    } catch (err) {
      throw redisFailure(err, `load of ${sku}`);
    }
    const epoch = await loadStockRow(this.#pool, this.#schema, sku, units, current + 1);
    let applied: number;
    try {
      applied = await this.#redis.peakStockLoad(
        k.left(sku),
        k.initial(sku),
        k.sold(sku),
        k.epoch(sku),
        k.orders(sku),
        units,
        epoch,
      );
    } catch (err) {
      throw redisFailure(err, `load of ${sku}`);
    }
    if (applied !== 1)
      throw new PeakError(
        ErrorCodes.INTERNAL,
        `another load of ${sku} ran at the same time and won; load it again if this one should stand`,
        { details: { sku } },
      );
  }

  deduct(sku: string, orderId: string, qty: number): Promise<DeductResult> {
    try {
      checkSku(sku);
      checkOrderId(orderId);
      checkCount('qty', qty, 1);
      if (this.#closed) throw new UsageError('the stock engine is closed');
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<DeductResult>((resolve, reject) => {
      if (this.#queued.size === 0) setImmediate(this.#flush);
      const queue = this.#queued.get(sku);
      const d: QueuedDeduction = { orderId, qty, resolve, reject };
      // Reported when the batch answers it (its start and caller kept beside it).
      if (this.#redisReporter !== undefined) {
        d.started = performance.now();
        d.context = currentContext();
      }
      if (queue === undefined) this.#queued.set(sku, [d]);
      else queue.push(d);
    });
  }

  readonly #flush = (): void => {
    const queued = this.#queued;
    this.#queued = new Map();
    for (const [sku, waiting] of queued)
      for (let i = 0; i < waiting.length; i += this.#maxBatch)
        void this.#deductBatch(sku, waiting.slice(i, i + this.#maxBatch));
  };

  /** One script call for a batch of one SKU; each deduction answered from its own triple. */
  async #deductBatch(sku: string, batch: QueuedDeduction[]): Promise<void> {
    this.#inFlight++;
    try {
      const k = this.#keys;
      const args: (string | number)[] = [
        k.left(sku),
        k.sold(sku),
        k.epoch(sku),
        k.orders(sku),
        k.log,
        sku,
      ];
      for (const d of batch) args.push(d.orderId, d.qty);
      let out: number[];
      try {
        out = await this.#redis.peakStockDeduct(...args);
      } catch (err) {
        for (const d of batch) {
          const failure = redisFailure(err, `deduct of ${d.qty} ${sku} for order ${d.orderId}`);
          this.#reportDeduct(sku, d, undefined, failure);
          d.reject(failure);
        }
        return;
      }
      batch.forEach((d, i) => {
        const code = out[3 * i];
        const left = out[3 * i + 1]!;
        if (code === -1) {
          const failure = unknownSku(sku);
          this.#reportDeduct(sku, d, undefined, failure);
          d.reject(failure);
          return;
        }
        const r: DeductResult =
          code === 2
            ? { ok: out[3 * i + 2]! > 0, left, duplicate: true }
            : { ok: code === 1, left };
        this.#reportDeduct(sku, d, r, undefined);
        d.resolve(r);
      });
    } finally {
      if (--this.#inFlight === 0 && this.#queued.size === 0) for (const done of this.#idle) done();
    }
  }

  async release(sku: string, orderId: string): Promise<ReleaseResult> {
    checkSku(sku);
    checkOrderId(orderId);
    return this.#reported(
      'stock-release',
      sku,
      () => this.#release(sku, orderId),
      (r) => (r.released ? 'released' : 'held-none'),
    );
  }

  async #release(sku: string, orderId: string): Promise<ReleaseResult> {
    const k = this.#keys;
    let out: number[];
    try {
      out = await this.#redis.peakStockRelease(
        k.left(sku),
        k.sold(sku),
        k.epoch(sku),
        k.orders(sku),
        k.log,
        orderId,
        sku,
      );
    } catch (err) {
      throw redisFailure(err, `release of ${sku} for order ${orderId}`);
    }
    const [code, left] = out as [number, number];
    if (code === -1) throw unknownSku(sku);
    return { released: code === 1, left };
  }

  async stock(sku: string): Promise<number> {
    checkSku(sku);
    return this.#reported('stock-read', sku, () => this.#stock(sku));
  }

  /** Reports a deduction's answer (or failure) when there is a collector. */
  #reportDeduct(
    sku: string,
    d: QueuedDeduction,
    r: DeductResult | undefined,
    failure: unknown,
  ): void {
    if (this.#redisReporter === undefined || d.started === undefined) return;
    this.#redisReporter.report(
      'stock-deduct',
      sku,
      d.started,
      d.context,
      r === undefined ? undefined : deductOutcome(r),
      failure === undefined ? undefined : errorMessage(failure),
    );
  }

  /** Runs `op`, reported to the collector when there is one. */
  #reported<R>(
    operation: CacheOperation,
    sku: string,
    op: () => Promise<R>,
    outcome?: (r: R) => string | undefined,
  ): Promise<R> {
    return this.#redisReporter === undefined
      ? op()
      : this.#redisReporter.run(operation, sku, op, outcome);
  }

  async #stock(sku: string): Promise<number> {
    let left: string | null;
    try {
      left = await this.#redis.get(this.#keys.left(sku));
    } catch (err) {
      throw redisFailure(err, `reading the stock of ${sku}`);
    }
    if (left === null) throw unknownSku(sku);
    return Number(left);
  }

  /** The books in Redis (the source of truth during a sale); `sold` is its own counter. */
  async books(sku: string): Promise<StockBooks> {
    checkSku(sku);
    const k = this.#keys;
    let got: [Error | null, unknown][] | null;
    try {
      got = await this.#redis.multi().get(k.initial(sku)).get(k.left(sku)).get(k.sold(sku)).exec();
    } catch (err) {
      throw redisFailure(err, `reading the books of ${sku}`);
    }
    const [initial, left, sold] = (got ?? []).map(([, v]) => v as string | null);
    if (initial == null || left == null) throw unknownSku(sku);
    return { sku, initial: Number(initial), left: Number(left), sold: Number(sold ?? 0) };
  }

  /** The books the PostgreSQL tables hold (what the writer has applied so far). */
  postgresBooks(sku: string): Promise<StockBooks> {
    checkSku(sku);
    return readStockBooks(this.#pool, this.#schema, sku);
  }

  /**
   * Compares Redis with PostgreSQL for `sku` and makes PostgreSQL complete: with the
   * SKU's stock row locked (so no writer applies a batch meanwhile), it reads Redis in one
   * MULTI, writes every deduction (and release) PostgreSQL is missing, sets PostgreSQL's
   * stock to `initial - sold`, and reports both sides' books. Safe while the sale and the
   * writers run; records the writer applies later change nothing.
   */
  async reconcile(sku: string): Promise<ReconcileReport> {
    checkSku(sku);
    const s = this.#schema;
    const k = this.#keys;
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN');
      const { rows: stockRows } = await client.query<{
        stock: number;
        initial: number;
        epoch: string;
      }>(`SELECT stock, initial, epoch FROM ${s}.stock WHERE sku = $1 FOR UPDATE`, [sku]);
      const pgRow = stockRows[0];
      if (pgRow === undefined) throw unknownSku(sku);
      let got: [Error | null, unknown][] | null;
      try {
        got = await this.#redis
          .multi()
          .get(k.initial(sku))
          .get(k.left(sku))
          .get(k.epoch(sku))
          .hgetall(k.orders(sku))
          .exec();
      } catch (err) {
        throw redisFailure(err, `reading ${sku} to reconcile`);
      }
      const [rInitial, rLeft, rEpoch, rOrders] = (got ?? []).map(([, v]) => v) as [
        string | null,
        string | null,
        string | null,
        Record<string, string>,
      ];
      if (rInitial === null || rLeft === null || rEpoch === null) throw unknownSku(sku);
      const epoch = Number(pgRow.epoch);
      if (Number(rEpoch) !== epoch)
        throw new PeakError(
          ErrorCodes.INTERNAL,
          `${sku} is at epoch ${rEpoch} in Redis and ${epoch} in PostgreSQL: a load did not finish; load it again`,
          { details: { sku, redisEpoch: Number(rEpoch), postgresEpoch: epoch } },
        );
      const held = new Map<string, number>();
      const released = new Map<string, number>();
      for (const [order, v] of Object.entries(rOrders ?? {})) {
        const q = Number(v);
        if (q > 0) held.set(order, q);
        else released.set(order, -q);
      }
      const { rows: logRows } = await client.query<{
        order_id: string;
        qty: number;
        released: boolean;
      }>(`SELECT order_id, qty, released FROM ${s}.deductions WHERE sku = $1 AND epoch = $2`, [
        sku,
        epoch,
      ]);
      const inPg = new Map(logRows.map((r) => [r.order_id, r]));
      const missing: [string, number, boolean][] = [];
      const toRelease: string[] = [];
      const unexplained: string[] = [];
      for (const [order, q] of held) if (!inPg.has(order)) missing.push([order, q, false]);
      for (const [order, q] of released) {
        const row = inPg.get(order);
        if (row === undefined) missing.push([order, q, true]);
        else if (!row.released) toRelease.push(order);
      }
      for (const r of logRows)
        if (!r.released && !held.has(r.order_id) && !released.has(r.order_id))
          unexplained.push(r.order_id);
      if (missing.length > 0)
        await client.query(
          `INSERT INTO ${s}.deductions (sku, order_id, qty, epoch, released)
           SELECT $1, t.o, t.q, $2, t.r FROM unnest($3::text[], $4::int[], $5::boolean[]) AS t(o, q, r)
           ON CONFLICT (sku, order_id) DO NOTHING`,
          [
            sku,
            epoch,
            missing.map((m) => m[0]),
            missing.map((m) => m[1]),
            missing.map((m) => m[2]),
          ],
        );
      if (toRelease.length > 0)
        await client.query(
          `UPDATE ${s}.deductions SET released = true WHERE sku = $1 AND order_id = ANY ($2::text[])`,
          [sku, toRelease],
        );
      const { rows: after } = await client.query<{ sold: string; orders: string }>(
        `SELECT coalesce(sum(qty), 0) AS sold, count(*) AS orders FROM ${s}.deductions
          WHERE sku = $1 AND epoch = $2 AND NOT released`,
        [sku, epoch],
      );
      const pgSold = Number(after[0]!.sold);
      const initial = pgRow.initial;
      // The stock column follows the log; a negative figure (Redis lost writes PostgreSQL
      // has) would break the CHECK, so it is left and reported unbalanced.
      const pgLeft = initial - pgSold >= 0 ? initial - pgSold : pgRow.stock;
      if (pgLeft !== pgRow.stock)
        await client.query(`UPDATE ${s}.stock SET stock = $2 WHERE sku = $1`, [sku, pgLeft]);
      await client.query('COMMIT');
      const redisSold = [...held.values()].reduce((a, b) => a + b, 0);
      const redisLeft = Number(rLeft);
      const redisSide: ReconcileSide = {
        left: redisLeft,
        sold: redisSold,
        orders: held.size,
        balanced: redisLeft + redisSold === Number(rInitial) && Number(rInitial) === initial,
      };
      const pgSide: ReconcileSide = {
        left: pgLeft,
        sold: pgSold,
        orders: Number(after[0]!.orders),
        balanced: pgLeft + pgSold === initial,
      };
      return {
        sku,
        initial,
        epoch,
        redis: redisSide,
        postgres: pgSide,
        written: missing.length,
        releasesApplied: toRelease.length,
        unexplained,
        consistent:
          redisSide.balanced &&
          pgSide.balanced &&
          redisSide.left === pgSide.left &&
          redisSide.sold === pgSide.sold,
      };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw explainPgError(err, s, sku);
    } finally {
      client.release();
    }
  }

  /**
   * Refuses new deductions, waits for the queued ones to be answered, and closes the Redis
   * connection when the engine opened it (the pool is yours).
   */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#inFlight > 0 || this.#queued.size > 0)
      await new Promise<void>((resolve) => {
        const done = () => {
          this.#idle.delete(done);
          resolve();
        };
        this.#idle.add(done);
      });
    if (this.#ownsRedis) await this.#redis.quit().catch(() => this.#redis.disconnect());
  }
}
