/**
 * `npm start -- --scale-demo`: elastic scaling and a gray release during the flash sale
 * (peakware/scale). A supervisor in the shop's process runs one more order instance and
 * one more inventory instance beside the chain's; a scaling policy on `shop.order` (QPS
 * per instance) scales the supervised order instances out during the sale and back in
 * after it; and a release of a deliberately slower inventory v2 (80 ms more per deduct) is
 * started with the sale, given 10 % of the supervised inventory traffic, and rolled back
 * by the analysis on its p99. What happened is read back from the decision history and
 * the release's log. The supervisor reports with app `shop.supervisor`'s credential
 * (`scale:shop.*`); each instance it starts gets its service's app credential
 * (`SHOP_APPS`) as PEAK_CREDENTIAL, as the chain's own processes do.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ReleaseView, ScaleDecision } from 'peakware/admin';
import type { Logger } from 'peakware/core';
import { Supervisor } from 'peakware/scale';
import { type Chain, SHOP_SUPERVISOR_APP } from './chain.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const APP = 'shop';

/** What the demo saw. */
export interface ScaleDemoReport {
  decisions: ScaleDecision[];
  release: ReleaseView | undefined;
}

/** The running demo. */
export interface ScaleDemo {
  /** Starts the inventory v2 release (call as the sale starts). */
  startRelease(): Promise<void>;
  /** Waits (bounded) for the release to end and the order service to scale back in, then stops the supervisor. */
  finish(): Promise<ScaleDemoReport>;
}

const node = (file: string) => `${process.execPath} ${path.join(here, 'services', file)}`;

async function until(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check().catch(() => false)) return true;
    await new Promise((r) => setTimeout(r, 500));
  }
  return false;
}

/** Stores the policy, starts the supervisor and waits for its instances to register. */
export async function startScaleDemo(chain: Chain, logger: Logger): Promise<ScaleDemo> {
  const admin = chain.admin;
  await admin.scale.setPolicy(
    APP,
    'shop.order',
    {
      metric: 'qps',
      target: 10,
      min: 1,
      max: 3,
      step: 2,
      cooldownMs: 3000,
      scaleDownWindowMs: 8000,
      windowMs: 5000,
    },
    'shop --scale-demo',
  );
  const env = (service: 'shop.order' | 'shop.inventory') => ({
    ...chain.serviceEnv,
    PEAK_CREDENTIAL: chain.server.credential(service),
  });
  const supervisor = new Supervisor({
    spec: {
      app: APP,
      cwd: here,
      services: [
        {
          name: 'shop.order',
          command: node('supervised-order-service.js'),
          instances: 1,
          version: 'v1',
          stopTimeoutMs: 15_000,
          env: env('shop.order'),
        },
        {
          name: 'shop.inventory',
          command: node('inventory-service.js'),
          instances: 1,
          version: 'v1',
          stopTimeoutMs: 15_000,
          env: env('shop.inventory'),
        },
      ],
    },
    stateDir: path.join(chain.server.info.dataDir, 'supervise'),
    servers: chain.server.info.url,
    token: chain.server.credential(SHOP_SUPERVISOR_APP),
    logger,
  });
  await supervisor.start();
  const registered = async () => {
    const ids = new Set((await admin.registry.instances()).map((i) => i.instanceId));
    return ids.has('shop.order-v1-1') && ids.has('shop.inventory-v1-1');
  };
  if (!(await until(registered, 60_000)))
    logger.warn('the supervised instances did not register within 60 s');
  const startedAt = Date.now();
  return {
    async startRelease() {
      await admin.scale.startRelease({
        app: APP,
        service: 'shop.inventory',
        version: 'v2-slow',
        command: node('inventory-v2-service.js'),
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
        return last === undefined || last.desired <= 1;
      }, 30_000);
      const decisions = (await admin.scale.history(APP, { service: 'shop.order' }))
        .filter((d) => Date.parse(d.at) >= startedAt - 1000)
        .reverse();
      await supervisor.stop();
      return {
        decisions,
        release: await admin.scale.release(APP, 'shop.inventory').catch(() => release),
      };
    },
  };
}

/** The report's lines about the demo. */
export function scaleDemoLines(r: ScaleDemoReport): string[] {
  const counts = [
    r.decisions[0]?.current ?? 1,
    ...r.decisions.filter((d) => d.action !== 'hold').map((d) => d.desired),
  ];
  const lines = [
    `scaling: supervised shop.order instances ${counts.join(' → ')} (peak scale history --app shop)`,
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
