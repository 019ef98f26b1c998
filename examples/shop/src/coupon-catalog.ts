/**
 * The contracts of the coupon chain (a buy with a coupon: a TCC across coupon, stock and
 * order driven by the txn coordinator in `peak server`). `shop.coupon` is its own process;
 * the stock and order branches are served by the inventory and order processes beside
 * their plain methods, as services of their own (`shop.inventory-tcc`, `shop.order-tcc`),
 * so the capacity path's contracts stay as they are.
 */
import { defineService } from 'peakware/rpc';
import { z } from 'zod';

/** What every TCC branch operation of a coupon order returns (the barrier may filter it: `ok` false). */
const done = z.object({ ok: z.boolean() });

/** The payload the coordinator gives the coupon branch's try, confirm and cancel. */
export const couponBranchInput = z.object({
  couponId: z.string().min(1).max(64),
  userId: z.number().int().min(1),
  orderId: z.string(),
});

/** The payload of the stock branch. */
export const stockBranchInput = z.object({
  orderId: z.string(),
  sku: z.string().min(1).max(64),
  qty: z.number().int().min(1).max(10),
});

/** The payload of the order branch: the order as it will be written. */
export const orderBranchInput = z.object({
  orderId: z.string(),
  userId: z.number().int().min(1),
  sku: z.string().min(1).max(64),
  qty: z.number().int().min(1).max(10),
  amountCents: z.number().int().min(0),
  couponId: z.string(),
  /** The buy's idempotency key, written on the order row. */
  requestId: z.string().optional(),
});

/** Coupons: issued per user before the sale, locked for an order, released or used; the promotion read; the payment callback. */
export const couponService = defineService({
  name: 'shop.coupon',
  version: '1.0.0',
  group: 'buy-chain',
  methods: {
    /** TCC try: lock the buyer's issued coupon for the order (refused for good when it is not issued to them). */
    lock: { input: couponBranchInput, output: done, timeoutMs: 1000 },
    /** TCC confirm: the locked coupon is used by the order. */
    use: { input: couponBranchInput, output: done, timeoutMs: 1000 },
    /** TCC cancel: the locked coupon goes back to its owner. */
    release: { input: couponBranchInput, output: done, timeoutMs: 1000 },
    /**
     * The promotion read: the price of `qty` × `sku` at `unitPriceCents` (the sale price the
     * order service read through its product cache) with the coupon's discount.
     */
    quote: {
      input: z.object({
        couponId: z.string().min(1).max(64),
        userId: z.number().int().min(1),
        sku: z.string().min(1).max(64),
        qty: z.number().int().min(1).max(10),
        unitPriceCents: z.number().int().min(0),
      }),
      output: z.object({
        priceCents: z.number().int(),
        discountCents: z.number().int(),
        amountCents: z.number().int(),
      }),
      idempotent: true,
      timeoutMs: 1000,
    },
    /** The payment callback: the payment provider says an order was paid (idempotent by order id). */
    paid: {
      input: z.object({ orderId: z.string(), amountCents: z.number().int().min(0) }),
      output: z.object({ recorded: z.boolean() }),
      idempotent: true,
      timeoutMs: 1000,
    },
  },
});

/** The stock branch of a coupon order, served by the inventory processes. */
export const stockBranchService = defineService({
  name: 'shop.inventory-tcc',
  version: '1.0.0',
  group: 'buy-chain',
  methods: {
    /** TCC try: deduct (refused for good when sold out); `left` is the stock after it (-1 when the barrier filtered the call). */
    deduct: {
      input: stockBranchInput,
      output: z.object({ ok: z.boolean(), left: z.number().int() }),
      timeoutMs: 1000,
    },
    /** TCC confirm: nothing left to do (the deduction stands). */
    keep: { input: stockBranchInput, output: done, timeoutMs: 1000 },
    /** TCC cancel: the deducted units go back, once. */
    restore: { input: stockBranchInput, output: done, timeoutMs: 1000 },
  },
});

/** The order branch of a coupon order, served by the order processes. */
export const orderBranchService = defineService({
  name: 'shop.order-tcc',
  version: '1.0.0',
  group: 'buy-chain',
  methods: {
    /** TCC try: nothing is reserved (the order is written on confirm); answers the order id. */
    reserve: {
      input: orderBranchInput,
      output: z.object({ ok: z.boolean(), orderId: z.string() }),
      timeoutMs: 1000,
    },
    /** TCC confirm: the order row, and its "order placed" event as a two-phase message. */
    write: { input: orderBranchInput, output: done, timeoutMs: 3000 },
    /** TCC cancel: nothing to undo. */
    drop: { input: orderBranchInput, output: done, timeoutMs: 1000 },
    /** The check-back of the "order placed" two-phase message (its gid names the order). */
    placedCheck: {
      input: z.object({ gid: z.string() }),
      output: z.object({ status: z.enum(['committed', 'rolledback']) }),
      timeoutMs: 3000,
    },
  },
});

/**
 * The prefix of a coupon order's global id: `coupon-order-u<userId>-<requestId>` for a buy
 * with a request id (see `couponOrderGid`), `coupon-order-<orderId>` without.
 */
export const COUPON_ORDER_GID = 'coupon-order-';

/** The prefix of the global id of a coupon order's "order placed" two-phase message: `order-placed-<orderId>-<attempt>`. */
export const ORDER_PLACED_GID = 'order-placed-';

/** The coupon a buyer `userId` is issued before the sale. */
export function couponOf(userId: number): string {
  return `c-${userId}`;
}
