/**
 * A buy with a coupon, in the order process: a TCC across coupon, stock and order driven by
 * the txn coordinator in `peak server` (issue 15, item 4). The order service reads the
 * price with the coupon (the promotion read) and submits the TCC: the tries lock the coupon,
 * deduct the stock and check the order; the confirms use the coupon, keep the deduction and
 * write the order; a refused try (coupon taken, sold out) cancels the others, once each.
 * The order branch is served here too (`shop.order-tcc`): its confirm writes the order row
 * and its "order placed" event as a two-phase message (the row and the message's barrier
 * row in one local transaction on the buyer's shard; the coordinator publishes the event),
 * so the points service gets coupon orders' events like every other order's.
 */
import { createHash, randomUUID } from 'node:crypto';
import { ErrorCodes, isPeakError, PeakError, remainingTime } from 'peakware/core';
import { PgDataSource, type ShardedDatabase } from 'peakware/data';
import type { RpcClient } from 'peakware/rpc';
import { barrier, branchCall, checkPrepared, TxnClient, type TxnOutcome } from 'peakware/txn';
import { ORDER_PLACED_TOPIC } from './catalog.js';
import {
  COUPON_ORDER_GID,
  couponService,
  ORDER_PLACED_GID,
  orderBranchService,
  stockBranchService,
} from './coupon-catalog.js';
import type { ServiceRuntime } from './services/service-runtime.js';

/** What a buy with a coupon answers, as `shop.order.place` does. */
export type CouponPlaceResult =
  | { status: 'placed'; orderId: string; left: number; amountCents: number }
  | { status: 'sold-out' };

/** A buy with a coupon, as the order service's `place` hands it over. */
export interface CouponBuy {
  orderId: string;
  userId: number;
  sku: string;
  qty: number;
  couponId: string;
  /** The item's sale price, as the order service read it through its product cache. */
  unitPriceCents: number;
  /** The buy's idempotency key, written on the order row. */
  requestId?: string;
}

const PLACE_ORDER =
  'INSERT INTO orders (order_id, user_id, sku, qty, amount_cents, request_id) VALUES ($1, $2, $3, $4, $5, $6)';
const FIND_ORDER = 'SELECT 1 FROM orders WHERE order_id = $1';

/** A request id as it may stand in a global id; anything else goes in as its hash. */
const GID_SAFE_KEY = /^[A-Za-z0-9_.:-]{1,64}$/;

/**
 * The global id of a coupon buy: from its request id when it has one, so a retry of the
 * same request (after a 504, a lost answer) joins the first attempt's TCC instead of starting
 * a second one beside it; from the order id otherwise.
 */
export function couponOrderGid(orderId: string, userId: number, requestId?: string): string {
  if (requestId === undefined) return `${COUPON_ORDER_GID}${orderId}`;
  const key = GID_SAFE_KEY.test(requestId)
    ? requestId
    : createHash('sha256').update(requestId).digest('hex').slice(0, 40);
  return `${COUPON_ORDER_GID}u${userId}-${key}`;
}

/** Whether the coordinator has decided the TCC's end (its confirms or cancels may still run). */
const decided = (status: TxnOutcome['status']) => status !== 'running' && status !== 'prepared';

/** How often a buy that joined an undecided TCC driven elsewhere reads its status, ms. */
const SETTLE_POLL_MS = 100;

/**
 * Serves the order branch (`shop.order-tcc`) on the order process's RPC server and returns
 * the coupon buy for its `place`. Its barriers live on the order shards (`db`'s pools);
 * `client` calls the coupon service's promotion read.
 */
