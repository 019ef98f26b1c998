/**
 * `shop.inventory`, one process: stock per SKU in schema `shop` of the shop database,
 * deducted atomically so a flash sale never oversells, and released again by compensation
 * messages for orders that failed after their deduction.
 */
import { Consumer } from 'peakware/mq';
import { inventoryService, ORDER_COMPENSATE_TOPIC } from '../catalog.js';
import { BUY_LIMITS } from '../gateway.js';
import { serviceRuntime } from './service-runtime.js';

const rt = serviceRuntime('inventory');
const { pool } = rt;

// Sentinel-style protection of the hot row: at most 12 deducts in flight per instance;
// the rest are refused at once (the buyer sees "busy") instead of queueing past their
// deadline. A capacity run lifts the limit (SHOP_DEDUCT_CONCURRENCY) to measure the chain.
rt.guard.loadRules({
  flow: [
    {
      resource: 'shop.inventory.deduct',
      grade: 'concurrency',
      count: Number(process.env.SHOP_DEDUCT_CONCURRENCY ?? BUY_LIMITS.deductConcurrency),
    },
  ],
});

rt.rpc.addService(inventoryService, {
  async stock({ sku }) {
    const { rows } = await pool.query<{ stock: number }>(
      'SELECT stock FROM shop.inventory WHERE sku = $1',
      [sku],
    );
    return { sku, left: rows[0]?.stock ?? 0 };
  },
  async deduct({ orderId, sku, qty }) {
    // One statement, so the hot row is locked only for its own duration: deduct only if
    // stock suffices and this order has not deducted before (the log's primary key turns a
    // concurrent duplicate into an error that rolls the whole statement back).
    const { rows } = await pool.query<{ left: number | null; prior: boolean }>(
      `WITH prior AS (SELECT 1 FROM shop.inventory_log WHERE order_id = $1),
            d AS (UPDATE shop.inventory SET stock = stock - $3
                   WHERE sku = $2 AND stock >= $3 AND NOT EXISTS (SELECT 1 FROM prior)
                   RETURNING stock),
            l AS (INSERT INTO shop.inventory_log (order_id, sku, qty) SELECT $1, $2, $3 FROM d)
       SELECT (SELECT stock FROM d) AS left, EXISTS (SELECT 1 FROM prior) AS prior`,
      [orderId, sku, qty],
    );
    const row = rows[0]!;
    if (row.left !== null) return { ok: true, left: row.left };
    if (row.prior) return { ok: true, left: -1 }; // a retry of a deduct that already happened
    return { ok: false, left: 0 };
  },
});

// Compensation: release the stock of an order that failed after its deduction. Idempotent
// (the deduction log row is deleted once), and only for orders the order service knows
// were not written.
const compensation = new Consumer({
  servers: rt.controlPlane,
  group: 'shop.inventory-compensation',
  topic: ORDER_COMPENSATE_TOPIC,
  concurrency: 4,
  waitMs: 2000,
  handler: async (message) => {
    const { orderId, reason } = message.json<{ orderId: string; reason: string }>();
    await pool.query(
      `WITH l AS (DELETE FROM shop.inventory_log WHERE order_id = $1 RETURNING sku, qty),
            u AS (UPDATE shop.inventory i SET stock = i.stock + l.qty FROM l WHERE i.sku = l.sku)
       INSERT INTO shop.compensations (order_id, sku, qty, reason)
       SELECT $1, sku, qty, $2 FROM l ON CONFLICT DO NOTHING`,
      [orderId, reason],
    );
  },
}).start();
rt.onStop(() => compensation.close());

await rt.ready({ serve: true });
