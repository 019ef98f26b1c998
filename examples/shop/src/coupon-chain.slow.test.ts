/**
 * The coupon chain on the real chain (control plane with the txn coordinator, two
 * PostgreSQLs, Redis when on PATH, one inventory, one order, the coupon and points
 * processes, the gateway): a buy with a coupon is placed and confirmed (coupon used, order
 * written with the coupon's price, its "order placed" two-phase message published and
 * consumed, `peak txn show` prints its steps); a refused branch (coupon already used, sold
 * out) rolls the TCC back with each other branch cancelled once and nothing kept; the
 * payment callback at the gateway records a placed order once. Slow (`npm run test:slow`): the chain's start
 * alone takes about 20 s on a loaded 2-core machine; `main.test.ts` checks the coupon books
 * of the smoke sale in CI.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import type { TxnView } from 'peakware/admin';
import { createLogger } from 'peakware/core';
import { type Chain, startChain } from './chain.js';
import { COUPON_ORDER_GID, ORDER_PLACED_GID } from './coupon-catalog.js';
import { PAYMENT_CALLBACK_PATH } from './coupon-edge.js';
import { couponOrderGid } from './coupon-order.js';
import { COUPON_DISCOUNT_CENTS, couponLedger, seedCoupons } from './coupon-store.js';
import { waitUntil } from './testing/shop-process.js';

const HOT = 'flash-phone';
const REGULAR = 'usb-cable';
const peakCli = path.join(
  path.dirname(createRequire(import.meta.url).resolve('peakware/package.json')),
  'bin',
  'peak.js',
);

let dir: string;
let chain: Chain;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'peak-shop-coupon-'));
  chain = await startChain({
    dataDir: dir,
    port: 0,
    logger: createLogger({ name: 'shop-test', level: 'warn' }),
    hotSku: HOT,
    regularSku: REGULAR,
    stock: 1,
    limits: 'flash-sale',
    sampleRatio: 1,
    instances: 1,
  });
  await seedCoupons(chain.shopPool, 3);
});

after(async () => {
  await chain?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** One buy through the gateway: its HTTP status and body. */
