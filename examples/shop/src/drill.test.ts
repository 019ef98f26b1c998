/**
 * The shop with `--drill --plan`: the flash-sale plan is applied on its schedule before the sale and rolled
 * back after it (every item back to its earlier version), the drill's faults hit the sale
 * (failed order writes reach buyers as errors) and are stopped, and the books still balance
 * (the failed writes' deductions released by compensation, every order's event consumed
 * once the paused points consumer resumed).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { PlanRun } from 'peakware/admin';
import type { DrillReport } from 'peakware/drill';

const main = path.join(path.dirname(fileURLToPath(import.meta.url)), 'main.js');

interface Summary {
  consistent: boolean;
  books: { oversold: number; orders: number; pointsAwarded: number };
  hot: { errors: number };
  regular: { errors: number };
  drill?: DrillReport;
  plan?: { applied: PlanRun; rolledBack?: PlanRun };
}

test('the shop drill and the flash-sale plan run with the sale, books consistent', {
  timeout: 200_000,
}, async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-shop-drill-'));
  try {
    const child = spawn(
      process.execPath,
      [main, '--data', dataDir, '--port', '0', '--smoke', '--json', '--drill', '--plan'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 190_000);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    clearTimeout(timer);
    assert.equal(code, 0, `${out}\n${err.slice(-4000)}`);
    const summary = JSON.parse(out.trim().split('\n').at(-1)!) as Summary;
    assert.equal(summary.consistent, true);
    assert.equal(summary.books.oversold, 0);
    assert.equal(
      summary.books.pointsAwarded,
      summary.books.orders,
      'events consumed after the resume',
    );

    const plan = summary.plan!;
    assert.equal(plan.applied.action, 'apply');
    // Applied by the control plane on its schedule (the sale's opening), not by the shop.
    assert.match(plan.applied.actor, /\(scheduled\)$/);
    assert.match(plan.applied.source, /^schedule \d+ on /);
    assert.deepEqual(plan.applied.items.map((i) => `${i.group}/${i.key}`).sort(), [
      'cache/products',
      'entries/refunds',
      'governance/guard-rules',
      'mq-pause/shop.points',
    ]);
    assert.equal(plan.rolledBack?.action, 'rollback');

    const drill = summary.drill!;
    assert.notEqual(drill.outcome, 'refused', JSON.stringify(drill.timeline));
    assert.equal(drill.injected.length, 2);
    assert.ok(drill.timeline.some((e) => e.what === 'stop'));
    assert.ok(drill.recoveryMs !== null, 'the checks passed again after the stop');
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});
