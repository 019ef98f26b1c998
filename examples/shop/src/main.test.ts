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

const main = path.join(path.dirname(fileURLToPath(import.meta.url)), 'main.js');

interface Summary {
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
  trace: { traceId?: string; spans: number };
  topology: { caller: string; callee: string; stress: boolean; calls: number }[];
  alerts: { rule: string; transitions: { state: string; atSecond: number }[] }[];
  metrics: { service: string; resource: string; calls: number; blocked: number }[];
}

test('the shop sells out a flash sale without overselling and stops cleanly', {
  timeout: 180_000,
}, async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-shop-'));
  try {
    const child = spawn(
      process.execPath,
      [main, '--data', dataDir, '--port', '0', '--smoke', '--json'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
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
    assert.equal(code, 0, `${out}\n${err}`);
    const summary = JSON.parse(out.trim().split('\n').at(-1)!) as Summary;
    assert.equal(summary.consistent, true);
    assert.equal(summary.books.oversold, 0);
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
    // Every process pushed its per-second metrics: the gateway's buy route counts every
    // attempt that got past flow control (blocked ones apart), the inventory its deducts.
    const buy = summary.metrics.find(
      (m) => m.service === 'shop.gateway' && m.resource === 'POST /api/buy',
    );
    assert.ok(buy !== undefined, `metrics: ${JSON.stringify(summary.metrics)}`);
    const attempts = summary.hot.sent + summary.regular.sent;
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
