/**
 * The coupon chain in the shop's report: the buys sent with a coupon, the coupon books, and
 * the coordinator's figures (coupon orders' TCCs by status, their "order placed" messages).
 */
import type { AdminClient } from 'peakware/admin';
import type { TxnKind } from 'peakware/txn';
import { COUPON_ORDER_GID, ORDER_PLACED_GID } from './coupon-catalog.js';
import type { CouponBooks } from './coupon-store.js';
import type { ItemOutcome } from './flash-sale.js';

/** The coordinator's count of one kind of the coupon chain's global transactions, by status. */
export interface TxnFigures {
  succeeded: number;
  failed: number;
  /** Not finished yet (must be 0 once the books are read). */
  active: number;
  /** Up to 3 of the unfinished: gid, status and why it was handed to recovery (`peak txn show <gid>`). */
  activeSample: string[];
}

/** The most rows one list call returns; the figures count up to it per status. */
const LIST_LIMIT = 1000;

async function figures(
  admin: AdminClient,
  kind: TxnKind,
  prefix: string,
  since: number,
): Promise<TxnFigures> {
  // The newest first: this sale's, not those of earlier sales on the same data folder.
  const list = async (status: 'succeeded' | 'failed' | 'active') =>
    (await admin.txn.list({ kind, status, limit: LIST_LIMIT })).filter(
      (t) => t.gid.startsWith(prefix) && Date.parse(t.createdAt) >= since,
    );
  const [succeeded, failed, active] = await Promise.all([
    list('succeeded'),
    list('failed'),
    list('active'),
  ]);
  return {
    succeeded: succeeded.length,
    failed: failed.length,
    active: active.length,
    activeSample: active
      .slice(0, 3)
      .map((t) => `${t.gid} ${t.status}${t.reason ? ` (${t.reason.slice(0, 160)})` : ''}`),
  };
}

/**
 * Coupon orders' TCCs and their "order placed" two-phase messages begun since `since`
 * (epoch ms: the sale's start), as the coordinator has them.
 */
export async function readCouponTxnFigures(
  admin: AdminClient,
  since: number,
): Promise<{ tcc: TxnFigures; messages: TxnFigures }> {
  const [tcc, messages] = await Promise.all([
    figures(admin, 'tcc', COUPON_ORDER_GID, since),
    figures(admin, 'msg', ORDER_PLACED_GID, since),
  ]);
  return { tcc, messages };
}

/**
 * The figures once no coupon-order TCC is active, waiting (bounded by `waitMs`) while the
 * coordinator's recovery finishes those whose driver died or timed out (a killed order
 * process's TCCs finish only after their lease and a recovery round).
 */
export async function settledCouponTxnFigures(
  admin: AdminClient,
  waitMs: number,
  since: number,
): Promise<{ tcc: TxnFigures; messages: TxnFigures }> {
  const until = Date.now() + waitMs;
  // A read that fails within the bound (the control plane slow to answer on a loaded
  // machine, a node restarting) is tried again; only the last one's error is thrown.
  let figures: { tcc: TxnFigures; messages: TxnFigures } | undefined;
  while (Date.now() < until) {
    figures = await readCouponTxnFigures(admin, since).catch(() => figures);
    if (figures !== undefined && figures.tcc.active === 0) return figures;
    await new Promise((r) => setTimeout(r, 500));
  }
  return figures ?? readCouponTxnFigures(admin, since);
}

/** The report's lines for the coupon chain. */
export function couponReportLines(
  sale: ItemOutcome,
  books: CouponBooks,
  txn: { tcc: TxnFigures; messages: TxnFigures },
  balanced: boolean,
): string[] {
  const locked = books.lockedCoupons.map(
    (c) => `${c.couponId} (buyer ${c.userId}, order ${c.orderId ?? 'none'})`,
  );
  const active = [...txn.tcc.activeSample, ...txn.messages.activeSample];
  return [
    ...(active.length === 0 ? [] : [`still active: ${active.join('; ')}`]),
    ...(locked.length === 0
      ? []
      : [`coupons left locked: ${locked.join(', ')}${books.locked > locked.length ? ', …' : ''}`]),
    `coupons: ${sale.sent} buys with a coupon (TCC over coupon + stock + order): ${books.used} coupon orders placed, ${books.released} cancelled (coupon released), ${books.locked} left locked, ${books.usedWithoutOrder} used without an order; ${books.payments} paid through the payment callback, ${books.paidWithoutOrder} of them without an order: ${balanced ? 'consistent' : 'INCONSISTENT'}`,
    `txn: coupon-order TCCs ${txn.tcc.succeeded} succeeded, ${txn.tcc.failed} rolled back, ${txn.tcc.active} active; "order placed" two-phase messages ${txn.messages.succeeded} published, ${txn.messages.failed} dropped, ${txn.messages.active} waiting (npx peak txn ls; npx peak txn show coupon-order-<orderId>; the console's Transactions page)`,
  ];
}
