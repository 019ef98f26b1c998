/**
 * The main job must run: the shop in smoke mode brings up the control plane, four service
 * processes and the gateway, runs a small flash sale, checks the books and stops cleanly.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { redisServerAvailable } from 'peakware/cache';

const main = path.join(path.dirname(fileURLToPath(import.meta.url)), 'main.js');

interface Summary {
  warmUp: { sent: number; placed: number; failed: number };
  hot: { sent: number; placed: number; soldOut: number; blocked: number; errors: number };
  regular: { sent: number };
  books: {
    stock: number;
    left: number;
    orders: number;
    unitsOrdered: number;
    unitsDeducted: number;
    pointsAwarded: number;
    oversold: number;
  };
  consistent: boolean;
  cacheTier: { stock: string | null; products: string | null };
  repeats: {
    doubleClicks: number;
    sameOrder: number;
    differentOrders: number;
    retried: number;
    duplicateOrders: number;
  };
  trace: { traceId?: string; spans: number };
  topology: { caller: string; callee: string; stress: boolean; calls: number }[];
  alerts: { rule: string; transitions: { state: string; atSecond: number }[] }[];
  metrics: { service: string; resource: string; calls: number; blocked: number }[];
  coupons: {
    sale: { sent: number; placed: number };
    payments: { paid: number; errors: number };
    books: {
      used: number;
      locked: number;
      released: number;
      usedWithoutOrder: number;
      payments: number;
      paidWithoutOrder: number;
    };
    txn: {
      tcc: { succeeded: number; failed: number; active: number };
      messages: { succeeded: number; failed: number; active: number };
    };
    consistent: boolean;
  };
}

/** Runs the shop with `args` to its exit (killed after 170 s): exit code, stdout, stderr. */
async function runShop(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, [main, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 170_000);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(timer);
  return { code, out, err };
}

