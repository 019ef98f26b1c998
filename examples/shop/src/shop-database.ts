/**
 * The shop's business data: schema `shop` in the control plane's PostgreSQL on the laptop
 * setup. Sharing the database is what lets an order and its "order placed" message commit
 * in one local transaction (the message queue's transactional outbox lives in schema
 * `peak`). Tables are the application's, created here, never by Peakware.
 */
import pg from 'pg';

/** Creates the tables and puts `stock` units of `sku` on sale (forgetting earlier orders). */
export async function seedFlashSale(shopUrl: string, sku: string, stock: number): Promise<void> {
  const client = new pg.Client({ connectionString: shopUrl });
  await client.connect();
  try {
    await client.query(`
      CREATE SCHEMA IF NOT EXISTS shop;
      CREATE TABLE IF NOT EXISTS shop.inventory (
        sku   text PRIMARY KEY,
        stock integer NOT NULL CHECK (stock >= 0)
      );
      CREATE TABLE IF NOT EXISTS shop.orders (
        order_id   bigint PRIMARY KEY,
        user_id    bigint NOT NULL,
        sku        text NOT NULL,
        qty        integer NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE IF NOT EXISTS shop.inventory_log (
        order_id   bigint PRIMARY KEY,
        sku        text NOT NULL,
        qty        integer NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE IF NOT EXISTS shop.points (
        order_id bigint PRIMARY KEY,
        user_id  bigint NOT NULL,
        points   integer NOT NULL
      );`);
    await client.query('BEGIN');
    await client.query(
      'DELETE FROM shop.points WHERE order_id IN (SELECT order_id FROM shop.orders WHERE sku = $1)',
      [sku],
    );
    await client.query('DELETE FROM shop.orders WHERE sku = $1', [sku]);
    await client.query('DELETE FROM shop.inventory_log WHERE sku = $1', [sku]);
    await client.query(
      `INSERT INTO shop.inventory (sku, stock) VALUES ($1, $2)
       ON CONFLICT (sku) DO UPDATE SET stock = EXCLUDED.stock`,
      [sku, stock],
    );
    await client.query('COMMIT');
  } finally {
    await client.end();
  }
}

/** What the database says after a sale: stock left, orders, units sold. */
export async function saleLedger(
  shopUrl: string,
  sku: string,
): Promise<{
  left: number;
  orders: number;
  unitsOrdered: number;
  unitsDeducted: number;
  /** Orders whose "order placed" message the points service has handled. */
  pointsAwarded: number;
}> {
  const client = new pg.Client({ connectionString: shopUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{
      left: number;
      orders: string;
      units: string | null;
      deducted: string | null;
      points: string;
    }>(
      `SELECT (SELECT stock FROM shop.inventory WHERE sku = $1) AS left,
              (SELECT count(*) FROM shop.orders WHERE sku = $1) AS orders,
              (SELECT sum(qty) FROM shop.orders WHERE sku = $1) AS units,
              (SELECT sum(qty) FROM shop.inventory_log WHERE sku = $1) AS deducted,
              (SELECT count(*) FROM shop.points p JOIN shop.orders o USING (order_id)
                WHERE o.sku = $1) AS points`,
      [sku],
    );
    const row = rows[0]!;
    return {
      left: row.left,
      orders: Number(row.orders),
      unitsOrdered: Number(row.units ?? 0),
      unitsDeducted: Number(row.deducted ?? 0),
      pointsAwarded: Number(row.points),
    };
  } finally {
    await client.end();
  }
}

/**
 * The compensation sweep (Mogujie's asynchronous compensation): a deduction whose order
 * was never written (its caller timed out or failed after deducting) is released back to
 * stock once it is older than `minAgeMs`. The order service never writes an order later
 * than its deadline (2 s) plus its statement timeout (2 s), so 5 s is safe during a sale;
 * 0 is safe once traffic has stopped. Returns the units released.
 */
export async function releaseOrphanDeductions(
  shopUrl: string,
  sku: string,
  minAgeMs: number,
): Promise<number> {
  const client = new pg.Client({ connectionString: shopUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ released: string | null }>(
      `WITH orphan AS (
         DELETE FROM shop.inventory_log l
          WHERE l.sku = $1
            AND l.created_at < now() - make_interval(secs => $2::float8 / 1000)
            AND NOT EXISTS (SELECT 1 FROM shop.orders o WHERE o.order_id = l.order_id)
          RETURNING qty),
       total AS (SELECT coalesce(sum(qty), 0)::int AS units FROM orphan),
       upd AS (UPDATE shop.inventory SET stock = stock + (SELECT units FROM total) WHERE sku = $1)
       SELECT units AS released FROM total`,
      [sku, minAgeMs],
    );
    return Number(rows[0]?.released ?? 0);
  } finally {
    await client.end();
  }
}