async function buy(userId: number, sku: string, couponId?: string, requestId?: string) {
  const res = await fetch(`${chain.gatewayUrl}/api/buy`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-peak-api-key': chain.gatewayKey },
    body: JSON.stringify({ userId, sku, qty: 1, couponId, requestId }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function coupon(id: string) {
  const { rows } = await chain.shopPool.query<{
    status: string;
    order_id: string | null;
    releases: number;
  }>('SELECT status, order_id, releases FROM shop.coupons WHERE coupon_id = $1', [id]);
  return rows[0]!;
}

/** Each branch's operations in the timeline: `branch.op status`, sorted. */
function ops(t: TxnView): string[] {
  return t.branches.map((b) => `${b.branch}.${b.op} ${b.status}`).sort();
}

/** The one rolled-back coupon-order TCC that is not `known`. */
async function newFailed(known: Set<string>): Promise<TxnView> {
  const failed = (await chain.admin.txn.list({ kind: 'tcc', status: 'failed' })).filter(
    (t) => t.gid.startsWith(COUPON_ORDER_GID) && !known.has(t.gid),
  );
  assert.equal(failed.length, 1, JSON.stringify(failed));
  known.add(failed[0]!.gid);
  return chain.admin.txn.show(failed[0]!.gid);
}

test('a coupon buy is placed and confirmed; a refused branch cancels the others once; payment recorded once', {
  timeout: 180_000,
}, async () => {
  // Placed: the TCC's tries and confirms succeeded, nothing cancelled.
  const placed = await buy(1, HOT, 'c-1', 'checkout-1');
  assert.equal(placed.status, 200, JSON.stringify(placed.body));
  assert.equal(placed.body.amountCents, 59_900 - COUPON_DISCOUNT_CENTS, 'what the buyer pays');
  const orderId = String(placed.body.orderId);
  const gid = couponOrderGid(orderId, 1, 'checkout-1');
  const t = await chain.admin.txn.show(gid);
  assert.equal(t.status, 'succeeded');
  assert.deepEqual(ops(t), [
    'coupon.confirm succeeded',
    'coupon.try succeeded',
    'order.confirm succeeded',
    'order.try succeeded',
    'stock.confirm succeeded',
    'stock.try succeeded',
  ]);
  assert.deepEqual(await coupon('c-1'), { status: 'used', order_id: orderId, releases: 0 });
  const { rows } = await chain.orders.query<{ amount_cents: number }>(
    'SELECT amount_cents FROM orders WHERE order_id = $1',
    [orderId],
  );
  assert.equal(
    Number(rows[0]?.amount_cents),
    59_900 - COUPON_DISCOUNT_CENTS,
    'the price with the coupon',
  );
  // The "order placed" event: a two-phase message, published and consumed by points.
  await waitUntil(
    'the coupon order awarded points',
    async () =>
      (await chain.shopPool.query('SELECT 1 FROM shop.points WHERE order_id = $1', [orderId]))
        .rowCount === 1,
    30_000,
  );
  const messages = (await chain.admin.txn.list({ kind: 'msg' })).filter((m) =>
    m.gid.startsWith(`${ORDER_PLACED_GID}${orderId}-`),
  );
  assert.deepEqual(
    messages.map((m) => m.status),
    ['succeeded'],
  );
  // peak txn show prints the steps.
  const { stdout } = await promisify(execFile)(process.execPath, [
    peakCli,
    'txn',
    'show',
    gid,
    '--server',
    chain.server.info.url,
    '--data',
    dir,
  ]);
  for (const step of ['coupon.try', 'stock.try', 'order.try', 'order.confirm']) {
    assert.match(stdout, new RegExp(step.replace('.', '\\.')), stdout);
  }

  const known = new Set<string>();
  // Coupon already used (on the ordinary item, plenty of stock): the coupon's try refuses,
  // the stock and order branches are cancelled once, the stock deducted by the try is back.
  const used = await buy(1, REGULAR, 'c-1');
  assert.equal(used.status, 409, JSON.stringify(used.body));
  const usedTxn = await newFailed(known);
  assert.match(usedTxn.reason ?? '', /coupon c-1 is not available/);
  const usedOps = ops(usedTxn);
  assert.ok(usedOps.includes('coupon.try failed'), usedOps.join(', '));
  for (const branch of ['coupon', 'stock', 'order']) {
    assert.deepEqual(
      usedTxn.branches.filter((b) => b.branch === branch && b.op === 'cancel').map((b) => b.status),
      ['succeeded'],
      `${branch} cancelled once: ${usedOps.join(', ')}`,
    );
  }
  assert.deepEqual(await coupon('c-1'), { status: 'used', order_id: orderId, releases: 0 });
  const failedOrder = usedTxn.gid.slice(COUPON_ORDER_GID.length);
  const ordered = await chain.orders.query('SELECT 1 FROM orders WHERE order_id = $1', [
    failedOrder,
  ]);
  assert.equal(ordered.rows.length, 0, 'no order for the rolled-back buy');
  const regular = await chain.stock.settle(REGULAR);
  assert.equal(regular.books.sold, 0, 'the deduction of the rolled-back buy was given back');
  assert.equal(regular.books.left, regular.books.initial);

  // Sold out (the one unit went to buyer 1): the stock's try refuses, buyer 2's coupon is
  // released (or its lock never happened), nothing is deducted.
  const soldOut = await buy(2, HOT, 'c-2');
  assert.equal(soldOut.status, 409, JSON.stringify(soldOut.body));
  assert.equal(soldOut.body.status, 'sold-out');
  const soldTxn = await newFailed(known);
  assert.match(soldTxn.reason ?? '', /sold out/);
  for (const branch of ['coupon', 'stock', 'order']) {
    assert.equal(
      soldTxn.branches.filter((b) => b.branch === branch && b.op === 'cancel').length,
      1,
      `${branch} cancelled once: ${ops(soldTxn).join(', ')}`,
    );
  }
  const c2 = await coupon('c-2');
  assert.equal(c2.status, 'issued');
  assert.equal(c2.order_id, null);
  assert.ok(c2.releases <= 1, `released at most once: ${c2.releases}`);
  const hot = await chain.stock.settle(HOT);
  assert.deepEqual([hot.books.sold, hot.books.left], [1, 0]);

  // The payment callback at the gateway (the provider's key): recorded once, however often
  // the provider calls back.
  const pay = async () => {
    const res = await fetch(`${chain.gatewayUrl}${PAYMENT_CALLBACK_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-peak-api-key': chain.paymentKey },
      body: JSON.stringify({ orderId, amountCents: placed.body.amountCents }),
    });
    return { status: res.status, body: await res.json() };
  };
  assert.deepEqual(await pay(), { status: 200, body: { recorded: true } });
  assert.deepEqual(await pay(), { status: 200, body: { recorded: false } });
  // The books: nothing locked, the used coupon's order and the paid order placed.
  assert.deepEqual(await couponLedger(chain.shopPool, chain.orders), {
    used: 1,
    locked: 0,
    lockedCoupons: [],
    released: c2.releases,
    usedWithoutOrder: 0,
    unitsOrdered: 1,
    payments: 1,
    paidWithoutOrder: 0,
  });
});

test('a coupon buy repeated with its request id joins the first TCC: one TCC, one order, one answer', {
  timeout: 120_000,
}, async () => {
  // A double click (two at once), then a retry after the answer: the same request id.
  const [a, b] = await Promise.all([
    buy(3, REGULAR, 'c-3', 'checkout-3'),
    buy(3, REGULAR, 'c-3', 'checkout-3'),
  ]);
  const c = await buy(3, REGULAR, 'c-3', 'checkout-3');
  for (const answer of [a, b, c]) assert.equal(answer.status, 200, JSON.stringify(answer.body));
  const orderId = String(a.body.orderId);
  assert.deepEqual(
    [b.body.orderId, c.body.orderId],
    [orderId, orderId],
    'every attempt answers the first order',
  );
  const gid = couponOrderGid(orderId, 3, 'checkout-3');
  assert.equal(gid, `${COUPON_ORDER_GID}u3-checkout-3`);
  const tccs = (await chain.admin.txn.list({ kind: 'tcc' })).filter((t) =>
    t.gid.startsWith(`${COUPON_ORDER_GID}u3-`),
  );
  assert.deepEqual(
    tccs.map((t) => [t.gid, t.status]),
    [[gid, 'succeeded']],
    'one TCC for the request',
  );
  const { rows } = await chain.orders.query<{ order_id: string }>(
    'SELECT order_id FROM orders WHERE user_id = $1',
    [3],
  );
  assert.deepEqual(
    rows.map((r) => r.order_id),
    [orderId],
    'one order for the request',
  );
  assert.deepEqual(await coupon('c-3'), { status: 'used', order_id: orderId, releases: 0 });
});

test('a plain repeat answers its first order: its deduction goes back, or it finds the stock gone', {
  timeout: 60_000,
}, async () => {
  const firstOrder = async (userId: number) =>
    (
      await chain.orders.query<{ order_id: string }>(
        'SELECT order_id FROM orders WHERE user_id = $1',
        [userId],
      )
    ).rows.map((r) => r.order_id);
  // Buyer 3's checkout-3 (a coupon order of the regular item, above) repeated without the
  // coupon: its deduction meets the first order's (buyer, request id) and goes back.
  const [first3] = await firstOrder(3);
  const repeat = await buy(3, REGULAR, undefined, 'checkout-3');
  assert.equal(repeat.status, 200, JSON.stringify(repeat.body));
  assert.equal(repeat.body.orderId, first3);
  assert.deepEqual(await firstOrder(3), [first3], 'no second order');
  await waitUntil(
    "the repeat's unit is back",
    async () => (await chain.stock.settle(REGULAR)).books.sold === 1,
    30_000,
  );
  // Buyer 1's checkout-1 took the hot item's only unit (the first test): a repeat finds the
  // stock gone, then its first order; a new request of the same buyer is sold out.
  const [first1] = await firstOrder(1);
  const late = await buy(1, HOT, undefined, 'checkout-1');
  assert.equal(late.status, 200, JSON.stringify(late.body));
  assert.equal(late.body.orderId, first1);
  const other = await buy(1, HOT, undefined, 'checkout-1-again');
  assert.equal(other.status, 409, JSON.stringify(other.body));
  const hot = await chain.stock.settle(HOT);
  assert.deepEqual([hot.books.sold, hot.books.left], [1, 0], 'one unit sold, once');
});