test('the shop sells out a flash sale without overselling and stops cleanly', {
  timeout: 180_000,
}, async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-shop-'));
  try {
    // With redis-server on PATH, the product cache runs on a Redis Cluster of three masters
    // (the hot stock on its own durable Redis), as a catalogue larger than one Redis would.
    const cluster = redisServerAvailable() ? ['--cache-cluster', '3'] : [];
    const { code, out, err } = await runShop([
      '--data',
      dataDir,
      '--port',
      '0',
      '--smoke',
      '--json',
      ...cluster,
    ]);
    assert.equal(code, 0, `${out}\n${err}`);
    const summary = JSON.parse(out.trim().split('\n').at(-1)!) as Summary;
    assert.equal(summary.consistent, true);
    assert.equal(summary.books.oversold, 0);
    // The warm-up before the doors open placed its buys, the coupon quarter too (a cold
    // chain on a loaded machine may let one miss the gateway's deadline: not all of them).
    assert.ok(summary.warmUp.sent > 0, JSON.stringify(summary.warmUp));
    assert.ok(summary.warmUp.placed >= summary.warmUp.sent * 0.9, JSON.stringify(summary.warmUp));
    assert.ok(summary.hot.placed > 0 && summary.hot.placed <= summary.books.stock);
    assert.ok(summary.books.orders >= summary.hot.placed, 'every placed order is in the books');
    assert.equal(summary.books.unitsDeducted, summary.books.unitsOrdered);
    assert.equal(summary.books.pointsAwarded, summary.books.orders, 'every order event consumed');
    assert.equal(summary.books.left, summary.books.stock - summary.books.unitsDeducted);
    // One order is one trace across the chain, and the collector's call graph is the real one.
    assert.ok(summary.trace.spans >= 5, `one order's trace has ${summary.trace.spans} spans`);
    const edges = new Set(summary.topology.map((e) => `${e.caller}>${e.callee}`));
    for (const edge of [
      'shop.gateway>shop.order',
      'shop.order>shop.inventory',
      'shop.order>shop.points',
    ]) {
      assert.ok(edges.has(edge), `topology has ${edge}: ${[...edges].join(', ')}`);
    }
    // With Redis (the hot stock and the product cache's L2), each deduction is a Redis span
    // of the buy's trace: the inventory → Redis edge.
    if (redisServerAvailable()) {
      assert.ok(
        [...edges].some((e) => e.startsWith('shop.inventory>redis:')),
        `topology has shop.inventory > redis:<host>:<port>: ${[...edges].join(', ')}`,
      );
      // The product cache's reads went to the cluster (its seed nodes name the peer).
      const products = summary.cacheTier.products ?? '';
      assert.match(products, /^redis\+cluster:\/\/(127\.0\.0\.1:\d+,){2}127\.0\.0\.1:\d+$/);
      assert.notEqual(products, summary.cacheTier.stock);
      const peer = `redis:${products.slice('redis+cluster://'.length)}`;
      assert.ok(
        edges.has(`shop.order>${peer}`),
        `topology has shop.order > ${peer}: ${[...edges].join(', ')}`,
      );
    }
    // Every buy carried a request id; a share were sent twice at once (double clicks) and a
    // failed one was retried with it: never a second order for one request.
    assert.ok(summary.repeats.doubleClicks > 0, JSON.stringify(summary.repeats));
    assert.equal(summary.repeats.differentOrders, 0, JSON.stringify(summary.repeats));
    assert.equal(summary.repeats.duplicateOrders, 0, JSON.stringify(summary.repeats));
    // A share of the hot item's buys were TCCs across coupon, stock and order: each one
    // confirmed (coupon used, order written, its event published) or rolled back (coupon
    // released), none left locked or unfinished.
    const { coupons } = summary;
    assert.ok(coupons.sale.sent > 0, 'the smoke sale sends buys with a coupon');
    assert.equal(coupons.consistent, true, JSON.stringify(coupons));
    assert.equal(coupons.books.locked, 0);
    assert.equal(coupons.books.usedWithoutOrder, 0);
    assert.ok(coupons.books.used >= coupons.sale.placed, JSON.stringify(coupons));
    assert.equal(coupons.txn.tcc.active, 0);
    // Each coupon order the buyer saw placed was paid through the payment callback.
    assert.ok(coupons.books.payments >= coupons.payments.paid, JSON.stringify(coupons));
    assert.equal(coupons.books.paidWithoutOrder, 0);
    assert.equal(coupons.txn.tcc.succeeded, coupons.books.used, JSON.stringify(coupons));
    assert.equal(coupons.txn.messages.succeeded, coupons.books.used, JSON.stringify(coupons));
    assert.ok(edges.has('shop.order>shop.coupon'), [...edges].join(', '));
    // Every process pushed its per-second metrics: the gateway's buy route counts every
    // attempt that got past flow control (blocked ones apart), the inventory its deducts.
    const buy = summary.metrics.find(
      (m) => m.service === 'shop.gateway' && m.resource === 'POST /api/buy',
    );
    assert.ok(buy !== undefined, `metrics: ${JSON.stringify(summary.metrics)}`);
    // Requests, not attempts: a double click is two, a retry one more.
    const attempts =
      summary.hot.sent +
      summary.regular.sent +
      summary.repeats.doubleClicks +
      summary.repeats.retried;
    assert.ok(
      Math.abs(buy.calls + buy.blocked - attempts) <= Math.max(2, attempts * 0.02),
      `gateway counted ${buy.calls} calls + ${buy.blocked} blocked for ${attempts} attempts`,
    );
    assert.ok(summary.metrics.some((m) => m.service === 'shop.inventory' && m.calls > 0));
    // The SLA rules were defined and evaluated (whether they fired depends on the run).
    assert.deepEqual(summary.alerts.map((a) => a.rule).sort(), [
      'shop.buy-burn',
      'shop.buy-p99',
      'shop.points-backlog',
    ]);
    for (const a of summary.alerts) {
      const states = a.transitions.map((t) => t.state);
      assert.ok(
        states.every((st, i) => st === (i % 2 === 0 ? 'fired' : 'resolved')),
        `${a.rule} alternates fired/resolved: ${states.join(', ')}`,
      );
    }
    // No process of the chain crashed (Node prints its version after an uncaught error).
    assert.ok(!/\nNode\.js v\d+/.test(err), err);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

interface CapacityJson {
  capacity: number;
  slo: { p99Ms: number };
  steps: {
    rate: number;
    passed: boolean;
    load: {
      scheduled: number;
      placed: number;
      errors: number;
      blocked: number;
      bySecond: { p99: number; max: number }[];
    };
    cpuUsPerOrder: Record<string, number> & { total: number };
    books: { consistent: boolean; orders: number; pointsAwarded: number; oversold: number };
    machineBySecond: { chain: number; byKind: Record<string, number>; others: number }[];
  }[];
}

// The capacity run's mechanics, not its figures (those are the benchmark's): a step is
// measured with the limits lifted, its CPU is split by process kind, and its books add up.
// One step shows them all (a second one only repeated them, with its own books check).
test('the capacity run measures each step with the limits lifted and checks the books', {
  timeout: 180_000,
}, async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-shop-cap-'));
  try {
    const { code, out, err } = await runShop([
      '--data',
      dataDir,
      '--port',
      '0',
      '--capacity',
      '--json',
      '--rates',
      '10',
      '--step-seconds',
      '2',
    ]);
    assert.equal(code, 0, `${out}\n${err}`);
    const report = JSON.parse(out.trim().split('\n').at(-1)!) as CapacityJson;
    assert.equal(report.slo.p99Ms, 100);
    assert.ok(report.steps.length >= 1 && report.steps[0]!.rate === 10);
    for (const s of report.steps) {
      assert.equal(s.load.blocked, 0, `step ${s.rate}/s: lifted limits block nothing`);
      assert.ok(s.load.placed > 0, `step ${s.rate}/s placed ${s.load.placed}`);
      assert.equal(s.books.consistent, true, `step ${s.rate}/s books`);
      assert.equal(s.books.oversold, 0);
      assert.equal(s.books.pointsAwarded, s.books.orders, 'every order event consumed');
      assert.equal(s.load.bySecond.length, 2, `step ${s.rate}/s: p99 of each of its 2 seconds`);
      for (const kind of [
        'gateway',
        'order',
        'inventory',
        'points',
        'control plane',
        'postgres #1',
      ])
        assert.ok((s.cpuUsPerOrder[kind] ?? 0) > 0, `step ${s.rate}/s: CPU of ${kind} counted`);
      // The machine second by second: at least the step's two seconds, the chain's cores by
      // process kind adding up to the chain's, none of them beyond the machine's cores.
      assert.ok(
        s.machineBySecond.length >= 2,
        `step ${s.rate}/s: ${s.machineBySecond.length} seconds sampled`,
      );
      for (const m of s.machineBySecond) {
        const sum = Object.values(m.byKind).reduce((a, b) => a + b, 0);
        assert.ok(
          Math.abs(sum - m.chain) < 0.05 * Object.keys(m.byKind).length + 0.01,
          JSON.stringify(m),
        );
        assert.ok(m.chain >= 0 && m.chain <= os.availableParallelism() + 1, JSON.stringify(m));
        assert.ok(m.others >= 0, JSON.stringify(m));
      }
      assert.ok(
        s.machineBySecond.some((m) => m.chain > 0),
        `step ${s.rate}/s: the chain used some CPU`,
      );
    }
    // The capacity is a step that passed, or 0 when none did.
    const passed = report.steps.filter((s) => s.passed).map((s) => s.rate);
    assert.equal(report.capacity, passed.length === 0 ? 0 : Math.max(...passed));
    assert.ok(!/\nNode\.js v\d+/.test(err), err);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});
