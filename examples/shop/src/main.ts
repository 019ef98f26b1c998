/**
 * The shop: Peakware's main job. `npm start` runs the buy chain on the embedded default
 * and puts a flash sale through it:
 *
 *   flash-sale buyers ──HTTP──▶ peak gateway (API key; guard: QPS limit, hot-item limit, system guard)
 *                                  │ RPC (registry discovery, p2c balancing, deadline 2 s)
 *                                  ▼
 *                     order service ×2 ──RPC──▶ inventory service ×2 ──SQL──▶ PostgreSQL
 *                     (separate processes, registered with the control plane)
 *
 * then checks the books: every unit sold is one order, nothing oversold.
 *
 * Flags: --data DIR (default .peak), --port N (control plane, default 7420), --stock N,
 * --buyers N, --concurrency N, --seconds N, --exit (stop after the sale), --smoke (a small
 * sale, then exit: what CI runs), --json (print the report as one JSON object),
 * --capacity (instead of the sale: open-model load in rising steps with the guard limits
 * lifted, one line per step and the capacity; see capacity.ts), --rates 100,200,...,
 * --step-seconds N, --sample R (trace sampling ratio; default 1 for the sale, 0.05 for a
 * capacity run), --drill (a fault drill during the sale: one inventory instance slowed, 20 % of
 * one order instance's order writes failing; see drill.ts), --plan (the "flash-sale" plan
 * applied before the sale and rolled back after it), --stress-beside (a stress run with
 * shadow traffic beside the sale and its isolation check; see stress-beside.ts),
 * --stress-rate N, --stress-leak (plant one leak and check again), --scale-demo (the
 * chain's supervisor scales its order instances on QPS during the sale, and a slower inventory
 * v2's gray release is rolled back by the analysis; see scale-demo.ts), --coupon-share R
 * (share of the hot item's buys sent with the buyer's coupon: a TCC across coupon, stock and
 * order; see coupon-order.ts), --control-plane N (1, or 2: a second `peak server` process on
 * the same PostgreSQL, listed first by every client; see control-plane-node.ts).
 */
import os from 'node:os';
import type { AdminClient, TopologyEdge } from 'peakware/admin';
import { createLogger, errorMessage, isPeakError } from 'peakware/core';
import { stopAtOnce } from 'peakware/server';
import { capacityInstances, runCapacity } from './capacity.js';
import { ORDER_PLACED_TOPIC } from './catalog.js';
import { type Chain, type ChildDeath, SHOP_MESSAGE_DATABASE, startChain } from './chain.js';
import { couponReportLines, settledCouponTxnFigures } from './coupon-report.js';
import { couponBooksBalance, seedCoupons, settledCouponLedger } from './coupon-store.js';
import {
  applyFlashSalePlan,
  formatDrillReport,
  planLine,
  rollbackFlashSalePlan,
  runShopDrill,
} from './drill.js';
import { BUY_LIMITS } from './edge.js';
import { runFlashSale, warmUp } from './flash-sale.js';
import { alertLine, capacityLine, progressLine, row, stepLine } from './report.js';
import { scaleDemoLines, startScaleDemo } from './scale-demo.js';
import { parseShopArgs, shopNumber, shopUsageError as usage } from './shop-args.js';
import {
  booksBalance,
  duplicateOrders,
  releaseOrphanDeductions,
  settledLedger,
} from './shop-database.js';
import {
  defineAlertRules,
  readAlertOutcomes,
  readLiveMetrics,
  SHOP_ALERT_RULES,
} from './shop-monitoring.js';
import { startStressBeside, stressPassed, stressReportLines } from './stress-beside.js';

const HOT_SKU = 'flash-phone';

/**
 * The call graph of the last minutes and the span count of one trace, read from the
 * collector; waits (bounded) for the trace's consumer span to arrive.
 */
