/**
 * The flash-sale load: many buyers racing for a small stock of one hot item, with some
 * traffic for an ordinary item beside it. Bounded in buyers and in seconds; loopback only.
 */
import { randomUUID } from 'node:crypto';
import { LatencyHistogram } from 'peakware/core';
import { HttpPool } from 'peakware/stress';
import { couponOf } from './coupon-catalog.js';
import { PAYMENT_CALLBACK_PATH } from './coupon-edge.js';

/** How the sale is run. */
export interface SaleOptions {
  gatewayUrl: string;
  /** The buyers' API key at the gateway (`x-peak-api-key`). */
  apiKey: string;
  /** Buy attempts in all (each a distinct buyer). */
  buyers: number;
  /** Attempts in flight at once. */
  concurrency: number;
  /** Hard stop, seconds. */
  maxSeconds: number;
  hotSku: string;
  regularSku: string;
  /** Share of attempts that go to the regular item (0..1). */
  regularShare: number;
  /** Share of the hot item's attempts sent with the buyer's coupon (0..1; a TCC, coupon-order.ts). Default 0. */
  couponShare?: number;
  /** The payment provider's key: each coupon order placed is then paid through the payment callback. */
  paymentKey?: string;
  /**
   * Share of plain buys sent twice at once with the same request id (a buyer's double
   * click), 0..1. Default 0. Every buy carries a request id (`<sale>-<buyer>`: a sale's own
   * prefix, as a client makes a fresh key per checkout, never one an earlier sale used); a buy
   * that fails with a 5xx or no answer is retried once with it, as a client would.
   */
  doubleClickShare?: number;
  /** Called about every 200 ms with the running totals. */
  onProgress?: (report: SaleReport) => void;
}

/** Counts for one item. */
export interface ItemOutcome {
  sent: number;
  placed: number;
  soldOut: number;
  blocked: number;
  errors: number;
}

/** What the sale saw from the outside. */
export interface SaleReport {
  seconds: number;
  hot: ItemOutcome;
  regular: ItemOutcome;
  /** The hot item's attempts sent with a coupon (counted in `hot` too). */
  coupon: ItemOutcome;
  /** Coupon orders paid through the payment callback, and callbacks that failed. */
  payments: { paid: number; errors: number };
  /**
   * Buys sent twice at once (double clicks), and how their two answers compared: both
   * placed with the same order id, or placed with two different ones (a duplicate order).
   * `retried`: buys sent again after a 5xx or no answer (same request id).
   */
  repeats: { doubleClicks: number; sameOrder: number; differentOrders: number; retried: number };
  /** Latency of every answered attempt, ms. */
  latency: LatencyHistogram;
  /** First few error messages, for the report. */
  errorSamples: string[];
  /** Order ids of placed orders (hot item). */
  hotOrderIds: string[];
  /**
   * Trace ids of placed orders (hot item, plain buys), for `peak trace <id>`: a coupon buy
   * goes through the txn coordinator, which publishes its event, so its trace lacks the
   * outbox-to-points spans the report shows.
   */
  hotTraceIds: string[];
}

function outcome(): ItemOutcome {
  return { sent: 0, placed: 0, soldOut: 0, blocked: 0, errors: 0 };
}

/** The payment provider calls back: `orderId` was paid `amountCents` (coupon-edge.ts). */
async function pay(pool: HttpPool, key: string, orderId: string, amountCents: number) {
  const res = await pool.request({
    method: 'POST',
    path: PAYMENT_CALLBACK_PATH,
    headers: { 'content-type': 'application/json', 'x-peak-api-key': key },
    body: JSON.stringify({ orderId, amountCents }),
  });
  if (res.status !== 200) throw new Error(`payment callback answered ${res.status}`);
}

/** One buy's answer: its HTTP status (0: no answer), body and trace id. */
interface BuyAnswer {
  status: number;
  body: { orderId?: string; amountCents?: number; error?: { message?: string } };
  traceId: string | undefined;
}

