/**
 * The coupon chain's tables and books. Coupons and payments live in schema `shop` of the
 * control plane's PostgreSQL (#1), beside the stock; each database a branch writes to (#1
 * for coupon and stock, both order shards for the order) has the txn barrier table
 * (`peak_txn.barrier`, created through `installBarrier`, peak tooling).
 */
import type { ShardedDatabase } from 'peakware/data';
import { installBarrier } from 'peakware/txn';
import pg from 'pg';

/** The discount of every coupon the sale issues, cents. */
export const COUPON_DISCOUNT_CENTS = 5_000;

/** Creates the coupon and payment tables in `pool`'s database and the barrier table in every database of the chain. */
export async function installCouponChain(pool: pg.Pool, databases: string[]): Promise<void> {
  await pool.query(`
    CREATE SCHEMA IF NOT EXISTS shop;
    CREATE TABLE IF NOT EXISTS shop.coupons (
      coupon_id      text PRIMARY KEY,
      user_id        bigint NOT NULL,
      discount_cents integer NOT NULL CHECK (discount_cents >= 0),
      status         text NOT NULL CHECK (status IN ('issued', 'locked', 'used')),
      order_id       bigint,
      releases       integer NOT NULL DEFAULT 0
    );
    CREATE INDEX IF NOT EXISTS coupons_order ON shop.coupons (order_id);
    CREATE TABLE IF NOT EXISTS shop.payments (
      order_id     bigint PRIMARY KEY,
      amount_cents integer NOT NULL
    );`);
  for (const url of databases) {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await installBarrier(client);
    } finally {
      await client.end();
    }
  }
}

/** Issues coupon `c-<user>` (couponOf) to each buyer 1..`users` (a reset: earlier coupons and payments are forgotten). */
export async function seedCoupons(pool: pg.Pool, users: number): Promise<void> {
  await pool.query('TRUNCATE shop.coupons, shop.payments');
  await pool.query(
    `INSERT INTO shop.coupons (coupon_id, user_id, discount_cents, status)
     SELECT 'c-' || u, u, $2, 'issued' FROM generate_series(1, $1::int) AS u`,
    [users, COUPON_DISCOUNT_CENTS],
  );
}

/** The coupon chain's books after a sale. */
export interface CouponBooks {
  /** Coupons used by a confirmed order (coupon orders placed). */
  used: number;
  /** Coupons still locked (none once every coupon order has settled). */
  locked: number;
  /** Up to 5 of them, to look up (`peak txn ls`, the order id): what the report names. */
  lockedCoupons: { couponId: string; userId: number; orderId: string | null }[];
  /** Times a locked coupon was released (coupon orders cancelled). */
  released: number;
  /** Used coupons whose order is not on its shard (must be 0). */
  usedWithoutOrder: number;
  /** Units ordered by coupon orders. */
  unitsOrdered: number;
  /** Payments recorded by the payment callback. */
  payments: number;
  /** Payments whose order was never placed (must be 0). */
  paidWithoutOrder: number;
}

/** Reads the coupon books: coupons in schema shop, their orders looked up on their shards. */
export async function couponLedger(pool: pg.Pool, orders: ShardedDatabase): Promise<CouponBooks> {
  const { rows } = await pool.query<{ used: string; locked: string; released: string | null }>(
    `SELECT count(*) FILTER (WHERE status = 'used') AS used,
            count(*) FILTER (WHERE status = 'locked') AS locked,
            sum(releases) AS released
       FROM shop.coupons`,
  );
  const { rows: lockedRows } = await pool.query<{
    coupon_id: string;
    user_id: string;
    order_id: string | null;
  }>(
    `SELECT coupon_id, user_id, order_id FROM shop.coupons WHERE status = 'locked'
      ORDER BY coupon_id LIMIT 5`,
  );
  const { rows: used } = await pool.query<{ order_id: string }>(
    `SELECT order_id FROM shop.coupons WHERE status = 'used'`,
  );
  const { rows: paid } = await pool.query<{ order_id: string }>(
    'SELECT order_id FROM shop.payments',
  );
  // Each order is looked up by its gene id, which routes to its one shard.
  const placedUnits = async (orderId: string) => {
    const r = await orders.query<{ qty: number }>('SELECT qty FROM orders WHERE order_id = $1', [
      orderId,
    ]);
    return r.rows[0]?.qty;
  };
  let usedWithoutOrder = 0;
  let unitsOrdered = 0;
  for (const { order_id } of used) {
    const qty = await placedUnits(order_id);
    if (qty === undefined) usedWithoutOrder++;
    else unitsOrdered += qty;
  }
  let paidWithoutOrder = 0;
  for (const { order_id } of paid)
    if ((await placedUnits(order_id)) === undefined) paidWithoutOrder++;
  return {
    used: Number(rows[0]!.used),
    locked: Number(rows[0]!.locked),
    lockedCoupons: lockedRows.map((r) => ({
      couponId: r.coupon_id,
      userId: Number(r.user_id),
      orderId: r.order_id,
    })),
    released: Number(rows[0]!.released ?? 0),
    usedWithoutOrder,
    unitsOrdered,
    payments: paid.length,
    paidWithoutOrder,
  };
}

/**
 * Reads the coupon books until no coupon is locked and every used coupon's order is written
 * (every coupon order confirmed or cancelled by the coordinator; every 200 ms, for at most
 * `waitMs`), then returns them.
 */
export async function settledCouponLedger(
  pool: pg.Pool,
  orders: ShardedDatabase,
  waitMs = 30_000,
): Promise<CouponBooks> {
  let books = await couponLedger(pool, orders);
  const until = Date.now() + waitMs;
  while ((books.locked > 0 || books.usedWithoutOrder > 0) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 200));
    books = await couponLedger(pool, orders);
  }
  return books;
}

/** The coupon books balance: nothing left locked, every used coupon's order placed, every paid order placed. */
export function couponBooksBalance(books: CouponBooks): boolean {
  return books.locked === 0 && books.usedWithoutOrder === 0 && books.paidWithoutOrder === 0;
}
