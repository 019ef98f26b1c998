/**
 * The shop's business data on the laptop setup. Products, compensations and points live in
 * schema `shop` of the control plane's PostgreSQL, the hot stock in the stock engine's
 * tables beside them (`peak_stock`, see stock.ts); orders are sharded over two instances
 * (see `order-store.ts`). Tables are the application's, created here, never by Peakware.
 */
import type { ShardedDatabase } from 'peakware/data';
import type pg from 'pg';
import type { ShopStock } from './stock.js';

/**
 * Opens `n` connections of `pool` now, so the sale does not pay for them: a connection to
 * PostgreSQL with SCRAM authentication costs about 11 ms here, and a few hundred opened in
 * the first second of a flash sale (every pool of every process at once) stall it.
 */
export async function warmPool(pool: pg.Pool, n: number): Promise<void> {
  const clients = await Promise.all(Array.from({ length: n }, () => pool.connect()));
  for (const c of clients) c.release();
}

/** A product as the order service reads it (through the product cache). */
export interface Product {
  sku: string;
  name: string;
  /** The list price, cents. */
  priceCents: number;
  /** The price during the sale, computed before it opens (Mogujie's pre-computed prices). */
  salePriceCents: number;
}

/** Reads one product row; undefined when there is none. */
export async function loadProduct(pool: pg.Pool, sku: string): Promise<Product | undefined> {
  const { rows } = await pool.query<{
    name: string;
    price_cents: number;
    sale_price_cents: number;
  }>('SELECT name, price_cents, sale_price_cents FROM shop.products WHERE sku = $1', [sku]);
  const row = rows[0];
  return row === undefined
    ? undefined
    : { sku, name: row.name, priceCents: row.price_cents, salePriceCents: row.sale_price_cents };
}

/**
 * Creates the tables and puts `units` of `product` on sale (the stock engine's load, a
 * reset), forgetting earlier orders, compensations and points for it.
 */
export async function seedFlashSale(
  pool: pg.Pool,
  stock: ShopStock,
  orders: ShardedDatabase,
  product: Product,
  units: number,
): Promise<void> {
  await pool.query(`
    CREATE SCHEMA IF NOT EXISTS shop;
    CREATE TABLE IF NOT EXISTS shop.products (
      sku              text PRIMARY KEY,
      name             text NOT NULL,
      price_cents      integer NOT NULL CHECK (price_cents >= 0),
      sale_price_cents integer NOT NULL CHECK (sale_price_cents >= 0)
    );
    CREATE TABLE IF NOT EXISTS shop.compensations (
      order_id bigint PRIMARY KEY,
      sku      text NOT NULL,
      qty      integer NOT NULL,
      reason   text NOT NULL
    );
    CREATE TABLE IF NOT EXISTS shop.points (
      order_id bigint PRIMARY KEY,
      user_id  bigint NOT NULL,
      sku      text NOT NULL,
      points   integer NOT NULL
    );`);
  await stock.install();
  await pool.query(
    `INSERT INTO shop.products (sku, name, price_cents, sale_price_cents) VALUES ($1, $2, $3, $4)
     ON CONFLICT (sku) DO UPDATE SET name = EXCLUDED.name, price_cents = EXCLUDED.price_cents,
       sale_price_cents = EXCLUDED.sale_price_cents`,
    [product.sku, product.name, product.priceCents, product.salePriceCents],
  );
  await pool.query('DELETE FROM shop.points WHERE sku = $1', [product.sku]);
  await pool.query('DELETE FROM shop.compensations WHERE sku = $1', [product.sku]);
  await stock.engine.load(product.sku, units);
  // A scatter DELETE: no buyer in the WHERE, so every shard.
  await orders.query('DELETE FROM orders WHERE sku = $1', [product.sku]);
}

/** What the books say after a sale. */
export interface SaleBooks {
  /** Units put on sale. */
  initial: number;
  /** Stock left, as the stock engine has it (Redis with the Redis engine). */
  left: number;
  /** Orders for the item, over every shard. */
  orders: number;
  /** Units in those orders. */
  unitsOrdered: number;
  /** Units held by deductions (the stock engine's books). */
  unitsDeducted: number;
  /**
   * With the Redis engine: PostgreSQL's copy of the stock agrees with Redis once the writer
   * has caught up (left and sold the same, `left + sold = initial` on both sides).
   */
  stockCopiesAgree: boolean;
  /** Orders whose "order placed" message the points service has handled. */
  pointsAwarded: number;
  /** Units released by compensation messages (orders that failed after deducting). */
  unitsCompensated: number;
}

/**
 * Orders of `skus` beyond one per buyer: in the sale every attempt is a distinct buyer, so
 * a second order of one buyer is a duplicate (a retried or double-clicked buy placed
 * twice). One scatter-gather statement: the groups of a buyer and item with more than one
 * order, HAVING applied by the data layer to the merged groups.
 */
