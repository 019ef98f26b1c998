/**
 * The payment callback at the edge: `POST /api/payments/callback` on `peak gateway` →
 * `shop.coupon.paid`, called by the payment provider (gateway app `shop.payment-provider`,
 * its own API key and approved subscription), published through the admin client.
 */
import type { AdminClient } from 'peakware/admin';
import { rpcRoute } from 'peakware/gateway';
import { couponService } from './coupon-catalog.js';

/** The gateway app the payment provider calls back as. */
export const PAYMENT_PROVIDER_APP = 'shop.payment-provider';

/** The payment callback's path at the gateway. */
export const PAYMENT_CALLBACK_PATH = '/api/payments/callback';

/** Publishes the callback route and the provider's app; resolves with its API key (`<key id>.<secret>`). */
export async function publishPaymentCallback(admin: AdminClient): Promise<string> {
  await admin.gateway.putRoute(
    rpcRoute(couponService, 'paid', {
      name: 'shop.pay',
      api: 'shop.pay',
      method: 'POST',
      path: PAYMENT_CALLBACK_PATH,
      auth: 'key',
      timeoutMs: 2000,
      maxBodyBytes: 4 * 1024,
    }),
  );
  await admin.gateway.putApp({
    name: PAYMENT_PROVIDER_APP,
    description: 'the payment provider: calls back when an order is paid',
  });
  const key = await admin.gateway.createKey(PAYMENT_PROVIDER_APP);
  await admin.gateway.requestSubscription(PAYMENT_PROVIDER_APP, 'shop.pay');
  await admin.gateway.approve(PAYMENT_PROVIDER_APP, 'shop.pay');
  return `${key.id}.${key.secret}`;
}
