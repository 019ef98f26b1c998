/**
 * Shadow stock for full-link stress tests: a stock engine that sends every call made in a
 * stress context (`peak-stress` in the call context, as `peakware/stress` sets it) to a
 * shadow copy of the stock and every other call to the real one. The shadow copy is the
 * same engine under shadow names: Redis keys under `peak:stock:shop-shadow:` and the
 * PostgreSQL tables of schema `peak_stock_shadow` (stock and deductions, written behind by a
 * writer of its own). It is seeded from the real stock through the engine's own `load`, in
 * a stress context, as a user of the engine would. Stress buys never touch real stock;
 * without a shadow copy (the shop started without `--stress-beside`) a stress call is
 * refused rather than sent to the real stock.
 */

import type { CacheCollector } from 'peakware/cache';
import { currentContext, UsageError } from 'peakware/core';
import type pg from 'pg';
import { openShopStock, type ShopStock, STOCK_NAME } from './stock.js';

/** The shadow stock's Redis key namespace (`peak:stock:shop-shadow:`). */
export const SHADOW_STOCK_NAME = `${STOCK_NAME}-shadow`;

/** The shadow stock's PostgreSQL schema. */
export const SHADOW_STOCK_SCHEMA = 'peak_stock_shadow';

const isStress = () => currentContext()?.stress === true;

/** Refuses a stress call when the shop runs without shadow stock. */
function noShadow(): never {
  throw new UsageError(
    'a stress call reached the stock, but the shop runs without shadow stock (start it with --stress-beside); real stock is never used for stress traffic',
  );
}

/**
 * The real stock and, when `shadow` is true, its shadow copy, behind one engine that picks
 * by the call context. `install` creates both; `settle` settles the side of the caller's
 * context. Options as {@link openShopStock}'s.
 */
export function openStressAwareStock(
  pool: pg.Pool,
  redisUrl: string | undefined,
  options: { writer: boolean; shadow: boolean; collector?: CacheCollector },
): ShopStock {
  const traced = options.collector === undefined ? {} : { collector: options.collector };
  const real = openShopStock(pool, redisUrl, { writer: options.writer, ...traced });
  const shadow = options.shadow
    ? openShopStock(pool, redisUrl, {
        ...traced,
        writer: options.writer,
        name: SHADOW_STOCK_NAME,
        schema: SHADOW_STOCK_SCHEMA,
      })
    : undefined;
  const pick = (): ShopStock => (isStress() ? (shadow ?? noShadow()) : real);
  return {
    kind: real.kind,
    engine: {
      load: async (sku, units) => pick().engine.load(sku, units),
      deduct: async (sku, orderId, qty) => pick().engine.deduct(sku, orderId, qty),
      release: async (sku, orderId) => pick().engine.release(sku, orderId),
      stock: async (sku) => pick().engine.stock(sku),
      books: async (sku) => pick().engine.books(sku),
      close: async () => {
        await real.engine.close();
        await shadow?.engine.close();
      },
    },
    install: async () => {
      await real.install();
      await shadow?.install();
    },
    settle: async (sku) => pick().settle(sku),
    close: async () => {
      await real.close();
      await shadow?.close();
    },
  };
}
