/**
 * The points service's shadow consumer: stress orders' "order placed" events arrive in the
 * shadow topic (`%SHADOW%shop.order-placed`, where the broker puts every message carrying
 * the stress flag) and award points into the shadow table `shop.points_shadow`, never into
 * `shop.points`. Started beside the real consumer when the shop runs with `--stress-beside`
 * (SHOP_SHADOW=1).
 */
import { Consumer } from 'peakware/mq';
import { traceConsumerBatch } from 'peakware/telemetry';
import { ORDER_PLACED_TOPIC, POINTS_GROUP } from './catalog.js';
import type { ServiceRuntime } from './services/service-runtime.js';

/** The shadow copy of `shop.points`. */
export const SHADOW_POINTS_TABLE = 'shop.points_shadow';

/**
 * Starts the shadow consumer on `rt` when the chain asked for shadow traffic; its stop is
 * added to the runtime's.
 */
export function startShadowPoints(rt: ServiceRuntime): void {
  if (process.env.SHOP_SHADOW !== '1') return;
  const consumer = new Consumer({
    servers: rt.controlPlane,
    group: POINTS_GROUP,
    topic: ORDER_PLACED_TOPIC,
    shadow: true,
    concurrency: 16,
    waitMs: 2000,
    lingerMs: 50,
    batchSize: 64,
    batchHandler: traceConsumerBatch(rt.tracer, async (messages) => {
      const events = messages.map((m) =>
        m.json<{ orderId: string; userId: number; sku: string; qty: number }>(),
      );
      await rt.pool.query(
        `INSERT INTO ${SHADOW_POINTS_TABLE} (order_id, user_id, sku, points)
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
  }).start();
  rt.onStop(() => consumer.close());
}
