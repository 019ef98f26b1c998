/**
 * The shop's fault drill and promotion plan (`npm start -- --drill --plan`).
 *
 * - Service processes started with SHOP_DRILL=1 run a `peakware/drill` agent
 *   ({@link startDrillAgent}): faults reach them through the config center (app `shop`) and
 *   revert on their own (expiry, stop, control plane lost, restart).
 * - The drill ({@link runShopDrill}) runs beside the sale: one inventory instance answers
 *   150 ms late, and 20 % of one order instance's order writes fail on its shard. The
 *   order service's least-active balancer moves deductions to the fast inventory instance;
 *   a failed write leaves a deduction without an order, which the compensation sweep
 *   releases, so the books still balance. Steady-state checks: the order service's error
 *   rate and "no unit oversold"; the first broken one reverts every fault at once.
 * - The "flash-sale" plan ({@link FLASH_SALE_PLAN}) is scheduled for the sale's opening
 *   (applied by the control plane on time) and rolled
 *   back after it: tighter guard rules, the points consumer paused (its events wait in the
 *   queue and are consumed after the rollback), local product cache on with writes frozen,
 *   refunds closed.
 */
import type { AdminClient, PlanRun } from 'peakware/admin';
import { ConfigClient } from 'peakware/config';
import {
  DrillAgent,
  type DrillPorts,
  type DrillReport,
  type DrillSpec,
  formatDrillReport,
  type PlanSpec,
  rpcFaultFilter,
  runDrill,
} from 'peakware/drill';
import type { RpcServer } from 'peakware/rpc';
import { POINTS_GROUP } from './catalog.js';
import type { ChainProcess } from './chain.js';
import { flashSaleRules } from './edge.js';

/** The config app the drill and the plan work in. */
export const DRILL_APP = 'shop';

/**
 * In a service process with SHOP_DRILL=1: a drill agent for this instance, with its RPC
 * provider filter installed; undefined otherwise. Call `close` on stop.
 */
export async function startDrillAgent(rt: {
  service: string;
  controlPlane: string | readonly string[];
  rpc: RpcServer;
}): Promise<{ agent: DrillAgent; close: () => Promise<void> } | undefined> {
  if (process.env.SHOP_DRILL !== '1') return undefined;
  const config = new ConfigClient({
    servers: rt.controlPlane,
    app: DRILL_APP,
    instanceId: rt.rpc.instanceId,
  });
  await config.start();
  const agent = new DrillAgent({
    config,
    app: DRILL_APP,
    instanceId: rt.rpc.instanceId,
    service: rt.service,
    servers: rt.controlPlane,
  }).start();
  rt.rpc.use(rpcFaultFilter(agent, 'provider'));
  return {
    agent,
    close: async () => {
      await agent.close();
      await config.close();
    },
  };
}

/** The promotion plan: applied before the sale, rolled back after. */
export function flashSalePlan(hotSku: string): PlanSpec {
  const rules = flashSaleRules(hotSku);
  // Tighter than the everyday sale limits: 80 % of the route's QPS.
  const tighter = {
    ...rules,
    flow: (rules.flow ?? []).map((r) => ({ ...r, count: Math.round(r.count * 0.8) })),
  };
  return {
    name: 'flash-sale',
    app: DRILL_APP,
    description: 'promotion mode: tighter guard rules, points paused, local cache, refunds closed',
    changes: [
      { kind: 'guard-rules', rules: tighter },
      { kind: 'mq-pause', group: POINTS_GROUP, paused: true },
      {
        kind: 'cache',
        cache: 'products',
        settings: { l1Enabled: true, l1TtlMs: 60_000, freezeWrites: true },
      },
      { kind: 'entry', entry: 'refunds', open: false },
    ],
  };
}

/**
 * Stores the plan and schedules its apply for the sale's opening, a moment ahead, as an
 * operator sets a promotion plan for 20:00 the day before; the control plane applies it on
 * time (one node of however many), and this waits for that run, which names every item's
 * versions.
 */