export async function duplicateOrders(orders: ShardedDatabase, skus: string[]): Promise<number> {
  const { rows } = await orders.query<{ n: string | number }>(
    `SELECT user_id, sku, count(*) AS n FROM orders WHERE sku = ANY($1::text[])
      GROUP BY user_id, sku HAVING count(*) > 1`,
    [skus],
  );
  return rows.reduce((sum, r) => sum + Number(r.n) - 1, 0);
}

/** Reads the books: the stock engine, points and compensations in schema shop, orders over the shards. */
export async function saleLedger(
  pool: pg.Pool,
  stock: ShopStock,
  orders: ShardedDatabase,
  sku: string,
): Promise<SaleBooks> {
  const settled = await stock.settle(sku);
  const { rows: local } = await pool.query<{ points: string; compensated: string | null }>(
    `SELECT (SELECT count(*) FROM shop.points WHERE sku = $1) AS points,
            (SELECT sum(qty) FROM shop.compensations WHERE sku = $1) AS compensated`,
    [sku],
  );
  // Scatter-gather: COUNT and SUM from every shard, added up by the data layer.
  const { rows } = await orders.query<{ orders: string | number; units: string | number | null }>(
    'SELECT count(*) AS orders, sum(qty) AS units FROM orders WHERE sku = $1',
    [sku],
  );
  const { books, reconcile } = settled;
  return {
    initial: books.initial,
    left: books.left,
    orders: Number(rows[0]?.orders ?? 0),
    unitsOrdered: Number(rows[0]?.units ?? 0),
    unitsDeducted: books.sold,
    stockCopiesAgree: reconcile === undefined || reconcile.consistent,
    pointsAwarded: Number(local[0]!.points),
    unitsCompensated: Number(local[0]!.compensated ?? 0),
  };
}

/**
 * The books once the points service has caught up: reads them again (every 200 ms, for at
 * most `waitMs`) until every order's event is consumed, then returns them as they stand.
 */
export async function settledLedger(
  pool: pg.Pool,
  stock: ShopStock,
  orders: ShardedDatabase,
  sku: string,
  waitMs = 30_000,
): Promise<SaleBooks> {
  let books = await saleLedger(pool, stock, orders, sku);
  const until = Date.now() + waitMs;
  while (books.pointsAwarded < books.orders && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 200));
    books = await saleLedger(pool, stock, orders, sku);
  }
  return books;
}

/** The books balance: every deducted unit one ordered unit, every order one award, nothing oversold. */
export function booksBalance(books: SaleBooks): boolean {
  return (
    books.unitsDeducted === books.unitsOrdered &&
    books.pointsAwarded === books.orders &&
    books.left === books.initial - books.unitsDeducted &&
    books.unitsDeducted <= books.initial &&
    books.stockCopiesAgree
  );
}

/**
 * The compensation sweep (Mogujie's asynchronous compensation): a deduction whose order
 * was never written (its caller timed out or failed after deducting) is released back to
 * stock once it is older than `minAgeMs`. The order is looked up by its gene id, which
 * routes to its one shard. The order service never writes an order later than its
 * deadline (2 s) plus its statement timeout, so 5 s is safe during a sale; 0 is safe once
 * traffic has stopped. The deductions are read from PostgreSQL: with the Redis engine, call
 * it after the books have settled (the writer has caught up). Returns the units released.
 * `schema` is the stock tables' (the shadow stock's for stress traffic, swept in a stress
 * context so the orders are looked up in the shadow tables). A coupon order's deduction is
 * left to its TCC while its coupon is locked or used (the coordinator confirms or cancels it).
 */
export async function releaseOrphanDeductions(
  pool: pg.Pool,
  stock: ShopStock,
  orders: ShardedDatabase,
  sku: string,
  minAgeMs: number,
  schema = 'peak_stock',
): Promise<number> {
  const { rows } = await pool.query<{ order_id: string }>(
    `SELECT d.order_id FROM ${schema}.deductions d JOIN ${schema}.stock s USING (sku)
      WHERE d.sku = $1 AND d.epoch = s.epoch AND NOT d.released
        AND d.created_at < now() - make_interval(secs => $2::float8 / 1000)
        AND NOT EXISTS (SELECT 1 FROM shop.coupons c
                         WHERE c.order_id::text = d.order_id AND c.status IN ('locked', 'used'))`,
    [sku, minAgeMs],
  );
  let released = 0;
  for (const { order_id } of rows) {
    const found = await orders.query('SELECT 1 FROM orders WHERE order_id = $1', [order_id]);
    if (found.rows.length > 0) continue;
    const r = await stock.engine.release(sku, order_id);
    if (r.released) {
      const { rows: d } = await pool.query<{ qty: number }>(
        `SELECT qty FROM ${schema}.deductions WHERE sku = $1 AND order_id = $2`,
        [sku, order_id],
      );
      released += d[0]?.qty ?? 0;
    }
  }
  return released;
}
