/**
 * The shop's edge is `peak gateway`: the buy route to the order service, the buyers' app
 * with its API key and approved subscription, published through the admin client, and the
 * flash-sale guard rules the gateway follows from the config center (item
 * `shop/governance/guard-rules`): the buy route as a whole, the hot item on its own
 * (hot-parameter rule on the SKU, so one item's rush cannot starve the rest), and system
 * protection against piling up requests in flight.
 */
import type { AdminClient } from 'peakware/admin';
import { rpcRoute } from 'peakware/gateway';
import type { GuardRules } from 'peakware/guard';
import { orderService } from './catalog.js';

/** The resource the guard rules protect: the buy route's. */
export const BUY_RESOURCE = 'POST /api/buy';

/** The app the flash-sale buyers (the load generators) call as. */
export const BUYERS_APP = 'shop.buyers';

/** The limits the shop runs with (the inventory provider sets `deductConcurrency`). */
export const BUY_LIMITS = {
  routeQps: 1500,
  itemQps: 1000,
  hotItemQps: 150,
  maxInFlight: 200,
  deductConcurrency: 12,
} as const;

/** The flash-sale rules, Sentinel style. */
export function flashSaleRules(hotSku: string): GuardRules {
  return {
    flow: [{ resource: BUY_RESOURCE, count: BUY_LIMITS.routeQps }],
    param: [
      {
        resource: BUY_RESOURCE,
        paramIndex: 0,
        count: BUY_LIMITS.itemQps,
        items: [{ value: hotSku, count: BUY_LIMITS.hotItemQps }],
      },
    ],
    system: [{ maxConcurrency: BUY_LIMITS.maxInFlight }],
  };
}

/**
 * Publishes the edge: `POST /api/buy` → `shop.order.place` (checked by its zod schema,
 * sold out answered 409, 2 s for the whole chain, the SKU given to guard for the hot-item
 * rule), and the buyers' app with a key and an approved subscription. Resolves with the
 * API key (`<key id>.<secret>`) the buyers send as `x-peak-api-key`.
 */
export async function publishEdge(admin: AdminClient): Promise<string> {
  await admin.gateway.putRoute(
    rpcRoute(orderService, 'place', {
      name: 'shop.buy',
      api: 'shop.buy',
      method: 'POST',
      path: '/api/buy',
      auth: 'key',
      timeoutMs: 2000,
      maxBodyBytes: 16 * 1024,
      resource: BUY_RESOURCE,
      guardArgs: ['body.sku'],
      statusField: 'status',
      statuses: { 'sold-out': 409 },
    }),
  );
  await admin.gateway.putApp({ name: BUYERS_APP, description: 'the flash-sale buyers' });
  const key = await admin.gateway.createKey(BUYERS_APP);
  await admin.gateway.requestSubscription(BUYERS_APP, 'shop.buy');
  await admin.gateway.approve(BUYERS_APP, 'shop.buy');
  return `${key.id}.${key.secret}`;
}