/** Sends one buy; a failure to get an answer is status 0 with the error as its message. */
async function sendBuy(
  pool: HttpPool,
  headers: Record<string, string>,
  body: string,
): Promise<BuyAnswer> {
  try {
    const res = await pool.request({ method: 'POST', path: '/api/buy', headers, body });
    return {
      status: res.status,
      body: JSON.parse(res.body.toString()) as BuyAnswer['body'],
      traceId: res.headers['x-peak-trace-id'],
    };
  } catch (err) {
    return { status: 0, body: { error: { message: String(err) } }, traceId: undefined };
  }
}

/** Whether a buy's answer is worth one retry with the same request id (5xx, or none). */
function retriable(answer: BuyAnswer): boolean {
  return answer.status === 0 || answer.status >= 500;
}

/** How the chain is warmed before the doors open ({@link warmUp}). */
export interface WarmUpOptions {
  gatewayUrl: string;
  apiKey: string;
  /** The ordinary item: the warm-up's orders are not the sale's hot-item books. */
  sku: string;
  /** Buyer ids firstUserId, +1, …: outside the sale's. */
  firstUserId: number;
  buys: number;
  /** Buys in flight at once. */
  concurrency: number;
  /** Share of the buys sent with the buyer's coupon (the TCC path; 0..1). */
  couponShare: number;
  /** Hard stop, seconds. */
  maxSeconds: number;
}

/** What the warm-up did: buys sent, answered 200 (placed), answered otherwise or not at all. */
export interface WarmUpReport {
  sent: number;
  placed: number;
  failed: number;
  seconds: number;
}

/**
 * Warms the chain before the doors open, as a flash sale's operators do (预热): buys of the
 * ordinary item at a modest concurrency from buyers outside the sale's, a share of them with
 * a coupon, so the sale's first seconds do not pay for code that has not run yet (V8 compiles
 * it hot), first statements (parsed, planned, prepared per connection) and first
 * connections between the processes. Bounded in buys and seconds.
 */
export async function warmUp(options: WarmUpOptions): Promise<WarmUpReport> {
  const pool = new HttpPool({ url: options.gatewayUrl, maxConnections: options.concurrency });
  const headers = { 'content-type': 'application/json', 'x-peak-api-key': options.apiKey };
  const report: WarmUpReport = { sent: 0, placed: 0, failed: 0, seconds: 0 };
  const started = performance.now();
  const deadline = started + options.maxSeconds * 1000;
  const prefix = `warm-${randomUUID().slice(0, 8)}`;
  const worker = async () => {
    while (report.sent < options.buys && performance.now() < deadline) {
      const i = report.sent++;
      const userId = options.firstUserId + i;
      const share = options.couponShare;
      const coupon = Math.floor((i + 1) * share) > Math.floor(i * share);
      const body = JSON.stringify({
        userId,
        sku: options.sku,
        qty: 1,
        requestId: `${prefix}-${userId}`,
        ...(coupon ? { couponId: couponOf(userId) } : {}),
      });
      const answer = await sendBuy(pool, headers, body);
      if (answer.status === 200) report.placed++;
      else report.failed++;
    }
  };
  try {
    await Promise.all(Array.from({ length: options.concurrency }, worker));
  } finally {
    pool.close();
  }
  report.seconds = (performance.now() - started) / 1000;
  return report;
}

