/**
 * The hot item's stock, shaved off the stock row (Mogujie's peak shaving, `peakware/cache`
 * stock engines): with Redis, a deduction is one atomic Lua step in Redis and a
 * `StockWriter` in each inventory process writes the deductions to PostgreSQL behind the
 * sale; without Redis, same-SKU deductions are batched into one PostgreSQL statement per
 * turn. Either way no unit is ever oversold and a retried deduction (same order id) never
 * deducts twice. The tables are `peak_stock.stock` and `peak_stock.deductions` in the shop
 * database.
 */
import {
  type CacheCollector,
  PgStockEngine,
  type ReconcileReport,
  RedisStockEngine,
  type StockBooks,
  type StockEngine,
  StockWriter,
} from 'peakware/cache';
import type pg from 'pg';

/** The stock engine's key namespace in Redis. */
export const STOCK_NAME = 'shop';

/** The shop's stock engine, and the writer that drains it when it is the Redis one. */
export interface ShopStock {
  engine: StockEngine;
  /** `redis` (Lua in Redis, written behind) or `postgres` (batched statements). */
  kind: 'redis' | 'postgres';
  /** Creates the stock tables (and the Redis writer group); idempotent. */
  install(): Promise<void>;
  /**
   * The books once PostgreSQL has caught up with Redis (the Redis engine writes what is
   * missing and compares both sides); for the PostgreSQL engine its one side.
   */
  settle(sku: string): Promise<{ books: StockBooks; reconcile?: ReconcileReport }>;
  close(): Promise<void>;
}

/**
 * Opens the engine on the shop database: the Redis one when `redisUrl` is given (with a
 * writer when `writer` is true: the inventory processes run one each, sharing the stream
 * as a consumer group), else the PostgreSQL one. `name` (Redis namespace, default `shop`)
 * and `schema` (default `peak_stock`) place a second copy, as the shadow stock does.
 */
export function openShopStock(
  pool: pg.Pool,
  redisUrl: string | undefined,
  options: { writer: boolean; name?: string; schema?: string; collector?: CacheCollector },
): ShopStock {
  const name = options.name ?? STOCK_NAME;
  const schema = options.schema === undefined ? {} : { schema: options.schema };
  if (redisUrl === undefined) {
    const engine = new PgStockEngine({ pool, ...schema });
    return {
      engine,
      kind: 'postgres',
      install: () => engine.install(),
      settle: async (sku) => ({ books: await engine.books(sku) }),
      close: () => engine.close(),
    };
  }
  const engine = new RedisStockEngine({
    redis: redisUrl,
    pool,
    name,
    ...schema,
    ...(options.collector === undefined ? {} : { collector: options.collector }),
  });
  const writer = options.writer
    ? // Write-behind: linger 50 ms after a short batch, so each transaction carries more.
      new StockWriter({ redis: redisUrl, pool, name, ...schema, lingerMs: 50 }).start()
    : undefined;
  return {
    engine,
    kind: 'redis',
    install: () => engine.install(),
    settle: async (sku) => {
      const reconcile = await engine.reconcile(sku);
      return {
        books: {
          sku,
          initial: reconcile.initial,
          left: reconcile.redis.left,
          sold: reconcile.redis.sold,
        },
        reconcile,
      };
    },
    close: async () => {
      await engine.close();
      await writer?.close();
    },
  };
}
