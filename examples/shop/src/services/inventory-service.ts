/**
 * `shop.inventory`, one process: the hot stock, shaved off the stock row by a
 * `peakware/cache` stock engine (stock.ts: Redis with a writer behind it when the chain has
 * Redis, else batched PostgreSQL statements), so a flash sale never oversells and never
 * queues on one row; and the release of stock for orders that failed after their deduction.
 */
import { Consumer } from 'peakware/mq';
import { cacheSpanCollector } from 'peakware/telemetry';
import { inventoryService, ORDER_COMPENSATE_TOPIC } from '../catalog.js';
import { serveStockBranch } from '../coupon-stock-branch.js';
import { startDrillAgent } from '../drill.js';
import { BUY_LIMITS } from '../edge.js';
import { openStressAwareStock } from '../shadow-stock.js';
import { serviceRuntime } from './service-runtime.js';

const rt = serviceRuntime('inventory');
const { pool } = rt;
// With --drill: faults pushed by the control plane reach this instance's RPC methods.
const drill = await startDrillAgent(rt);
if (drill !== undefined) rt.onStop(drill.close);
// With Redis each inventory process also runs a writer: the writers share the deduction
// stream as one consumer group and take over each other's work if one dies.
// Stress calls (--stress-beside) deduct the shadow stock, never the real one (shadow-stock.ts).
// Each deduction, release and read is a span of the buyer's trace (inventory → Redis in the
// topology).
const stock = openStressAwareStock(pool, process.env.SHOP_REDIS || undefined, {
  writer: true,
  shadow: process.env.SHOP_SHADOW === '1',
  collector: cacheSpanCollector(rt.tracer),
});

// Sentinel-style protection: at most 12 deducts in flight per instance; the rest are
// refused at once (the buyer sees "busy") instead of queueing past their deadline. A
// capacity run lifts the limit (SHOP_DEDUCT_CONCURRENCY) to measure the chain.
rt.guard.loadRules({
  flow: [
    {
      resource: 'shop.inventory.deduct',
      grade: 'concurrency',
      count: Number(process.env.SHOP_DEDUCT_CONCURRENCY ?? BUY_LIMITS.deductConcurrency),
    },
  ],
});

const slowMs = Number(process.env.SHOP_INVENTORY_SLOW_MS ?? 0);
rt.rpc.addService(inventoryService, {
  async stock({ sku }) {
    return { sku, left: await stock.engine.stock(sku) };
  },
  async deduct({ orderId, sku, qty }) {
    // The --scale-demo's deliberately slower v2 (inventory-v2-service.ts).
    if (slowMs > 0) await new Promise((r) => setTimeout(r, slowMs));
    // Idempotent by order id: a retry of a deduction that happened answers ok again.
    const r = await stock.engine.deduct(sku, orderId, qty);
    return { ok: r.ok, left: r.left };
  },
});

// The stock branch of buys with a coupon (a TCC driven by the txn coordinator).
serveStockBranch(rt, stock.engine);

// Compensation: release the stock of an order that failed after its deduction, once (the
// engine releases an order's units at most once), and record why.
const compensation = new Consumer({
  servers: rt.controlPlane,
  group: 'shop.inventory-compensation',
  topic: ORDER_COMPENSATE_TOPIC,
  concurrency: 4,
  waitMs: 2000,
  handler: async (message) => {
    const { orderId, sku, qty, reason } = message.json<{
      orderId: string;
      sku: string;
      qty: number;
      reason: string;
    }>();
    const r = await stock.engine.release(sku, orderId);
    if (r.released) {
      await pool.query(
        `INSERT INTO shop.compensations (order_id, sku, qty, reason) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING`,
        [orderId, sku, qty, reason],
      );
    }
  },
}).start();
rt.onStop(() => compensation.close());
rt.onStop(() => stock.close());

await rt.ready({ serve: true });
