/**
 * `shop.coupon`, one process: the coupon branch of a coupon order (a TCC driven by the txn
 * coordinator: lock on try, use on confirm, release on cancel, each in the barrier on the
 * shop database, so a repeat, an early cancel or a late try is harmless), the promotion read
 * (the price with the coupon) and the payment callback (an order marked paid).
 */
import { BranchRefusedError, barrier } from 'peakware/txn';
import { couponService } from '../coupon-catalog.js';
import { serviceRuntime } from './service-runtime.js';

const rt = serviceRuntime('coupon');
const { pool } = rt;

rt.rpc.addService(couponService, {
  async lock({ couponId, userId, orderId }) {
    const r = await barrier(pool, undefined, async (client) => {
      const res = await client.query(
        `UPDATE shop.coupons SET status = 'locked', order_id = $3
          WHERE coupon_id = $1 AND user_id = $2 AND status = 'issued'`,
        [couponId, userId, orderId],
      );
      if (res.rowCount === 0) {
        // Refused for good: the coordinator cancels the other branches at once.
        throw new BranchRefusedError(
          `coupon ${couponId} is not available to buyer ${userId} (already locked or used, or not theirs)`,
          { couponId, userId },
        );
      }
      return true;
    });
    return { ok: r === true };
  },
  async use({ couponId, orderId }) {
    const r = await barrier(pool, undefined, async (client) => {
      await client.query(
        `UPDATE shop.coupons SET status = 'used' WHERE coupon_id = $1 AND order_id = $2 AND status = 'locked'`,
        [couponId, orderId],
      );
      return true;
    });
    return { ok: r === true };
  },
  async release({ couponId, orderId }) {
    const r = await barrier(pool, undefined, async (client) => {
      await client.query(
        `UPDATE shop.coupons SET status = 'issued', order_id = NULL, releases = releases + 1
          WHERE coupon_id = $1 AND order_id = $2 AND status = 'locked'`,
        [couponId, orderId],
      );
      return true;
    });
    return { ok: r === true };
  },
  async quote({ couponId, userId, qty, unitPriceCents }) {
    const { rows } = await pool.query<{ discount_cents: number }>(
      `SELECT discount_cents FROM shop.coupons WHERE coupon_id = $1 AND user_id = $2`,
      [couponId, userId],
    );
    const priceCents = unitPriceCents * qty;
    const discountCents = Math.min(priceCents, rows[0]?.discount_cents ?? 0);
    return { priceCents, discountCents, amountCents: priceCents - discountCents };
  },
  async paid({ orderId, amountCents }) {
    const res = await pool.query(
      'INSERT INTO shop.payments (order_id, amount_cents) VALUES ($1, $2) ON CONFLICT DO NOTHING',
      [orderId, amountCents],
    );
    return { recorded: (res.rowCount ?? 0) > 0 };
  },
});

await rt.ready({ serve: true });