export async function applyFlashSalePlan(
  admin: AdminClient,
  hotSku: string,
  opensInMs = 1500,
): Promise<PlanRun> {
  await admin.drill.putPlan(flashSalePlan(hotSku), 'shop');
  const [scheduled] = await admin.drill.schedule('flash-sale', {
    at: Date.now() + opensInMs,
    author: 'shop',
    comment: 'the sale opens',
  });
  const deadline = Date.now() + opensInMs + 30_000;
  for (;;) {
    const sc = (await admin.drill.schedules({ plan: 'flash-sale', all: true })).find(
      (x) => x.id === scheduled!.id,
    );
    if (sc?.state === 'done') {
      const run = (await admin.drill.plan('flash-sale')).runs.find((r) => r.id === sc.runId);
      if (run !== undefined) return run;
    }
    if (sc?.state === 'failed' || sc?.state === 'cancelled')
      throw new Error(`the scheduled apply of plan flash-sale ${sc.state}: ${sc.error ?? ''}`);
    if (Date.now() > deadline)
      throw new Error(
        `the scheduled apply of plan flash-sale (schedule ${scheduled!.id}, due ${scheduled!.at}) did not run within 30 s of its time`,
      );
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Rolls the plan back to the exact versions before it. */
export function rollbackFlashSalePlan(admin: AdminClient): Promise<PlanRun> {
  return admin.drill.rollback('flash-sale', { author: 'shop', comment: 'after the sale' });
}

/** One line per item of a plan run. */
export function planLine(run: PlanRun): string {
  const item = (i: PlanRun['items'][number]) =>
    run.action === 'apply'
      ? `${i.group}/${i.key} v${i.before ?? `${i.baseline} (new)`} → v${i.after}`
      : `${i.group}/${i.key} back to v${i.before ?? i.baseline} (as v${i.after})`;
  const by = run.actor.endsWith('(scheduled)')
    ? `, on schedule by ${run.source.replace(/^schedule \d+ on /, 'node ')}`
    : '';
  return `plan flash-sale ${run.action} (run ${run.id}${by}): ${run.items.map(item).join(', ')}`;
}

/** The drill of the shop, aimed at the first inventory and the first order process. */
export function shopDrillSpec(processes: readonly ChainProcess[], holdMs: number): DrillSpec {
  const first = (role: string) => {
    const p = processes.find((x) => x.role === role && typeof x.ready.instanceId === 'string');
    if (p === undefined) throw new Error(`the drill needs a running ${role} process`);
    return p.ready.instanceId as string;
  };
  const durationMs = holdMs + 10_000;
  return {
    name: 'sale-faults',
    app: DRILL_APP,
    checks: [
      { kind: 'error-rate', service: 'shop.order', max: 0.5, seconds: 3 },
      { kind: 'custom', name: 'no unit oversold' },
    ],
    steps: [
      {
        name: 'slow inventory, failing order writes',
        holdMs,
        faults: [
          {
            kind: 'delay',
            delayMs: 150,
            point: 'rpc-server',
            match: { service: 'shop.inventory' },
            scope: { instances: [first('inventory')] },
            durationMs,
          },
          {
            kind: 'error',
            code: 'PEAK_DB_UNREACHABLE',
            point: 'sql',
            match: { statement: 'INSERT INTO orders', writesOnly: true },
            scope: { instances: [first('order')], percent: 20 },
            durationMs,
          },
        ],
      },
    ],
    checkEveryMs: 1000,
    recoverMs: 15_000,
  };
}

/** The drill runner's ports over the admin client; `oversold` is the custom check. */
export function shopDrillPorts(admin: AdminClient, oversold: () => Promise<number>): DrillPorts {
  return {
    inject: (app, faults) => admin.drill.inject(app, faults, 'shop drill'),
    stop: (app, drill) => admin.drill.stop(app, { drill, author: 'shop drill' }),
    async metrics(service, resource, seconds) {
      const live = await admin.telemetry.liveMetrics({ service, seconds });
      const mine = live.resources.filter((r) => r.service === service);
      // A service's total is its inbound node when it reports one (every call it took).
      const inbound = mine.filter((r) => r.resource === '__inbound__');
      const rows =
        resource !== undefined
          ? mine.filter((r) => r.resource === resource)
          : inbound.length > 0
            ? inbound
            : mine;
      const qps = rows.reduce((s, r) => s + r.qps, 0);
      const errors = rows.reduce((s, r) => s + r.errorQps, 0);
      const p99 = rows.map((r) => r.rtP99Ms).filter((v): v is number => v !== undefined);
      return {
        qps,
        errorRate: qps > 0 ? errors / qps : 0,
        ...(p99.length === 0 ? {} : { p99Ms: Math.max(...p99) }),
      };
    },
    async custom() {
      const n = await oversold();
      return { ok: n === 0, detail: `${n} unit(s) oversold` };
    },
    async alerts(sinceMs) {
      const events = await admin.alerts.events({ limit: 200 });
      return events
        .filter((e) => Date.parse(e.at) >= sinceMs)
        .map((e) => `${e.rule} ${e.state} (${e.value})`);
    },
    clock: Date.now,
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  };
}

/** Runs the shop drill; resolves with its report. */
export function runShopDrill(
  admin: AdminClient,
  processes: readonly ChainProcess[],
  holdMs: number,
  oversold: () => Promise<number>,
): Promise<DrillReport> {
  return runDrill(shopDrillSpec(processes, holdMs), shopDrillPorts(admin, oversold));
}

export { formatDrillReport };
