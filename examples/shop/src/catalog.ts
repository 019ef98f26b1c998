/**
 * The shop's service contracts: one definition types both the provider and its callers.
 * Inventory and order are the two services the flash sale leans on hardest.
 */
import { defineService } from 'peakware/rpc';
import { z } from 'zod';

/** Stock per SKU, deducted atomically in PostgreSQL so a flash sale can never oversell. */
export const inventoryService = defineService({
  name: 'shop.inventory',
  version: '1.0.0',
  group: 'buy-chain',
  methods: {
    stock: {
      input: z.object({ sku: z.string().min(1).max(64) }),
      output: z.object({ sku: z.string(), left: z.number().int() }),
      idempotent: true,
      timeoutMs: 500,
    },
    deduct: {
      input: z.object({
        orderId: z.string(),
        sku: z.string().min(1).max(64),
        qty: z.number().int().min(1).max(10),
      }),
      output: z.object({ ok: z.boolean(), left: z.number().int() }),
      timeoutMs: 1000,
    },
  },
});

/** Orders: placing one deducts stock first, then records the order. */
export const orderService = defineService({
  name: 'shop.order',
  version: '1.0.0',
  group: 'buy-chain',
  methods: {
    place: {
      input: z.object({
        userId: z.number().int().min(1),
        sku: z.string().min(1).max(64),
        qty: z.number().int().min(1).max(10),
        /** A coupon of the buyer's: the buy is a TCC across coupon, stock and order (coupon-order.ts). */
        couponId: z.string().min(1).max(64).optional(),
        /**
         * The buy's idempotency key (Stripe's `Idempotency-Key`): a retry or a double click
         * with the same key answers the first attempt's order and never places a second.
         */
        requestId: z
          .string()
          .regex(/^[A-Za-z0-9._:-]{1,64}$/, '1-64 letters, digits or . _ : -')
          .optional(),
      }),
      output: z.discriminatedUnion('status', [
        z.object({
          status: z.literal('placed'),
          orderId: z.string(),
          left: z.number().int(),
          /** What the buyer pays, when the buy used a coupon (the price with it). */
          amountCents: z.number().int().optional(),
        }),
        z.object({ status: z.literal('sold-out') }),
      ]),
      timeoutMs: 2000,
    },
    get: {
      input: z.object({ orderId: z.string() }),
      output: z
        .object({ orderId: z.string(), userId: z.number(), sku: z.string(), qty: z.number() })
        .nullable(),
      idempotent: true,
    },
  },
});

/** The topic the order service publishes "order placed" events to (tag `placed`). */
export const ORDER_PLACED_TOPIC = 'shop.order-placed';

/** The consumer group of the points service (grants points for placed orders). */
export const POINTS_GROUP = 'shop.points';

/**
 * The topic the order service sends compensation messages to when an order fails after
 * its stock was deducted (tag `release`); the inventory service releases the stock.
 */
export const ORDER_COMPENSATE_TOPIC = 'shop.order-compensate';