export function serveCouponOrders(
  rt: ServiceRuntime,
  db: ShardedDatabase,
  client: RpcClient,
): { place(buy: CouponBuy): Promise<CouponPlaceResult> } {
  const txn = new TxnClient({ servers: rt.controlPlane });
  const coupons = client.service(couponService);
  const shardOf = (orderId: string) => db.route(FIND_ORDER, [orderId]).units[0]!;
  const shardPool = (ds: string) => PgDataSource.from(db.primary(ds)).pool;
  const orderPool = (orderId: string) => shardPool(shardOf(orderId).dataSource);

  rt.rpc.addService(orderBranchService, {
    async reserve({ orderId }) {
      const r = await barrier(orderPool(orderId), undefined, async () => true);
      // The order id comes back in the TCC's results: a retry that joined this TCC answers it.
      return { ok: r === true, orderId };
    },
    async write({ orderId, userId, sku, qty, amountCents, requestId }) {
      const find = shardOf(orderId);
      const insert = db.route(PLACE_ORDER, [
        orderId,
        userId,
        sku,
        qty,
        amountCents,
        requestId ?? null,
      ]).units[0]!;
      // Prepared before the local transaction opens, so no connection waits on the
      // coordinator. A fresh gid per attempt: an earlier attempt's message may have been
      // decided (rolled back by its check-back after its process died) and cannot run again.
      // At most one attempt commits, as the order row's primary key allows one insert.
      const message = await txn.message({
        gid: `${ORDER_PLACED_GID}${orderId}-${randomUUID().slice(0, 8)}`,
        topic: ORDER_PLACED_TOPIC,
        message: {
          body: JSON.stringify({ orderId, userId, sku, qty }),
          tag: 'placed',
          keys: [orderId, String(userId)],
        },
        check: branchCall(orderBranchService, 'placedCheck'),
      });
      // The confirm's barrier row, the message's row and the order row: one local
      // transaction on the buyer's shard, one commit.
      let written = false;
      let r: boolean | undefined;
      try {
        r = await barrier(shardPool(insert.dataSource), undefined, async (client) => {
          // Written by an earlier confirm whose barrier row was lost with its connection.
          if (((await client.query(find.sql, find.params)).rowCount ?? 0) > 0) return true;
          await message.join(client);
          await client.query(insert.sql, insert.params);
          written = true;
          return true;
        });
      } catch (err) {
        // Failed before the message's row was written: drop it. After (the COMMIT failed,
        // its outcome unknown), the check-back finds out from the row and decides.
        if (!written) await message.abort().catch(() => undefined);
        throw err;
      }
      // Committed: the coordinator publishes the event (unreachable now, its check-back
      // finds the message's row and publishes it later). Not written: nothing to publish.
      if (written) await message.submit().catch(() => undefined);
      else await message.abort().catch(() => undefined);
      return { ok: r === true };
    },
    async drop({ orderId }) {
      const r = await barrier(orderPool(orderId), undefined, async () => true);
      return { ok: r === true };
    },
    async placedCheck({ gid }) {
      const orderId = gid.slice(ORDER_PLACED_GID.length).split('-')[0]!;
      return checkPrepared(orderPool(orderId), gid);
    },
  });

  /**
   * The TCC's outcome once its end is decided. A submit answers before that when the drive
   * was handed to recovery (a branch unreachable) or when the gid was already taken by an
   * attempt another node drives: its status is read until decided, within the caller's
   * deadline. Rolled back (or rolling back) throws PEAK_TXN_ABORTED, as a waited submit does.
   */
  const settle = async (first: TxnOutcome): Promise<TxnOutcome> => {
    let outcome = first;
    const until = Date.now() + Math.min(remainingTime(), 30_000);
    while (!decided(outcome.status)) {
      if (Date.now() >= until) {
        throw new PeakError(
          ErrorCodes.DEADLINE_EXCEEDED,
          `coupon buy ${outcome.gid}: not decided within the caller's deadline (still ${outcome.status}); the coordinator finishes it, and the same request id answers its end`,
        );
      }
      await new Promise((r) => setTimeout(r, SETTLE_POLL_MS));
      const view = await txn.get(outcome.gid);
      outcome = {
        gid: view.gid,
        status: view.status,
        ...(view.reason ? { reason: view.reason } : {}),
      };
    }
    if (outcome.status === 'aborting' || outcome.status === 'failed') {
      throw new PeakError(
        ErrorCodes.TXN_ABORTED,
        `global transaction ${outcome.gid} rolled back: ${outcome.reason ?? 'no reason given'}`,
        { details: { gid: outcome.gid, reason: outcome.reason } },
      );
    }
    return outcome;
  };

  /** The order id of the attempt that submitted a TCC (this one's, or a first attempt's). */
  const placedOrderId = async (outcome: TxnOutcome): Promise<string | undefined> => {
    const fromTry = (outcome.results?.order as { orderId?: string } | undefined)?.orderId;
    if (fromTry !== undefined) return fromTry;
    const spec = (await txn.get(outcome.gid)).spec as {
      branches?: { name: string; payload?: { orderId?: string } }[];
    };
    return spec.branches?.find((b) => b.name === 'order')?.payload?.orderId;
  };

  return {
    async place({ orderId, userId, sku, qty, couponId, unitPriceCents, requestId }) {
      // The promotion read: the price with the coupon, recorded on the order.
      const quote = await coupons.quote({ couponId, userId, sku, qty, unitPriceCents });
      const order = {
        orderId,
        userId,
        sku,
        qty,
        amountCents: quote.amountCents,
        couponId,
        ...(requestId === undefined ? {} : { requestId }),
      };
      const gid = couponOrderGid(orderId, userId, requestId);
      let outcome: TxnOutcome;
      try {
        outcome = await settle(
          await txn.tcc({
            gid,
            branches: [
              {
                name: 'coupon',
                try: branchCall(couponService, 'lock'),
                confirm: branchCall(couponService, 'use'),
                cancel: branchCall(couponService, 'release'),
                payload: { couponId, userId, orderId },
              },
              {
                name: 'stock',
                try: branchCall(stockBranchService, 'deduct'),
                confirm: branchCall(stockBranchService, 'keep'),
                cancel: branchCall(stockBranchService, 'restore'),
                payload: { orderId, sku, qty },
              },
              {
                name: 'order',
                try: branchCall(orderBranchService, 'reserve'),
                confirm: branchCall(orderBranchService, 'write'),
                cancel: branchCall(orderBranchService, 'drop'),
                payload: order,
              },
            ],
          }),
        );
      } catch (err) {
        // Rolled back because the stock branch refused: sold out, as a plain buy says it.
        const reason = isPeakError(err, ErrorCodes.TXN_ABORTED) ? String(err.details.reason) : '';
        if (/is sold out/.test(reason)) return { status: 'sold-out' };
        throw err;
      }
      // Decided to commit (its confirms may still be retried by the coordinator's recovery):
      // the order is placed, under the order id of whichever attempt submitted the TCC.
      const stock = outcome.results?.stock as { left?: number } | undefined;
      return {
        status: 'placed',
        orderId: (await placedOrderId(outcome)) ?? orderId,
        left: stock?.left ?? -1,
        amountCents: quote.amountCents,
      };
    },
  };
}
