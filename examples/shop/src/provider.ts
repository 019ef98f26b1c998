/**
 * One buy-chain service in its own process: `node provider.js inventory|order|points`.
 * inventory and order serve over Peakware RPC; points consumes "order placed" events from
 * the message queue. Each registers with the control plane (PEAK_SERVER), keeps
 * business data in the shop database (SHOP_DB), prints one JSON line when ready, and goes
 * offline gracefully on SIGTERM (deregister, drain, close).
 */
import { assertDeadline } from 'peakware/core';
import { GeneIdGenerator, PgDataSource, type ShardedDatabase } from 'peakware/data';
import { Guard, guardRpcFilter } from 'peakware/guard';
import { Consumer, Outbox, Producer } from 'peakware/mq';
import { HttpRegistry } from 'peakware/registry';
import { RpcClient, RpcServer } from 'peakware/rpc';
import { rpcTracingFilter, sqlSpanCollector, traceConsumer, traceSend } from 'peakware/telemetry';
import pg from 'pg';
import {
  inventoryService,
  ORDER_COMPENSATE_TOPIC,
  ORDER_PLACED_TOPIC,
  orderService,
  POINTS_GROUP,
} from './catalog.js';
import { BUY_LIMITS } from './gateway.js';
import { openOrders } from './order-store.js';
import { warmPool } from './shop-database.js';
import { sampleRatioFromEnv, shopTelemetry } from './shop-telemetry.js';

const role = process.argv[2];
const controlPlane = process.env.PEAK_SERVER;
const shopDb = process.env.SHOP_DB;
if ((role !== 'inventory' && role !== 'order' && role !== 'points') || !controlPlane || !shopDb) {
  console.error('usage: PEAK_SERVER=<url> SHOP_DB=<url> node provider.js inventory|order|points');
  process.exit(2);
}

// statement_timeout bounds how late an order can be written (the compensation sweep relies on it).
const pool = new pg.Pool({ connectionString: shopDb, max: 8, statement_timeout: 2000 });
pool.on('error', () => undefined);
const registry = new HttpRegistry({ servers: [controlPlane], leaseMs: 6000 });
// Sentinel-style protection of the hot row: at most 12 deducts in flight per instance;
// the rest are refused at once (the buyer sees "busy") instead of queueing past their deadline.
const guard = new Guard();
guard.loadRules({
  flow: [
    {
      resource: 'shop.inventory.deduct',
      grade: 'concurrency',
      // A capacity run lifts the limit (SHOP_DEDUCT_CONCURRENCY) to measure the chain itself.
      count: Number(process.env.SHOP_DEDUCT_CONCURRENCY ?? BUY_LIMITS.deductConcurrency),
    },
  ],
});
let orders: ShardedDatabase | undefined;
let producer: Producer | undefined;
let outboxes: Map<string, Outbox> | undefined;
const telemetry = shopTelemetry(`shop.${role}`, controlPlane, guard, sampleRatioFromEnv());
const { tracer } = telemetry;
const server = new RpcServer({
  registry,
  drainTimeoutMs: 5000,
  maxInFlight: 2000,
  filters: [rpcTracingFilter(tracer), guardRpcFilter(guard)],
});
let client: RpcClient | undefined;

