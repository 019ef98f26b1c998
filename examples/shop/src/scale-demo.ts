/**
 * `npm start -- --scale-demo`: elastic scaling and a gray release during the flash sale
 * (peakware/scale), on the chain's own supervisor (chain.ts: app `shop`, one service per
 * role). A scaling policy on `shop.order` (QPS per instance) scales the chain's order
 * instances out during the sale (from the chain's count up to two more: a count change of
 * the supervisor) and back in after it; and a release of a deliberately slower inventory v2
 * (80 ms more per deduct) is started with the sale, runs as a gray version group of the
 * same supervisor, is given 10 % of the inventory traffic, and is rolled back by the
 * analysis on its RT. What happened is read back from the decision history and the
 * release's log.
 */
import type { ReleaseView, ScaleDecision } from 'peakware/admin';
import { type Chain, SHOP_SCALE_APP } from './chain.js';

const APP = SHOP_SCALE_APP;

/** What the demo saw. */
export interface ScaleDemoReport {
  /** The chain's order instances before the sale. */
  instances: number;
  decisions: ScaleDecision[];
  release: ReleaseView | undefined;
}

/** The running demo. */
export interface ScaleDemo {
  /** Starts the inventory v2 release (call as the sale starts). */
  startRelease(): Promise<void>;
  /** Waits (bounded) for the release to end and the order service to scale back in. */
  finish(): Promise<ScaleDemoReport>;
}

async function until(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check().catch(() => false)) return true;
    await new Promise((r) => setTimeout(r, 500));
  }
  return false;
}

/** Stores the policy on the chain's order service (its count, up to two more). */
export async function startScaleDemo(chain: Chain): Promise<ScaleDemo> {
  const admin = chain.admin;
  const min = chain.instances;
  await admin.scale.setPolicy(
    APP,
    'shop.order',
    {
      metric: 'qps',
      target: 10,
      min,
      max: min + 2,
      step: 2,
      cooldownMs: 3000,
      scaleDownWindowMs: 8000,
      windowMs: 5000,
    },
    'shop --scale-demo',
  );
  const startedAt = Date.now();
  return {
    async startRelease() {
      await admin.scale.startRelease({
        app: APP,
        service: 'shop.inventory',
        version: 'v2-slow',
        command: chain.serviceCommand('inventory-v2-service.js'),
        steps: [10, 50, 100],
        stepHoldMs: 5000,
        minSamples: 30,
        maxErrorRateIncrease: 0.02,
        author: 'shop --scale-demo',
      });
    },
    async finish() {
      await until(
        async () => (await admin.scale.release(APP, 'shop.inventory')).state !== 'running',
        60_000,
      );
      const release = await admin.scale.release(APP, 'shop.inventory').catch(() => undefined);
      if (release?.state === 'running' || release?.state === 'paused')
        await admin.scale.releaseAction(APP, 'shop.inventory', 'abort', {
          reason: 'the demo ended',
        });
      // The sale is over: the order service's figure drops and it scales in after the window.
      await until(async () => {
        const [last] = await admin.scale.history(APP, { service: 'shop.order', limit: 1 });
        return last === undefined || last.desired <= min;
      }, 30_000);
      const decisions = (await admin.scale.history(APP, { service: 'shop.order' }))
        .filter((d) => Date.parse(d.at) >= startedAt - 1000)
        .reverse();
      return {
        instances: min,
        decisions,
        release: await admin.scale.release(APP, 'shop.inventory').catch(() => release),
      };
    },
  };
}

/** The report's lines about the demo. */
export function scaleDemoLines(r: ScaleDemoReport): string[] {
  const counts = [
    r.decisions[0]?.current ?? r.instances,
    ...r.decisions.filter((d) => d.action !== 'hold').map((d) => d.desired),
  ];
  const lines = [
    `scaling: shop.order instances ${counts.join(' → ')} (peak scale history --app shop)`,
  ];
  for (const d of r.decisions.filter((x) => x.action === 'out' || x.action === 'in'))
    lines.push(
      `  ${d.at.slice(11, 19)}  ${d.action.toUpperCase()} ${d.current} → ${d.desired}  ${d.reason}`,
    );
  const rel = r.release;
  if (rel !== undefined)
    lines.push(
      `release: shop.inventory ${rel.fromVersion} → ${rel.version}: ${rel.state}${rel.outcome === null ? '' : ` (${rel.outcome})`} (peak release show shop.inventory --app shop)`,
    );
  return lines;
}
