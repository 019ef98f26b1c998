/**
 * The seam of the hot-stock engines: what a flash sale's inventory service calls to take
 * units off one hot SKU without every buyer queueing on the same PostgreSQL row.
 * Two engines implement it: {@link PgStockEngine} (PostgreSQL only, same-SKU deductions
 * group-committed one statement per batch) and {@link RedisStockEngine} (an atomic Lua
 * deduction in Redis, written to PostgreSQL behind the sale by a {@link StockWriter}).
 *
 * Both keep the same books: `left + sold = initial` for every SKU at every moment they
 * report, and no deduction is ever applied twice for one order id.
 */
import { InvalidArgumentError } from '../core/errors.js';

/** The answer to one {@link StockEngine.deduct}. */
export interface DeductResult {
  /**
   * True when the order holds its units: deducted now, or (with `duplicate`) by an earlier
   * call with the same order id that has not been released since.
   */
  ok: boolean;
  /** Units of the SKU left after this call (for a refusal: what was left, too few). */
  left: number;
  /** True when the order id had already deducted: nothing was deducted this time. */
  duplicate?: boolean;
}

/** The answer to one {@link StockEngine.release}. */
export interface ReleaseResult {
  /** True when this call gave the units back; false when the order held none (never deducted, or released before). */
  released: boolean;
  /** Units of the SKU left after this call. */
  left: number;
}

/** One SKU's books as an engine sees them. */
export interface StockBooks {
  sku: string;
  /** Units put on sale by the last {@link StockEngine.load}. */
  initial: number;
  /** Units left. */
  left: number;
  /** Units held by orders (deducted and not released): `initial - left`. */
  sold: number;
}

/**
 * Deducts hot stock. Every method validates its inputs (`PEAK_INVALID_ARGUMENT`, naming the
 * input) and rejects with `PEAK_STOCK_UNKNOWN_SKU` for a SKU that was never loaded.
 */
export interface StockEngine {
  /** Puts `units` of `sku` on sale, forgetting every earlier deduction of it (a reset). */
  load(sku: string, units: number): Promise<void>;
  /**
   * Takes `qty` units of `sku` for `orderId`, or refuses (`ok: false`) when fewer are left.
   * Idempotent by order id: a retry of a deduction that already happened answers
   * `duplicate: true` and never deducts twice, so a caller that lost an answer retries.
   */
  deduct(sku: string, orderId: string, qty: number): Promise<DeductResult>;
  /** Gives an order's deducted units back, once: later calls answer `released: false`. */
  release(sku: string, orderId: string): Promise<ReleaseResult>;
  /** Units of `sku` left. */
  stock(sku: string): Promise<number>;
  /** The SKU's books: initial, left and sold. */
  books(sku: string): Promise<StockBooks>;
  /** Finishes what is in flight and closes the connections this engine opened. */
  close(): Promise<void>;
}

const SKU = /^[\w.:-]{1,128}$/;
const ORDER_ID = /^[\w.:-]{1,128}$/;

/** Largest `qty` or `units` an engine takes: PostgreSQL's `integer`. */
export const MAX_UNITS = 2_147_483_647;

/** Throws `PEAK_INVALID_ARGUMENT` unless `sku` is 1-128 of `A-Z a-z 0-9 _ . : -`. */
export function checkSku(sku: unknown): asserts sku is string {
  if (typeof sku !== 'string' || !SKU.test(sku))
    throw new InvalidArgumentError(
      `sku must be 1-128 characters of A-Z a-z 0-9 _ . : - , got ${JSON.stringify(sku)}`,
      { details: { input: 'sku' } },
    );
}

/** Throws `PEAK_INVALID_ARGUMENT` unless `orderId` is 1-128 of `A-Z a-z 0-9 _ . : -`. */
export function checkOrderId(orderId: unknown): asserts orderId is string {
  if (typeof orderId !== 'string' || !ORDER_ID.test(orderId))
    throw new InvalidArgumentError(
      `orderId must be 1-128 characters of A-Z a-z 0-9 _ . : - , got ${JSON.stringify(orderId)}`,
      { details: { input: 'orderId' } },
    );
}

/** Throws `PEAK_INVALID_ARGUMENT` unless `value` is an integer in `min..MAX_UNITS`. */
export function checkCount(
  name: 'qty' | 'units',
  value: unknown,
  min: number,
): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > MAX_UNITS)
    throw new InvalidArgumentError(
      `${name} must be an integer from ${min} to ${MAX_UNITS}, got ${JSON.stringify(value)}`,
      { details: { input: name } },
    );
}
