/**
 * `shop.order`, one process: places orders. A place reads the product's sale price through
 * the product cache (L1 in the process → Redis → the products table; the price is computed
 * before the sale opens), deducts stock on `shop.inventory` (RPC), then writes the order on
 * its buyer's shard together with its "order placed" event in that shard's outbox, in one
 * local transaction. Orders are sharded by buyer over two PostgreSQL instances (SHOP_DB and
 * SHOP_DB_2; see order-store.ts).
 */
import { bindCacheSettings, Cache } from 'peakware/cache';
import { ConfigClient } from 'peakware/config';
import { assertDeadline, UsageError } from 'peakware/core';
import { GeneIdGenerator, PgDataSource } from 'peakware/data';
import { sqlFaultHook } from 'peakware/drill';
import { Outbox, Producer } from 'peakware/mq';
import { RpcClient } from 'peakware/rpc';
import {
  cacheSpanCollector,
  rpcTracingFilter,
  sqlSpanCollector,
  traceSend,
} from 'peakware/telemetry';
import {
  inventoryService,
  ORDER_COMPENSATE_TOPIC,
  ORDER_PLACED_TOPIC,
  orderService,
} from '../catalog.js';
import { serveCouponOrders } from '../coupon-order.js';
import { startDrillAgent } from '../drill.js';
import { isUniqueViolation, ORDER_BY_REQUEST, openOrders } from '../order-store.js';
import { OrderWriter } from '../order-writer.js';
import { loadProduct, type Product } from '../shop-database.js';
import { serviceRuntime } from './service-runtime.js';

const rt = serviceRuntime('order');
const { tracer } = rt;

const db = await openOrders(
  { ds0: rt.shopDb, ds1: rt.env('SHOP_DB_2') },
  8,
  sqlSpanCollector(tracer),
);
// With --drill: faults pushed by the control plane reach this instance's RPC methods and
// its shard statements.
const drill = await startDrillAgent(rt);
if (drill !== undefined) {
  db.setStatementHook(sqlFaultHook(drill.agent));
  rt.onStop(drill.close);
}
// A gene id: it carries the buyer's shard, so by-id and by-buyer lookups meet.
const ids = new GeneIdGenerator({
  layout: db.layout,
  table: 'orders',
  workerId: Number(process.env.WORKER_ID ?? process.pid % 64),
});
const producer = new Producer({ servers: rt.controlPlane });
/** Sends "release this order's stock" (best effort: the sweep catches what it misses). */
const compensate = (orderId: string, sku: string, qty: number, reason: string) =>
  producer
    .send(ORDER_COMPENSATE_TOPIC, {
      body: JSON.stringify({ orderId, sku, qty, reason }),
      tag: 'release',
      keys: [orderId],
    })
    .then(
      () => undefined,
      () => undefined,
    );
// The "order placed" event is written by the order's own statement on its shard, into
// that shard's outbox (peak_outbox.messages): order row and event commit together or not
// at all, with no call to the control plane on the buy's path. Each shard's relay ships
// committed events to the broker in batches (one relay per shard at a time, in order).
const outboxes = new Map(
  db.layout.dataSources.map((ds) => [
    ds,
    new Outbox({
      pool: PgDataSource.from(db.primary(ds)).pool,
      servers: rt.controlPlane,
      name: ds,
      // Events are off the buy's path: a pass 200 ms after a send (or every 500 ms) carries
      // more of them per broker call than the defaults (50 / 100 ms).
      kickMs: 200,
      idleMs: 500,
    }).start(),
  ]),
);
const orders = new OrderWriter(db, (ds) => outboxes.get(ds)!);
// Product reads go through a cache: L1 here, Redis shared by every order instance (when the
// chain has one: the stock's Redis, or a Redis Cluster of its own with --cache-cluster), the
// products table last. Its peak switches follow the config item
// shop/cache/products (the sale publishes a one-minute L1 TTL with writes frozen).
const redisUrl = process.env.SHOP_CACHE_REDIS || process.env.SHOP_REDIS || undefined;
const products = new Cache({
  name: 'shop-products',
  ...(redisUrl === undefined ? {} : { redis: redisUrl }),
  ttlMs: 300_000,
  l1: { maxEntries: 10_000 },
  // Its Redis reads and loads (not its L1 hits) are spans of the buy's trace.
  collector: cacheSpanCollector(tracer),
});
const config = new ConfigClient({ servers: rt.controlPlane, app: 'shop' });
await config.start();
const unbindCacheSettings = bindCacheSettings(products, config, { item: 'cache/products' });
const product = async (sku: string): Promise<Product> => {
  const p = await products.getOrLoad(`product:${sku}`, () => loadProduct(rt.pool, sku));
  if (p === undefined) throw new UsageError(`no product ${sku}`, { details: { input: 'sku' } });
  return p as Product;
};