if (role === 'inventory') {
  server.addService(inventoryService, {
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
} else if (role === 'order') {
  const shopDb2 = process.env.SHOP_DB_2;
  if (!shopDb2) {
    console.error('the order service needs SHOP_DB_2 (the second order shard)');
    process.exit(2);
  }
  orders = await openOrders({ ds0: shopDb, ds1: shopDb2 }, 8, sqlSpanCollector(tracer));
  const db = orders;
  const ids = new GeneIdGenerator({
    layout: db.layout,
    table: 'orders',
    workerId: Number(process.env.WORKER_ID ?? process.pid % 64),
  });
  producer = new Producer({ server: controlPlane });
  const events = producer;
  /** Sends "release this order's stock" (best effort: the sweep catches what it misses). */
  const compensate = (orderId: string, sku: string, qty: number, reason: string) =>
    events
      .send(ORDER_COMPENSATE_TOPIC, {
        body: JSON.stringify({ orderId, sku, qty, reason }),
        tag: 'release',
        keys: [orderId],
      })
      .then(
        () => undefined,
        () => undefined,
      );
  // The "order placed" event is written by the order's own shard transaction, into that
  // shard's outbox (peak_outbox.messages): order row and event commit together or not at
  // all, with no call to the control plane on the buy's path. Each shard's relay ships
  // committed events to the broker in batches (one relay per shard at a time, in order).
  const relays = new Map(
    db.layout.dataSources.map((ds) => [
      ds,
      new Outbox({
        pool: PgDataSource.from(db.primary(ds)).pool,
        server: controlPlane,
        name: ds,
      }).start(),
    ]),
  );
  outboxes = relays;
  client = new RpcClient({
    registry,
    app: 'shop.order',
    loadBalancer: 'least-active',
    filters: [rpcTracingFilter(tracer)],
  });
  const inventory = client.service(inventoryService);
  server.addService(orderService, {
    async place({ userId, sku, qty }) {
      // A gene id: it carries the buyer's shard, so by-id and by-buyer lookups meet.
      const orderId = ids.next(userId).toString();
      const deducted = await inventory.deduct({ orderId, sku, qty });
      if (!deducted.ok) return { status: 'sold-out' as const };
      // Never write an order for a caller that has given up; its unit goes back by a
      // compensation message (a failed order path the order service knows about).
      try {
        assertDeadline('shop.order.place: writing the order');
      } catch (err) {
        await compensate(orderId, sku, qty, 'caller gave up before the order was written');
        throw err;
      }
      // A failure here leaves a deduction without an order: the sweep looks the order up on
      // its shard and releases the unit if it was never written (a commit whose outcome was
      // lost may still have written it, so no compensation message is sent blindly).
      await db.transaction(
        async (tx) => {
          await tx.query(
            'INSERT INTO orders (order_id, user_id, sku, qty) VALUES ($1, $2, $3, $4)',
            [orderId, userId, sku, qty],
          );
          const outbox = relays.get(tx.dataSource!)!;
          await traceSend(tracer, ORDER_PLACED_TOPIC, () =>
            outbox.send(tx.client, ORDER_PLACED_TOPIC, {
              body: JSON.stringify({ orderId, userId, sku, qty }),
              tag: 'placed',
              keys: [orderId, String(userId)],
            }),
          );
        },
        { routeBy: { table: 'orders', value: userId } },
      );
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
}

let consumer: Consumer | undefined;
if (role === 'inventory') {
  // Compensation: release the stock of an order that failed after its deduction. Idempotent
  // (the deduction log row is deleted once), and only for orders the order service knows
  // were not written.
  consumer = new Consumer({
    server: controlPlane,
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
}
if (role === 'points') {
  // At-least-once delivery: the primary key makes a redelivered event award nothing twice.
  consumer = new Consumer({
    server: controlPlane,
    group: POINTS_GROUP,
    topic: ORDER_PLACED_TOPIC,
    concurrency: 16,
    waitMs: 2000,
    handler: traceConsumer(tracer, async (message) => {
      const event = message.json<{ orderId: string; userId: number; sku: string; qty: number }>();
      await pool.query(
        'INSERT INTO shop.points (order_id, user_id, sku, points) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING',
        [event.orderId, event.userId, event.sku, 10 * event.qty],
      );
    }),
  }).start();
  await warmPool(pool, 8);
  console.log(JSON.stringify({ event: 'ready', role }));
} else {
  // Connections are opened before the service registers, not by the sale's first calls.
  await warmPool(pool, 8);
  if (orders !== undefined) {
    const sharded = orders;
    await Promise.all(
      Array.from({ length: 8 }, () => sharded.query('SELECT count(*) AS n FROM orders')),
    );
  }
  const { port } = await server.start();
  console.log(JSON.stringify({ event: 'ready', role, port, instanceId: server.instanceId }));
}

// SIGTERM from the chain, or SIGINT when Ctrl-C in a terminal reaches the whole process
// group: either way deregister, drain and close, once.
let stopping = false;
const shutdown = () => {
  if (stopping) return;
  stopping = true;
  (role === 'points' ? Promise.resolve() : server.stop())
    .then(() => consumer?.close())
    .then(() => Promise.all([...(outboxes?.values() ?? [])].map((o) => o.close({ drain: true }))))
    .then(() => producer?.close())
    .then(() => orders?.close())
    .then(() => telemetry.close())
    .then(() => client?.close())
    .then(() => registry.close())
    .then(() => pool.end())
    .then(() => guard.close())
    .then(
      () => process.exit(0),
      () => process.exit(1),
    );
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
