/**
 * The shop's business data on the laptop setup. Inventory, the deduction log and points
 * live in schema `shop` of the control plane's PostgreSQL; orders are sharded over two
 * instances (see `order-store.ts`). Tables are the application's, created here, never by
 * Peakware.
 */
import type { ShardedDatabase } from 'peakware/data';
import pg from 'pg';

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * Opens `n` connections of `pool` now, so the sale does not pay for them: a connection to
 * PostgreSQL with SCRAM authentication costs about 11 ms here, and a few hundred opened in
 * the first second of a flash sale (every pool of every process at once) stall it.
 */
export async function warmPool(pool: pg.Pool, n: number): Promise<void> {
  const clients = await Promise.all(Array.from({ length: n }, () => pool.connect()));
  for (const c of clients) c.release();
}

/**
 * Creates the tables and puts `stock` units of `sku` on sale, forgetting earlier orders,
 * deductions and points for it.
 */
export async function seedFlashSale(
  shopUrl: string,
  orders: ShardedDatabase,
  sku: string,
  stock: number,
): Promise<void> {
  await withClient(shopUrl, async (client) => {
    await client.query(`
      CREATE SCHEMA IF NOT EXISTS shop;
      CREATE TABLE IF NOT EXISTS shop.inventory (
        sku   text PRIMARY KEY,
        stock integer NOT NULL CHECK (stock >= 0)
      );
      CREATE TABLE IF NOT EXISTS shop.inventory_log (
        order_id   bigint PRIMARY KEY,
        sku        text NOT NULL,
        qty        integer NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
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
    await client.query('BEGIN');
    await client.query('DELETE FROM shop.points WHERE sku = $1', [sku]);
    await client.query('DELETE FROM shop.compensations WHERE sku = $1', [sku]);
    await client.query('DELETE FROM shop.inventory_log WHERE sku = $1', [sku]);
    await client.query(
      `INSERT INTO shop.inventory (sku, stock) VALUES ($1, $2)
       ON CONFLICT (sku) DO UPDATE SET stock = EXCLUDED.stock`,
      [sku, stock],
    );
    await client.query('COMMIT');
  });
  // A scatter DELETE: no buyer in the WHERE, so every shard.
  await orders.query('DELETE FROM orders WHERE sku = $1', [sku]);
}

/** What the books say after a sale. */
export interface SaleBooks {
  /** Stock left. */
  left: number;
  /** Orders for the item, over every shard. */
  orders: number;
  /** Units in those orders. */
  unitsOrdered: number;
  /** Units the inventory service deducted (its log). */
  unitsDeducted: number;
  /** Orders whose "order placed" message the points service has handled. */
  pointsAwarded: number;
  /** Units released by compensation messages (orders that failed after deducting). */
  unitsCompensated: number;
}

/** Reads the books: inventory and points in schema shop, orders over the shards. */
export async function saleLedger(
  shopUrl: string,
  orders: ShardedDatabase,
  sku: string,
): Promise<SaleBooks> {
  const local = await withClient(shopUrl, async (client) => {
    const { rows } = await client.query<{
      left: number;
      deducted: string | null;
      points: string;
      compensated: string | null;
    }>(
      `SELECT (SELECT stock FROM shop.inventory WHERE sku = $1) AS left,
              (SELECT sum(qty) FROM shop.inventory_log WHERE sku = $1) AS deducted,
              (SELECT count(*) FROM shop.points WHERE sku = $1) AS points,
              (SELECT sum(qty) FROM shop.compensations WHERE sku = $1) AS compensated`,
      [sku],
    );
    return rows[0]!;
  });
  // Scatter-gather: COUNT and SUM from every shard, added up by the data layer.
  const { rows } = await orders.query<{ orders: string | number; units: string | number | null }>(
    'SELECT count(*) AS orders, sum(qty) AS units FROM orders WHERE sku = $1',
    [sku],
  );
  return {
    left: local.left,
    orders: Number(rows[0]?.orders ?? 0),
    unitsOrdered: Number(rows[0]?.units ?? 0),
    unitsDeducted: Number(local.deducted ?? 0),
    pointsAwarded: Number(local.points),
    unitsCompensated: Number(local.compensated ?? 0),
  };
}

/**
 * The books once the points service has caught up: reads them again (every 200 ms, for at
 * most `waitMs`) until every order's event is consumed, then returns them as they stand.
 */
export async function settledLedger(
  shopUrl: string,
  orders: ShardedDatabase,
  sku: string,
  waitMs = 30_000,
): Promise<SaleBooks> {
  let books = await saleLedger(shopUrl, orders, sku);
  const until = Date.now() + waitMs;
  while (books.pointsAwarded < books.orders && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 200));
    books = await saleLedger(shopUrl, orders, sku);
  }
  return books;
}

/**
 * The compensation sweep (Mogujie's asynchronous compensation): a deduction whose order
 * was never written (its caller timed out or failed after deducting) is released back to
 * stock once it is older than `minAgeMs`. The order is looked up by its gene id, which
 * routes to its one shard. The order service never writes an order later than its
 * deadline (2 s) plus its statement timeout, so 5 s is safe during a sale; 0 is safe once
 * traffic has stopped. Returns the units released.
 */
export async function releaseOrphanDeductions(
  shopUrl: string,
  orders: ShardedDatabase,
  sku: string,
  minAgeMs: number,
): Promise<number> {
  return withClient(shopUrl, async (client) => {
    const { rows } = await client.query<{ order_id: string }>(
      `SELECT order_id FROM shop.inventory_log
        WHERE sku = $1 AND created_at < now() - make_interval(secs => $2::float8 / 1000)`,
      [sku, minAgeMs],
    );
    let released = 0;
    for (const { order_id } of rows) {
      const found = await orders.query('SELECT 1 FROM orders WHERE order_id = $1', [order_id]);
      if (found.rows.length > 0) continue;
      const res = await client.query<{ qty: number }>(
        `WITH l AS (DELETE FROM shop.inventory_log WHERE order_id = $1 RETURNING sku, qty)
         UPDATE shop.inventory i SET stock = i.stock + l.qty FROM l WHERE i.sku = l.sku
         RETURNING l.qty`,
        [order_id],
      );
      released += res.rows[0]?.qty ?? 0;
    }
    return released;
  });
}