/** The order `requestId` placed for `userId` already, if any (read on the buyer's shard). */
const placedBefore = async (userId: number, requestId: string): Promise<string | undefined> => {
  const { rows } = await db.query<{ order_id: string }>(ORDER_BY_REQUEST, [userId, requestId]);
  return rows[0]?.order_id;
};

const client = new RpcClient({
  registry: rt.registry,
  app: 'shop.order',
  loadBalancer: 'least-active',
  filters: [rpcTracingFilter(tracer)],
});
const inventory = client.service(inventoryService);
// Buys with a coupon: a TCC across coupon, stock and order (coupon-order.ts).
const couponOrders = serveCouponOrders(rt, db, client);

rt.rpc.addService(orderService, {
  async place({ userId, sku, qty, couponId, requestId }) {
    // A repeated request (a retry after a timeout, a double click) answers its first order.
    // Nothing is looked up before the work, as repeats are rare and the lookup would cost
    // every buy a statement: a repeat is found by the order's unique (buyer, request id)
    // index when it writes (its deduction then goes back), or, when the stock is gone by
    // then, by looking the request up before answering "sold out". A coupon buy's repeat
    // joins its first TCC (coupon-order.ts).
    const answerEarlier = async (earlierId: string) => {
      const { left } = await inventory.stock({ sku });
      return { status: 'placed' as const, orderId: earlierId, left };
    };
    const { salePriceCents } = await product(sku);
    const orderId = ids.next(userId).toString();
    if (couponId !== undefined) {
      try {
        return await couponOrders.place({
          orderId,
          userId,
          sku,
          qty,
          couponId,
          unitPriceCents: salePriceCents,
          ...(requestId === undefined ? {} : { requestId }),
        });
      } catch (err) {
        // The same request's first attempt holds the coupon: its order, once confirmed.
        const first = requestId === undefined ? undefined : await placedBefore(userId, requestId);
        if (first !== undefined) return answerEarlier(first);
        throw err;
      }
    }
    const deducted = await inventory.deduct({ orderId, sku, qty });
    if (!deducted.ok) {
      const earlier = requestId === undefined ? undefined : await placedBefore(userId, requestId);
      return earlier === undefined ? { status: 'sold-out' as const } : answerEarlier(earlier);
    }
    // Never write an order for a caller that has given up; its unit goes back by a
    // compensation message (a failed order path the order service knows about).
    try {
      assertDeadline('shop.order.place: writing the order');
    } catch (err) {
      await compensate(orderId, sku, qty, 'caller gave up before the order was written');
      throw err;
    }
    // The order row and its "order placed" event in ONE statement on the buyer's shard (the
    // outbox row rides in a writable CTE), group-committed with the other orders for that
    // shard (order-writer.ts): both commit together or neither does. A failure here leaves
    // a deduction without an order: the sweep looks the order up on its shard and releases
    // the unit if it was never written (a commit whose outcome was lost may still have
    // written it, so no compensation message is sent blindly).
    try {
      await traceSend(tracer, ORDER_PLACED_TOPIC, () =>
        orders.write(
          [orderId, userId, sku, qty, qty * salePriceCents, requestId ?? null],
          ORDER_PLACED_TOPIC,
          {
            body: JSON.stringify({ orderId, userId, sku, qty }),
            tag: 'placed',
            keys: [orderId, String(userId)],
          },
        ),
      );
    } catch (err) {
      // The same request id placed its order first (two attempts at once, both past the
      // lookup above): this attempt's unit goes back, and it answers the first one's order.
      const first =
        requestId !== undefined && isUniqueViolation(err)
          ? await placedBefore(userId, requestId)
          : undefined;
      if (first === undefined) throw err;
      await compensate(orderId, sku, qty, 'the same request placed its order first');
      return answerEarlier(first);
    }
    return { status: 'placed' as const, orderId, left: deducted.left };
  },
  async get({ orderId }) {
    const { rows } = await db.query<{ user_id: string; sku: string; qty: number }>(
      'SELECT user_id, sku, qty FROM orders WHERE order_id = $1',
      [orderId],
    );
    const row = rows[0];
    return row === undefined
      ? null
      : { orderId, userId: Number(row.user_id), sku: row.sku, qty: row.qty };
  },
});

rt.onStop(() => Promise.all([...outboxes.values()].map((o) => o.close({ drain: true }))));
rt.onStop(() => producer.close());
rt.onStop(() => db.close());
rt.onStop(() => client.close());
rt.onStop(() => {
  unbindCacheSettings();
  return config.close();
});
rt.onStop(() => products.close());

// The sharded pools were opened by openOrders (minIdle), before the service registers.
await products.ready();
await rt.ready({ serve: true });