async function readTopology(
  admin: AdminClient,
  traceId: string | undefined,
): Promise<{ edges: TopologyEdge[]; spans: number }> {
  let spans = 0;
  const until = Date.now() + 10_000;
  while (traceId !== undefined && Date.now() < until) {
    // Not stored yet (PEAK_NOT_FOUND) until the processes' next export.
    const tree = await admin.telemetry.trace(traceId).catch(() => undefined);
    if (tree !== undefined) {
      spans = tree.spanCount;
      if (JSON.stringify(tree).includes('consume ')) break;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  const { edges } = await admin.telemetry.topology({ sinceMinutes: 10 });
  return { edges, spans };
}

const REGULAR_SKU = 'usb-cable';

const { values } = parseShopArgs({
  data: { type: 'string', default: '.peak', valueName: 'DIR', description: 'the data folder' },
  port: {
    type: 'string',
    default: '7420',
    valueName: 'N',
    description: 'control-plane port (0: any)',
  },
  stock: { type: 'string', valueName: 'N', description: 'units of the hot item (default 300)' },
  buyers: { type: 'string', valueName: 'N', description: 'buyers in the sale (default 4000)' },
  concurrency: { type: 'string', valueName: 'N', description: 'buyers at a time (default 48)' },
  seconds: { type: 'string', valueName: 'N', description: 'longest sale (default 30)' },
  exit: { type: 'boolean', default: false, description: 'stop after the report' },
  smoke: { type: 'boolean', default: false, description: 'a small sale, then exit (what CI runs)' },
  json: { type: 'boolean', default: false, description: 'print the report as one JSON object' },
  capacity: {
    type: 'boolean',
    default: false,
    description: "measure the chain's capacity instead of the sale",
  },
  rates: { type: 'string', valueName: 'R,R,...', description: 'capacity steps in buys/s' },
  'step-seconds': {
    type: 'string',
    valueName: 'N',
    description: 'seconds per capacity step (default 10)',
  },
  instances: {
    type: 'string',
    valueName: 'N',
    description:
      'inventory and order processes each (default 2; a capacity run: one per 2 cores, at least 1)',
  },
  sample: {
    type: 'string',
    valueName: 'R',
    description: 'trace sampling ratio 0..1 (default 1; capacity 0.05)',
  },
  'cache-cluster': {
    type: 'string',
    valueName: 'N',
    description:
      'the product cache on a private Redis Cluster of N masters (hot stock stays on one Redis)',
  },
  drill: { type: 'boolean', default: false, description: 'a fault drill during the sale' },
  plan: {
    type: 'boolean',
    default: false,
    description: 'apply the flash-sale plan, roll it back after',
  },
  'stress-beside': {
    type: 'boolean',
    default: false,
    description: 'a stress run with shadow traffic beside the sale, and its isolation check',
  },
  'stress-rate': {
    type: 'string',
    valueName: 'N',
    description: 'stress buys per second with --stress-beside (default 20)',
  },
  'stress-leak': {
    type: 'boolean',
    default: false,
    description: 'with --stress-beside: plant one leak after the check and check again',
  },
  'scale-demo': {
    type: 'boolean',
    default: false,
    description:
      'scale the order service out and back in during the sale, and roll back a slower inventory v2',
  },
  'coupon-share': {
    type: 'string',
    valueName: 'R',
    description: "share 0..1 of the hot item's buys sent with a coupon, each a TCC (default 0.2)",
  },
  'double-click-share': {
    type: 'string',
    valueName: 'R',
    description:
      'share 0..1 of plain buys sent twice at once with one request id, a double click (default 0.02)',
  },
  'control-plane': {
    type: 'string',
    valueName: 'N',
    description:
      'control-plane nodes: 1, or 2 (a second peak server process on the same PostgreSQL)',
  },
});

const smoke = values.smoke === true;
const capacityRun = values.capacity === true;
const positive = { min: 1, integer: true };
const settings = {
  stock: shopNumber(
    values.stock,
    'stock',
    capacityRun ? 1_000_000_000 : smoke ? 50 : 300,
    positive,
  ),
  buyers: shopNumber(values.buyers, 'buyers', smoke ? 400 : 4000, positive),
  concurrency: shopNumber(values.concurrency, 'concurrency', smoke ? 16 : 48, positive),
  seconds: shopNumber(values.seconds, 'seconds', smoke ? 20 : 30, positive),
  'step-seconds': shopNumber(values['step-seconds'], 'step-seconds', 10, positive),
  instances: shopNumber(
    values.instances,
    'instances',
    capacityRun ? capacityInstances(os.availableParallelism()) : 2,
    positive,
  ),
  'stress-rate': shopNumber(values['stress-rate'], 'stress-rate', 20, positive),
  'coupon-share': shopNumber(values['coupon-share'], 'coupon-share', 0.2, { min: 0, max: 1 }),
  'double-click-share': shopNumber(values['double-click-share'], 'double-click-share', 0.02, {
    min: 0,
    max: 1,
  }),
  'control-plane': shopNumber(values['control-plane'], 'control-plane', 1, {
    min: 1,
    max: 2,
    integer: true,
  }),
  'cache-cluster':
    values['cache-cluster'] === undefined
      ? undefined
      : shopNumber(values['cache-cluster'], 'cache-cluster', 3, { min: 1, max: 16, integer: true }),
};
const rates = (values.rates ?? '100,200,400,600,800,1000,1200,1500,2000,2500,3000,3500,4000')
  .split(',')
  .map(Number);
if (rates.some((r) => !Number.isInteger(r) || r <= 0)) {
  usage(`--rates must be positive integers separated by commas, got '${values.rates}'`);
}
if (values['stress-beside'] && capacityRun)
  usage('--stress-beside runs beside the sale, not with --capacity');
if (!values['stress-beside'] && (values['stress-leak'] || values['stress-rate'] !== undefined)) {
  usage('--stress-rate and --stress-leak go with --stress-beside');
}
const port = shopNumber(values.port, 'port', 7420, { min: 0, max: 65535, integer: true });
const sampleRatio = shopNumber(values.sample, 'sample', capacityRun ? 0.05 : 1, { min: 0, max: 1 });

const logger = createLogger({
  name: 'shop',
  level: 'warn',
  format: process.stderr.isTTY ? 'pretty' : 'json',
});
/** The pause between the warm-up and the sale, ms. */
const WARM_UP_GAP_MS = 1500;

const say = (line = '') => {
  if (!values.json) console.log(line);
};

async function capacityMain(chain: Chain): Promise<boolean> {
  say(
    `Capacity run: open-model load in steps of ${settings['step-seconds']} s (${rates.join(', ')} buys/s; 10% for ${REGULAR_SKU}), guard limits lifted, traces sampled at ${sampleRatio}; a step passes at p99 <= 100 ms and errors < 0.1 %`,
  );
  const report = await runCapacity(chain, {
    rates,
    stepSeconds: settings['step-seconds'],
    hotSku: HOT_SKU,
    regularSku: REGULAR_SKU,
    regularShare: 0.1,
    stock: settings.stock,
    onStep: ({ rate, result }) => {
      // With --json stdout carries only the report: steps go to stderr as progress.
      if (values.json) {
        if (result !== undefined) process.stderr.write(`${stepLine(result)}\n`);
      } else if (result === undefined) {
        if (process.stdout.isTTY) process.stdout.write(`  ${String(rate).padStart(5)}/s  ...\r`);
      } else console.log(stepLine(result));
    },
  });
  if (values.json) console.log(JSON.stringify(report));
  else {
    const best = report.steps.find((s) => s.rate === report.capacity) ?? report.steps.at(-1);
    if (best !== undefined) {
      say(`  stages at ${best.rate}/s (mean RT from the processes' metrics):`);
      for (const [stage, ms] of Object.entries(best.stagesMs))
        say(`    ${stage.padEnd(44)} ${ms} ms`);
    }
    say(capacityLine(report));
  }
  return report.steps.every((s) => s.books.consistent);
}

/** One line for a process of the chain that died (on stderr: stdout may carry the JSON report). */
function deathLine(d: ChildDeath): string {
  return `shop: ${d.role} process (pid ${d.pid}) died, ${d.how}${d.restartedAs === undefined ? '' : `; restarted as pid ${d.restartedAs}`}`;
}

/**
 * How long the report waits (at most) for the books to settle: the points of every order,
 * and the coupon TCCs. A healthy sale settles at once; after a kill -9 the dead consumer's
 * queues move after the broker's session (20 s) and its unacknowledged messages come back
 * after 30 s, and a dead driver's TCCs finish after their lease: on a loaded machine that
 * took more than the 30 s this wait had.
 */
const SETTLE_MS = 90_000;

/** How long a stop on a signal may take before the chain's processes are killed. */
const SIGNAL_STOP_MS = 20_000;

/**
 * Kills what the chain runs, without waiting: SIGKILL, PostgreSQL's immediate shutdown, and
 * the control plane's lock removed.
 */
function killChain(chain: Chain): void {
  const kill = (pid: number | undefined, signal: NodeJS.Signals) => {
    try {
      if (pid !== undefined) process.kill(pid, signal);
    } catch {
      // already gone
    }
  };
  for (const p of chain.processes) kill(p.pid, 'SIGKILL');
  kill(chain.redisPid, 'SIGKILL');
  kill(chain.postgresPids.primary, 'SIGQUIT');
  kill(chain.postgresPids.shard1, 'SIGQUIT');
  stopAtOnce(chain.server);
}

/**
 * SIGINT or SIGTERM to this process alone (not its group) must still stop every child it
 * started (PostgreSQL, redis-server, the services, the gateway): the chain is stopped,
 * once, then the process exits; a stop that takes over SIGNAL_STOP_MS (work in flight
 * that no longer ends) kills the chain's processes instead. A signal during start-up stops
 * the chain once it is up. A second signal (Ctrl-C twice) kills the chain at once.
 */
let running: Chain | undefined;
let interrupted: NodeJS.Signals | undefined;
function shutdown(signal: NodeJS.Signals): void {
  if (interrupted !== undefined) {
    // A second Ctrl-C: stop everything at once rather than wait for the graceful stop.
    console.error(`shop: second ${signal}: killing the chain`);
    if (running !== undefined) killChain(running);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  }
  interrupted = signal;
  console.error(`shop: ${signal}: stopping the chain`);
  const chain = running;
  if (chain === undefined) return;
  const code = signal === 'SIGINT' ? 130 : 143;
  setTimeout(() => {
    console.error(`shop: the chain did not stop within ${SIGNAL_STOP_MS / 1000} s; killing it`);
    killChain(chain);
    process.exit(code);
  }, SIGNAL_STOP_MS).unref();
  chain.stop().finally(() => process.exit(code));
}
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGTERM', () => shutdown('SIGTERM'));

async function main(): Promise<number> {
  say(
    'Peakware shop: starting the buy chain (the first run initialises PostgreSQL: a few seconds)',
  );
  // Service processes inherit the environment: SHOP_DRILL=1 starts their drill agents.
  if (values.drill) process.env.SHOP_DRILL = '1';
  const chain = await startChain({
    onChildDeath: (d) => console.error(deathLine(d)),
    dataDir: values.data,
    port,
    logger,
    hotSku: HOT_SKU,
    regularSku: REGULAR_SKU,
    stock: settings.stock,
    limits: capacityRun ? 'lifted' : 'flash-sale',
    sampleRatio,
    instances: settings.instances,
    stressBeside: values['stress-beside'],
    controlPlaneNodes: settings['control-plane'],
    ...(settings['cache-cluster'] === undefined ? {} : { cacheCluster: settings['cache-cluster'] }),
  });
  running = chain;
  if (interrupted !== undefined) {
    await chain.stop();
    return interrupted === 'SIGINT' ? 130 : 143;
  }
  try {
    return await runOn(chain);
  } catch (err) {
    await chain.stop().catch(() => undefined);
    throw err;
  }
}

async function runOn(chain: Chain): Promise<number> {
  const { server, orders: ordersDb } = chain;
  const gateway = { url: chain.gatewayUrl };
  await defineAlertRules(chain.admin);

  say('');
  say(
    `  control plane   ${server.info.url}   (postgres: ${server.info.postgres.mode}, data in ${server.info.dataDir})`,
  );
  if (chain.controlPlaneUrls.length > 1)
    say(
      `  control plane 2 ${chain.controlPlaneUrls[0]}   (peak server process on the same PostgreSQL; every service and the gateway list it first)`,
    );
  if (server.info.rpc !== undefined)
    say(
      `  rpc port        ${server.info.rpc.host}:${server.info.rpc.port}   (order events, points and coupon transactions reach the broker and the coordinator over it, not HTTP)`,
    );
  say(
    `  message dbs     main (control plane's PostgreSQL) and ${SHOP_MESSAGE_DATABASE} (PostgreSQL #2: the order events' topic ${ORDER_PLACED_TOPIC}; peak mq topics list)`,
  );
  say(
    `  console         ${server.info.url}/console   (log in with the admin token in ${server.info.adminTokenFile})`,
  );
  if (server.info.adminToken !== undefined) {
    say(
      `  admin token     ${server.info.adminToken}  (shown once; saved in ${server.info.adminTokenFile})`,
    );
  }
  say(
    `  services        shop.inventory ×${settings.instances}, shop.order ×${settings.instances} (RPC, registered); points (consumes order events)`,
  );
  say(
    chain.redisUrl === undefined
      ? '  cache tier      none (no redis-server on PATH, no PEAK_REDIS_URL): hot stock by the PostgreSQL engine (batched statements), product cache L1 only'
      : `  cache tier      ${chain.redisUrl}   (hot stock deducted in Redis, written behind to PostgreSQL; product cache L1 → Redis; switches: config item shop/cache/products)`,
  );
  if (chain.cacheRedisUrl !== undefined)
    say(
      `  product cache   ${chain.cacheRedisUrl}   (Redis Cluster: product keys spread over its masters by slot)`,
    );
  say(
    `  gateway         ${gateway.url}   (peak gateway; POST /api/buy {"userId":1,"sku":"${HOT_SKU}"} with x-peak-api-key; routes: peak gateway routes ls)`,
  );
  say(
    '  guard rules     config item shop/governance/guard-rules (pushed to the gateway; change it live with peak config set)',
  );
  say(
    `  SLA alerts      ${Object.keys(SHOP_ALERT_RULES).join(', ')} (peak alert list; live figures: peak top)`,
  );
  say('');
  if (capacityRun) {
    const consistent = await capacityMain(chain);
    const clean = await chain.stop();
    say(
      `capacity run: books ${consistent ? 'consistent' : 'INCONSISTENT'}, stopped ${clean ? 'cleanly' : 'with force'}`,
    );
    return consistent && clean ? 0 : 1;
  }
  say(
    `Flash sale: ${settings.stock} × ${HOT_SKU} for ${settings.buyers} buyers, ${settings.concurrency} at a time (10% buy ${REGULAR_SKU}), at most ${settings.seconds}s`,
  );
  // Warm the chain before the doors open (its buyers' coupons seeded for it; the sale's
  // seeding below starts the coupon books afresh).
  const warm = { buys: smoke ? 60 : 200, firstUserId: settings.buyers + 1 };
  await seedCoupons(chain.shopPool, settings.buyers + warm.buys);
  const warmed = await warmUp({
    gatewayUrl: gateway.url,
    apiKey: chain.gatewayKey,
    sku: REGULAR_SKU,
    firstUserId: warm.firstUserId,
    buys: warm.buys,
    concurrency: 8,
    couponShare: 0.25,
    maxSeconds: 10,
  });
  say(
    `  warm-up: ${warmed.sent} buys of ${REGULAR_SKU} (a quarter with a coupon: the TCC path) before the doors open, ${warmed.placed} placed, ${warmed.failed} not, in ${warmed.seconds.toFixed(1)} s`,
  );
  // The doors open a moment later, in a second of their own: the sale's per-second metrics
  // (read back from that second on) hold none of the warm-up's calls.
  await new Promise((r) => setTimeout(r, WARM_UP_GAP_MS));
  // Compensation runs beside the sale: deductions whose order never came are released.
  let compensated = 0;
  const sweeper = setInterval(() => {
    releaseOrphanDeductions(chain.shopPool, chain.stock, ordersDb, HOT_SKU, 15_000).then(
      (n) => {
        compensated += n;
      },
      () => undefined,
    );
  }, 1000);
  const planApplied = values.plan ? await applyFlashSalePlan(chain.admin, HOT_SKU) : undefined;
  if (planApplied !== undefined) say(`  ${planLine(planApplied)}`);
  const drillRun = values.drill
    ? runShopDrill(chain.admin, chain.processes, Math.min(settings.seconds, 8) * 1000, async () =>
        Math.max(0, -(await chain.stock.engine.stock(HOT_SKU))),
      )
    : undefined;
  // With --stress-beside: shadow traffic through the same chain while the sale runs.
  const stressRun = values['stress-beside']
    ? await startStressBeside(chain, {
        sku: HOT_SKU,
        rate: settings['stress-rate'],
        seconds: smoke ? 5 : 10,
        plantLeak: values['stress-leak'],
      })
    : undefined;
  // Every buyer holds one coupon; a share of the hot item's buys use it (a TCC each).
  await seedCoupons(chain.shopPool, settings.buyers);
  const scaleDemo = values['scale-demo'] ? await startScaleDemo(chain) : undefined;
  await scaleDemo?.startRelease();
  const saleStart = Date.now();
  const tty = process.stdout.isTTY && !values.json;
  let lastPrint = 0;
  const report = await runFlashSale({
    gatewayUrl: gateway.url,
    apiKey: chain.gatewayKey,
    buyers: settings.buyers,
    concurrency: settings.concurrency,
    maxSeconds: settings.seconds,
    hotSku: HOT_SKU,
    regularSku: REGULAR_SKU,
    regularShare: 0.1,
    couponShare: settings['coupon-share'],
    doubleClickShare: settings['double-click-share'],
    paymentKey: chain.paymentKey,
    onProgress: (r) => {
      if (values.json) return;
      if (tty) process.stdout.write(`\r${progressLine(r, settings.buyers)}`);
      else if (r.seconds - lastPrint >= 2) {
        lastPrint = r.seconds;
        console.log(progressLine(r, settings.buyers));
      }
    },
  });
  clearInterval(sweeper);
  if (tty) process.stdout.write(`\r${progressLine(report, settings.buyers)}\n`);
  // The plan is rolled back (the paused points consumer resumes: the books wait for its
  // events) and the drill finishes (faults stopped, recovery watched) before the books.
  const planRolledBack = planApplied ? await rollbackFlashSalePlan(chain.admin) : undefined;
  const drillReport = drillRun === undefined ? undefined : await drillRun;
  const scaleReport = await scaleDemo?.finish();

  // Every buy has answered (or timed out at the gateway); give providers a moment to
  // finish calls whose callers gave up, then compensate deductions that have no order.
  // (With Redis, settling first writes any deduction the writers have not yet to PostgreSQL,
  // where the sweep reads them.)
  await new Promise((r) => setTimeout(r, 4500));
  // Coupon orders are settled by the coordinator (confirmed or cancelled): wait (bounded)
  // until no coupon is locked and every used coupon's order is written.
  const couponBooks = await settledCouponLedger(chain.shopPool, ordersDb, SETTLE_MS);
  const couponTxn = await settledCouponTxnFigures(chain.admin, SETTLE_MS, saleStart);
  const couponsBalance = couponBooksBalance(couponBooks);
  await chain.stock.settle(HOT_SKU);
  compensated += await releaseOrphanDeductions(chain.shopPool, chain.stock, ordersDb, HOT_SKU, 0);
  // The points service consumes "order placed" events (relayed from each shard's outbox):
  // wait (bounded) until it has them all.
  const books = await settledLedger(chain.shopPool, chain.stock, ordersDb, HOT_SKU, SETTLE_MS);
  const oversold = Math.max(0, books.unitsDeducted - settings.stock);
  const stress = await stressRun?.finish();
  // The trace of one placed order, and the call graph, from the control plane's collector
  // (every process exports its spans about once a second).
  const traceId = report.hotTraceIds[0];
  // The call graph, alerts and metrics are the report's extras: a control plane too slow
  // to answer on a loaded machine (after a kill) leaves them empty, not the run failed.
  const topology = await readTopology(chain.admin, traceId).catch(() => ({
    edges: [],
    spans: 0,
  }));
  // What the alert rules saw, and every resource's figures from the per-second metrics
  // the processes pushed (the last push leaves about a second after the sale).
  const alerts = await readAlertOutcomes(chain.admin, saleStart).catch(() => []);
  // The whole seconds from the sale's opening to the last one the metrics serve (they leave
  // out the current second and the one before): the warm-up's seconds fall outside.
  const metricSeconds = Math.min(
    3600,
    Math.floor(Date.now() / 1000) - 1 - Math.floor(saleStart / 1000),
  );
  const metrics = await readLiveMetrics(chain.admin, metricSeconds).catch(() => []);
  // The books must balance: every deducted unit is one ordered unit, stock went down by
  // exactly that, nothing oversold. (A buyer whose request timed out may still have an
  // order: the client-side count is a lower bound.)
  // Every buy carries a request id: a double click or a retry must not place a second order.
  const duplicates = await duplicateOrders(ordersDb, [HOT_SKU, REGULAR_SKU]);
  const repeatsOk = duplicates === 0 && report.repeats.differentOrders === 0;
  const consistent =
    report.hot.placed <= books.unitsOrdered && booksBalance(books) && couponsBalance && repeatsOk;
  const sent = report.hot.sent + report.regular.sent;
  const summary = {
    seconds: Number(report.seconds.toFixed(2)),
    attemptsPerSecond: Math.round(sent / report.seconds),
    latencyMs: {
      p50: Number(report.latency.quantile(0.5).toFixed(1)),
      p99: Number(report.latency.quantile(0.99).toFixed(1)),
    },
    warmUp: warmed,
    hot: report.hot,
    regular: report.regular,
    books: { stock: settings.stock, ...books, oversold, compensated },
    trace: { traceId, spans: topology.spans },
    topology: topology.edges,
    // The Redis of the hot stock, and the product cache's (a cluster's URL with --cache-cluster).
    cacheTier: {
      stock: chain.redisUrl ?? null,
      products: chain.cacheRedisUrl ?? chain.redisUrl ?? null,
    },
    alerts,
    metrics: metrics.map((m) => ({
      service: m.service,
      resource: m.resource,
      instances: m.instances,
      calls: Math.round(m.qps * metricSeconds),
      blocked: Math.round(m.blockQps * metricSeconds),
      errors: Math.round(m.errorQps * metricSeconds),
      rtAvgMs: Number(m.rtAvgMs.toFixed(1)),
      // Of every call of every instance: their pushed RT histograms added.
      ...(m.rtP99Ms === undefined ? {} : { rtP99Ms: Number(m.rtP99Ms.toFixed(1)) }),
    })),
    repeats: { ...report.repeats, duplicateOrders: duplicates },
    consistent,
    errorSamples: report.errorSamples,
    ...(drillReport === undefined ? {} : { drill: drillReport }),
    ...(scaleReport === undefined ? {} : { scale: scaleReport }),
    ...(planApplied === undefined
      ? {}
      : { plan: { applied: planApplied, rolledBack: planRolledBack } }),
    coupons: {
      sale: report.coupon,
      payments: report.payments,
      books: couponBooks,
      txn: couponTxn,
      consistent: couponsBalance,
    },
    deaths: chain.deaths,
    ...(stress === undefined ? {} : { stress }),
  };
  if (values.json) {
    console.log(JSON.stringify(summary));
  } else {
    say('');
    say(`  item          attempts  placed  sold-out  blocked  errors`);
    say(row(HOT_SKU, report.hot));
    say(row(REGULAR_SKU, report.regular));
    say('');
    say(
      `  ${summary.attemptsPerSecond} attempts/s for ${summary.seconds}s; latency p50 ${summary.latencyMs.p50} ms, p99 ${summary.latencyMs.p99} ms`,
    );
    say(
      `  books: ${books.unitsDeducted} of ${settings.stock} units sold as ${books.orders} orders, ${books.left} left, oversold ${oversold}: ${consistent ? 'consistent' : 'INCONSISTENT'}`,
    );
    say(
      chain.stock.kind === 'redis'
        ? `  stock: deducted in Redis, written behind to PostgreSQL; both copies ${books.stockCopiesAgree ? 'agree (left + sold = initial on each side)' : 'DISAGREE'}`
        : '  stock: deducted by the PostgreSQL engine (same-item deductions batched into one statement)',
    );
    say(
      `  compensation: ${books.unitsCompensated} units released by compensation messages (orders that failed after deducting), ${compensated} by the sweep (outcome unknown to the order service)`,
    );
    say(
      `  events: ${books.pointsAwarded} of ${books.orders} "order placed" messages (transactional: committed with the order's shard write) consumed by the points service`,
    );
    for (const l of couponReportLines(report.coupon, couponBooks, couponTxn, couponsBalance))
      say(`  ${l}`);
    const r = report.repeats;
    say(
      `  request ids: ${r.doubleClicks} buys double-clicked (${r.sameOrder} answered one order twice, ${r.differentOrders} two), ${r.retried} retried after a 5xx; duplicate orders ${duplicates}: ${repeatsOk ? 'none' : 'DUPLICATES'}`,
    );
    say(
      `  guard: ${report.hot.blocked + report.regular.blocked} attempts refused fast with 429 (gateway: ${BUY_LIMITS.hotItemQps}/s for the hot item, ${BUY_LIMITS.routeQps}/s in all; inventory: ${BUY_LIMITS.deductConcurrency} deducts in flight per instance) instead of queueing past their deadline`,
    );
    say('');
    say(`  call graph (from traces: caller → callee, calls, p99):`);
    for (const e of topology.edges.filter((x) => !x.stress)) {
      say(
        `    ${e.caller.padEnd(14)} → ${e.callee.padEnd(22)} ${String(e.calls).padStart(6)}  p99 ${e.rtP99Ms.toFixed(1)} ms`,
      );
    }
    say('');
    say(
      "  per-second metrics pushed by every process (calls, blocked, errors, RT avg and p99 of every instance's calls):",
    );
    for (const m of summary.metrics.slice(0, 8)) {
      const p99 = m.rtP99Ms === undefined ? '' : `  p99 ${m.rtP99Ms.toFixed(1).padStart(7)} ms`;
      say(
        `    ${m.service.padEnd(15)} ${m.resource.padEnd(26)} ×${m.instances}  ${String(m.calls).padStart(6)} ${String(m.blocked).padStart(6)} ${String(m.errors).padStart(5)}  ${m.rtAvgMs.toFixed(1).padStart(7)} ms${p99}`,
      );
    }
    say('  SLA alerts during the sale:');
    for (const a of alerts) say(`    ${a.rule.padEnd(20)} ${alertLine(a)}`);
    if (traceId !== undefined) {
      say(
        `  one order's trace: ${topology.spans} spans; see it with  npx peak trace ${traceId} --server ${server.info.url}`,
      );
    }
    for (const sample of report.errorSamples) say(`  error sample: ${sample}`);
    if (planRolledBack !== undefined) say(`  ${planLine(planRolledBack)}`);
    if (drillReport !== undefined) for (const l of formatDrillReport(drillReport)) say(`  ${l}`);
    if (scaleReport !== undefined) for (const l of scaleDemoLines(scaleReport)) say(`  ${l}`);
    for (const d of chain.deaths) say(`  ${deathLine(d).slice('shop: '.length)}`);
    if (stress !== undefined) {
      say('');
      for (const l of stressReportLines(stress, settings['stress-rate'])) say(`  ${l}`);
    }
  }

  if (values.exit || smoke) {
    const clean = await chain.stop();
    const isolated = stress === undefined || stressPassed(stress);
    say(
      `${smoke ? 'smoke run' : 'run'}: ${consistent ? 'consistent' : 'INCONSISTENT'}${stress === undefined ? '' : `, stress ${isolated ? 'isolated' : 'NOT ISOLATED'}`}, stopped ${clean ? 'cleanly' : 'with force'}`,
    );
    return consistent && isolated && clean ? 0 : 1;
  }
  say('');
  say(
    `The chain stays up: try  curl -s -XPOST ${gateway.url}/api/buy -H 'x-peak-api-key: ${chain.gatewayKey}' -d '{"userId":7,"sku":"${REGULAR_SKU}"}'`,
  );
  say(`                    or   npx peak rpc ls --server ${server.info.url}`);
  say('Stop with Ctrl-C.');
  // Ctrl-C (or SIGTERM) ends the process through shutdown(), which stops the chain.
  return new Promise<number>(() => undefined);
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`shop: error: ${errorMessage(err)}${isPeakError(err) ? ` [${err.code}]` : ''}`);
    process.exitCode = 1;
  },
);