/** Runs the sale and resolves with what happened. */
export async function runFlashSale(options: SaleOptions): Promise<SaleReport> {
  const report: SaleReport = {
    seconds: 0,
    hot: outcome(),
    regular: outcome(),
    coupon: outcome(),
    payments: { paid: 0, errors: 0 },
    repeats: { doubleClicks: 0, sameOrder: 0, differentOrders: 0, retried: 0 },
    latency: new LatencyHistogram(),
    errorSamples: [],
    hotOrderIds: [],
    hotTraceIds: [],
  };
  // peakware/stress's load client: the buyers share this machine (and, in the shop, the
  // control plane's process), and a buy through it costs a fraction of fetch's CPU.
  const pool = new HttpPool({
    url: options.gatewayUrl,
    maxConnections: options.concurrency * 2 + 8,
    timeoutMs: 5000,
  });
  const headers = { 'content-type': 'application/json', 'x-peak-api-key': options.apiKey };
  const started = performance.now();
  const deadline = started + options.maxSeconds * 1000;
  // Keys of this sale only: a key an earlier sale on the same data folder used would answer
  // that sale's order (and join its coupon TCC).
  const sale = randomUUID().slice(0, 8);
  let next = 0;
  const progress = setInterval(() => {
    report.seconds = (performance.now() - started) / 1000;
    options.onProgress?.(report);
  }, 200);

  const worker = async () => {
    while (next < options.buyers && performance.now() < deadline) {
      const buyer = next++;
      // Spread the regular item's share evenly through the run.
      const regular =
        Math.floor((buyer + 1) * options.regularShare) > Math.floor(buyer * options.regularShare);
      const sku = regular ? options.regularSku : options.hotSku;
      const item = regular ? report.regular : report.hot;
      const share = options.couponShare ?? 0;
      const coupon = !regular && Math.floor((buyer + 1) * share) > Math.floor(buyer * share);
      const outcomes = coupon ? [item, report.coupon] : [item];
      for (const o of outcomes) o.sent++;
      const clicks = options.doubleClickShare ?? 0;
      const twice = !coupon && Math.floor((buyer + 1) * clicks) > Math.floor(buyer * clicks);
      const t0 = performance.now();
      const buy = JSON.stringify({
        userId: buyer + 1,
        sku,
        qty: 1,
        requestId: `${sale}-${buyer + 1}`,
        ...(coupon ? { couponId: couponOf(buyer + 1) } : {}),
      });
      try {
        let answer: BuyAnswer;
        if (twice) {
          const [a, b] = await Promise.all([
            sendBuy(pool, headers, buy),
            sendBuy(pool, headers, buy),
          ]);
          report.repeats.doubleClicks++;
          if (a.status === 200 && b.status === 200) {
            if (a.body.orderId === b.body.orderId) report.repeats.sameOrder++;
            else report.repeats.differentOrders++;
          }
          answer = a.status === 200 || b.status !== 200 ? a : b;
        } else {
          answer = await sendBuy(pool, headers, buy);
        }
        // A coupon buy's retry joins its first attempt's TCC (the gid is the request id's).
        if (retriable(answer)) {
          // Once, after a pause with jitter, as a client backs off from an overloaded server.
          await new Promise((r) => setTimeout(r, 200 + Math.random() * 300));
          report.repeats.retried++;
          answer = await sendBuy(pool, headers, buy);
        }
        const { status, body, traceId } = answer;
        if (status === 0) throw new Error(body.error?.message ?? 'no answer');
        report.latency.record(performance.now() - t0);
        if (status === 200) {
          for (const o of outcomes) o.placed++;
          if (coupon && options.paymentKey !== undefined && body.orderId !== undefined) {
            await pay(pool, options.paymentKey, body.orderId, body.amountCents ?? 0)
              .then(() => report.payments.paid++)
              .catch(() => report.payments.errors++);
          }
          if (!regular && body.orderId !== undefined) report.hotOrderIds.push(body.orderId);
          if (!regular && !coupon && traceId !== undefined) report.hotTraceIds.push(traceId);
        } else if (status === 409) for (const o of outcomes) o.soldOut++;
        else if (status === 429) for (const o of outcomes) o.blocked++;
        else {
          for (const o of outcomes) o.errors++;
          if (report.errorSamples.length < 5) {
            report.errorSamples.push(`${status} ${body.error?.message ?? ''}`);
          }
        }
      } catch (err) {
        for (const o of outcomes) o.errors++;
        if (report.errorSamples.length < 5) report.errorSamples.push(String(err));
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: options.concurrency }, worker));
  } finally {
    clearInterval(progress);
    pool.close();
  }
  report.seconds = (performance.now() - started) / 1000;
  return report;
}
