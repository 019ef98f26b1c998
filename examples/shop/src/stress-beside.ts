/**
 * `--stress-beside`: a full-link stress run through the shop's chain while the flash sale
 * runs real traffic (Taobao's promotion rehearsal). Stress buys go through the same gateway,
 * order and inventory processes as real ones, flagged, and the chain keeps their data apart:
 * orders in the shadow tables (`orders_N_shadow`, made by `peak data shadow create`), their
 * "order placed" events in the shadow topic, their deductions in the shadow stock
 * (shadow-stock.ts), their points in `shop.points_shadow` (shadow-points.ts). After the run
 * the isolation check looks for stress data where it must not be: stress buyers' rows in
 * the real order tables (every physical table) and in `shop.points`, the run's messages in
 * real topics, stress orders' deductions in the real stock (shop-isolation.ts). The run is
 * registered with the control plane and its report and check kept there (`peak stress ls`).
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { createContext, runWithContext } from 'peakware/core';
import {
  type IsolationLeak,
  type IsolationReport,
  type StressReport,
  startRun,
} from 'peakware/stress';
import type pg from 'pg';
import type { Chain } from './chain.js';
import { ORDER_LAYOUT, type OrderShards } from './order-store.js';
import { SHADOW_POINTS_TABLE } from './shadow-points.js';
import { SHADOW_STOCK_SCHEMA } from './shadow-stock.js';
import { releaseOrphanDeductions } from './shop-database.js';
import { shopIsolationCheck, withPlantedLeak } from './shop-isolation.js';
import { type StressOutcomes, shopStressScenario, stressOutcomes } from './stress-scenario.js';

/** The `peak` CLI of the installed peakware package. */
const peakCli = path.join(
  path.dirname(createRequire(import.meta.url).resolve('peakware/package.json')),
  'bin',
  'peak.js',
);

/**
 * Makes the shadow tables stress traffic writes to: the order tables' by `peak data shadow
 * create` over the order layout (written to `<dataDir>/order-layout.json` with the shards'
 * connections), and `shop.points_shadow` beside `shop.points` (not a table of the layout).
 * Call after the real tables exist.
 */
export async function createShadowTables(
  pool: pg.Pool,
  shards: OrderShards,
  dataDir: string,
): Promise<void> {
  const layoutFile = path.join(dataDir, 'order-layout.json');
  await writeFile(
    layoutFile,
    JSON.stringify({
      ...ORDER_LAYOUT,
      connections: { ds0: { primary: shards.ds0 }, ds1: { primary: shards.ds1 } },
    }),
    { mode: 0o600 },
  );
  const child = spawn(
    process.execPath,
    [peakCli, 'data', 'shadow', 'create', '--layout', layoutFile],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let err = '';
  child.stderr.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`peak data shadow create failed (exit ${code}): ${err.trim()}`);
  await pool.query(
    `CREATE TABLE IF NOT EXISTS ${SHADOW_POINTS_TABLE} (LIKE shop.points INCLUDING ALL)`,
  );
}

/** How the stress run goes. */
export interface StressBesideOptions {
  sku: string;
  /** Buys per second. */
  rate: number;
  seconds: number;
  /**
   * After the check, plant one leak (a stress buyer's order written with the call context
   * dropped, so it ignores the shadow routing), check again, and remove it: the second
   * check must fail and name the table.
   */
  plantLeak?: boolean;
}

/** What the stress run did and what the isolation check found. */
export interface StressBesideResult {
  runId: string;
  seconds: number;
  stopReason: string;
  requests: number;
  errors: number;
  throughput: number;
  latencyMs: { p50: number; p99: number; max: number };
  outcomes: Omit<StressOutcomes, 'orderIds'>;
  /** Where the stress data went: the shadows. */
  shadow: {
    orders: number;
    unitsOrdered: number;
    pointsAwarded: number;
    stock: { initial: number; left: number; sold: number };
    /** Shadow units released by the sweep (deducted for orders never written). */
    releasedBySweep: number;
    /** Shadow stock sold = units in shadow orders, every shadow order awarded points. */
    balanced: boolean;
  };
  isolation: IsolationReport;
  /** With `plantLeak`: the check with one planted leak (it must fail, naming the table). */
  plantedLeak?: IsolationReport;
  errorSamples: string[];
}

