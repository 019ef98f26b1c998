/**
 * `shop.points`, one process: consumes "order placed" events (relayed from each order
 * shard's outbox) and awards points, at least once in delivery and exactly once in effect
 * (the award's primary key is the order id).
 */
import { Consumer } from 'peakware/mq';
import { traceConsumer } from 'peakware/telemetry';
import { ORDER_PLACED_TOPIC, POINTS_GROUP } from '../catalog.js';
import { serviceRuntime } from './service-runtime.js';

const rt = serviceRuntime('points');

const consumer = new Consumer({
  servers: rt.controlPlane,
  group: POINTS_GROUP,
  topic: ORDER_PLACED_TOPIC,
  concurrency: 32,
  waitMs: 2000,
  // Receive what arrived in the last 50 ms at once rather than one message a receive.
  lingerMs: 50,
  handler: traceConsumer(rt.tracer, async (message) => {
    const event = message.json<{ orderId: string; userId: number; sku: string; qty: number }>();
    await rt.pool.query(
      'INSERT INTO shop.points (order_id, user_id, sku, points) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING',
      [event.orderId, event.userId, event.sku, 10 * event.qty],
    );
  }),
}).start();
rt.onStop(() => consumer.close());

await rt.ready({ serve: false });
