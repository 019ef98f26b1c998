/**
 * `shop.points`, one process: consumes "order placed" events (relayed from each order
 * shard's outbox) and awards points, at least once in delivery and exactly once in effect
 * (the award's primary key is the order id).
 */
import { ConfigClient } from 'peakware/config';
import { bindConsumerPause } from 'peakware/drill';
import { Consumer } from 'peakware/mq';
import { traceConsumerBatch } from 'peakware/telemetry';
import { ORDER_PLACED_TOPIC, POINTS_GROUP } from '../catalog.js';
import { startShadowPoints } from '../shadow-points.js';
import { serviceRuntime } from './service-runtime.js';

const rt = serviceRuntime('points');

const consumer = new Consumer({
  servers: rt.controlPlane,
  group: POINTS_GROUP,
  topic: ORDER_PLACED_TOPIC,
  concurrency: 64,
  waitMs: 2000,
  // Receive what arrived in the last 50 ms at once rather than one message a receive, and
  // award a receive's events in one statement (a batch that fails is retried as a whole;
  // ON CONFLICT keeps a redelivered award single).
  lingerMs: 50,
  batchSize: 64,
  batchHandler: traceConsumerBatch(rt.tracer, async (messages) => {
    const events = messages.map((m) =>
      m.json<{ orderId: string; userId: number; sku: string; qty: number }>(),
    );
    await rt.pool.query(
      `INSERT INTO shop.points (order_id, user_id, sku, points)
       SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::int[])
       ON CONFLICT DO NOTHING`,
      [
        events.map((e) => e.orderId),
        events.map((e) => e.userId),
        events.map((e) => e.sku),
        events.map((e) => 10 * e.qty),
      ],
    );
  }),
});
// A plan may pause the group (config item shop/mq-pause/shop.points): the consumer closes
// and its events wait in the queue until the plan is rolled back.
const config = new ConfigClient({ servers: rt.controlPlane, app: 'shop' });
await config.start();
const unbindPause = bindConsumerPause(config, POINTS_GROUP, consumer);
rt.onStop(async () => {
  unbindPause();
  await consumer.close();
  await config.close();
});

// With --stress-beside: stress orders' events award points in the shadow table.
startShadowPoints(rt);

await rt.ready({ serve: false });