/** A stress run started beside the sale: {@link StressBeside.finish} after the sale. */
export interface StressBeside {
  runId: string;
  /** Waits for the run, lets the shadow consumer catch up, checks isolation, keeps the report. */
  finish(): Promise<StressBesideResult>;
}

const stressContext = () => createContext({ stress: true });

/** Seeds the shadow stock from the real one and starts the run. */
export async function startStressBeside(
  chain: Chain,
  options: StressBesideOptions,
): Promise<StressBeside> {
  // The shadow stock starts as the real one does: same units, loaded through the engine's
  // own load, in a stress context (so it lands in the shadow copy).
  const real = await chain.stock.engine.books(options.sku);
  await runWithContext(stressContext(), async () => {
    await chain.stock.engine.load(options.sku, real.initial);
    // A fresh shadow sale, as seedFlashSale starts a real one: earlier runs' shadow rows go.
    await chain.orders.query('DELETE FROM orders WHERE sku = $1', [options.sku]);
  });
  await chain.shopPool.query(`DELETE FROM ${SHADOW_POINTS_TABLE} WHERE sku = $1`, [options.sku]);
  const outcomes = stressOutcomes();
  const scenario = shopStressScenario({
    gatewayUrl: chain.gatewayUrl,
    apiKey: chain.gatewayKey,
    sku: options.sku,
    rate: options.rate,
    seconds: options.seconds,
    outcomes,
  });
  // Registered first, so the control plane knows the run before its first message.
  const runId = randomUUID();
  await chain.admin.stress.createRun({ id: runId, scenario: scenario.name, model: scenario.load });
  const run = startRun(scenario, { runId });
  return {
    runId,
    finish: async () => {
      const report = await run.done;
      const shadow = await shadowFigures(chain, options.sku, report);
      const check = () =>
        shopIsolationCheck(chain, runId, report.startedAt, options.sku, outcomes.orderIds);
      const isolation = await check();
      await chain.admin.stress.finish(runId, report, isolation);
      const plantedLeak = options.plantLeak ? await withPlantedLeak(chain, check) : undefined;
      return summarize(report, outcomes, shadow, isolation, plantedLeak);
    },
  };
}

/**
 * The shadow sale's books, kept as the real ones are: once the stress buys have had time to
 * finish (as the sale's books wait), the shadow stock settles, the compensation sweep
 * releases shadow deductions whose order was never written (in a stress context, so it
 * looks in the shadow order tables), and the shadow points consumer catches up (bounded).
 */
async function shadowFigures(
  chain: Chain,
  sku: string,
  report: StressReport,
): Promise<StressBesideResult['shadow']> {
  const ended = report.startedAt + report.durationS * 1000;
  await new Promise((r) => setTimeout(r, Math.max(0, ended + 4500 - Date.now())));
  return runWithContext(stressContext(), async () => {
    await chain.stock.settle(sku);
    const released = await releaseOrphanDeductions(
      chain.shopPool,
      chain.stock,
      chain.orders,
      sku,
      0,
      SHADOW_STOCK_SCHEMA,
    );
    const read = async () => {
      // Under the stress flag the data layer reads the shadow order tables.
      const { rows } = await chain.orders.query<{ n: string | number; u: string | number | null }>(
        'SELECT count(*) AS n, sum(qty) AS u FROM orders WHERE sku = $1',
        [sku],
      );
      const points = await chain.shopPool.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM ${SHADOW_POINTS_TABLE} WHERE sku = $1`,
        [sku],
      );
      return {
        orders: Number(rows[0]?.n ?? 0),
        unitsOrdered: Number(rows[0]?.u ?? 0),
        pointsAwarded: Number(points.rows[0]?.n ?? 0),
      };
    };
    let figures = await read();
    const until = Date.now() + 20_000;
    while (figures.pointsAwarded < figures.orders && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 200));
      figures = await read();
    }
    const { books } = await chain.stock.settle(sku);
    const stock = { initial: books.initial, left: books.left, sold: books.sold };
    return {
      ...figures,
      stock,
      releasedBySweep: released,
      balanced:
        stock.sold === figures.unitsOrdered &&
        stock.left === stock.initial - stock.sold &&
        figures.pointsAwarded === figures.orders,
    };
  });
}

function summarize(
  report: StressReport,
  outcomes: StressOutcomes,
  shadow: StressBesideResult['shadow'],
  isolation: IsolationReport,
  plantedLeak: IsolationReport | undefined,
): StressBesideResult {
  const { orderIds: _ids, ...counts } = outcomes;
  const ms = (v: number) => Number(v.toFixed(1));
  return {
    runId: report.runId,
    seconds: ms(report.durationS),
    stopReason: report.stopReason,
    requests: report.totals.requests,
    errors: report.totals.errors,
    throughput: ms(report.totals.throughput),
    latencyMs: {
      p50: ms(report.latency.p50Ms),
      p99: ms(report.latency.p99Ms),
      max: ms(report.latency.maxMs),
    },
    outcomes: counts,
    shadow,
    isolation,
    ...(plantedLeak === undefined ? {} : { plantedLeak }),
    errorSamples: report.errors.slice(0, 3).map((e) => `${e.message} (×${e.count})`),
  };
}

/** One leak as the report words it: `table ds1.orders_2 (orders) (1)`. */
function leakLine(l: IsolationLeak): string {
  return `${l.kind} ${l.where} (${l.count})`;
}

/** The stress run's lines of the shop's report, apart from the real sale's. */
export function stressReportLines(r: StressBesideResult, rate: number): string[] {
  const iso = r.isolation;
  const realTables = iso.checked.tables.length;
  const lines = [
    `stress run beside the sale (shadow traffic; run ${r.runId}, kept by the control plane: peak stress ls):`,
    `  ${rate}/s for ${r.seconds} s: ${r.requests} buys, placed ${r.outcomes.placed}, sold out ${r.outcomes.soldOut}, refused by the guard ${r.outcomes.blocked}, errors ${r.errors}; p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms (from each buy's scheduled time), stopped: ${r.stopReason}`,
    `  shadows: ${r.shadow.orders} orders in the shadow order tables, ${r.shadow.pointsAwarded} awards in ${SHADOW_POINTS_TABLE} (events via the shadow topic), shadow stock ${r.shadow.stock.initial} → ${r.shadow.stock.left} left (${r.shadow.stock.sold} sold, ${r.shadow.releasedBySweep} released by the sweep): shadow books ${r.shadow.balanced ? 'balance' : 'DO NOT BALANCE'}`,
    iso.ok
      ? `  isolation check: passed: zero stress rows in ${realTables} real tables (${iso.checked.tables.map((t) => t.where.split(' ')[0]).join(', ')}), zero stress messages in real topics${iso.checked.topics ? '' : ' (not checked)'}, zero stress deductions in the real stock`
      : `  isolation check: FAILED: stress data in ${iso.leaks.map(leakLine).join(', ')}`,
  ];
  if (r.plantedLeak !== undefined) {
    const p = r.plantedLeak;
    lines.push(
      p.ok
        ? '  planted leak (one stress order written without the stress flag): NOT DETECTED'
        : `  planted leak (one stress order written without the stress flag): the check fails and names ${p.leaks.map(leakLine).join(', ')}`,
    );
  }
  for (const e of r.errorSamples) lines.push(`  stress error: ${e}`);
  return lines;
}

/** The run's verdict: isolated, and with a planted leak, the leak found. */
export function stressPassed(r: StressBesideResult): boolean {
  return r.isolation.ok && (r.plantedLeak === undefined || !r.plantedLeak.ok);
}
