/**
 * Elastic scaling end to end: how long from a load step until a new instance serves
 * calls, and how many calls fail while instances are added and removed.
 *
 * Processes: `peak server` (in this process, scaling evaluated every 500 ms), a
 * `Supervisor` (in this process, as `peak supervise` runs it) over an RPC echo service
 * (this file run as `--serve instance`: registers under the supervisor's instance id,
 * pushes per-second metrics, stops gracefully on SIGTERM), and callers here through an
 * `RpcClient`. The policy: QPS per instance, target 100, 1 to 2 instances, a 2 s window,
 * no cooldown, a 2 s scale-down window. Each run: 20 calls/s on one instance, then a step
 * to 8 callers in a closed loop (far past 100/s) until an instance that was not there
 * before answers, then 20 calls/s again until the service is back to one instance and the
 * other has exited. Reported per run: load step → decision, decision → the new instance's
 * first answer (the goal: ≤ 5 s), load step → serving, and failed calls during
 * scale-out and scale-in (goal: 0).
 *
 * Anchors, not run here: a Kubernetes HPA evaluates every 15 s (`--horizontal-pod-
 * autoscaler-sync-period`) on metrics scraped every 15-60 s, then a pod is scheduled,
 * pulled and started, and must pass its readiness probe; its default scale-down window is
 * 300 s.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdminClient } from 'peakware/admin';
import { SlidingWindow } from 'peakware/core';
import { HttpRegistry } from 'peakware/registry';
import { defineService, RpcClient, RpcServer } from 'peakware/rpc';
import { Supervisor } from 'peakware/scale';
import { PeakServer } from 'peakware/server';
import { MetricsPusher } from 'peakware/telemetry';
import { z } from 'zod';
import { type Benchmark, median, round } from '../bench.js';

const here = fileURLToPath(import.meta.url);
const APP = 'bench-scaling';
const SERVICE = 'bench.echo';
const echo = defineService({
  name: SERVICE,
  methods: {
    echo: { input: z.object({ n: z.number() }), output: z.object({ instance: z.string() }) },
  },
});

async function serveInstance(): Promise<void> {
  const servers = process.env.PEAK_SERVER!;
  const instance = process.env.PEAK_INSTANCE_ID!;
  const registry = new HttpRegistry({ servers, leaseMs: 3000 });
  const pusher = new MetricsPusher({ servers, service: SERVICE, instance });
  const window = new SlidingWindow({ intervalMs: 1000, buckets: 2 });
  pusher.watchWindow(`${SERVICE}.echo`, window);
  const rpc = new RpcServer({
    registry,
    instanceId: instance,
    weight: Number(process.env.PEAK_WEIGHT ?? 100),
    drainTimeoutMs: 5000,
    filters: [
      async (_inv, next) => {
        const t = performance.now();
        window.addPass();
        const r = await next();
        window.addComplete(performance.now() - t);
        return r;
      },
    ],
  });
  rpc.addService(echo, { echo: async () => ({ instance }) });
  await rpc.start();
  process.once('SIGTERM', () => {
    void rpc
      .stop()
      .then(() => pusher.close())
      .then(() => registry.close())
      .finally(() => process.exit(0));
  });
}

if (process.argv.includes('--serve')) await serveInstance();

interface RunFigures {
  stepToDecisionMs: number;
  decisionToServingMs: number;
  stepToServingMs: number;
  failedOut: number;
  failedIn: number;
  calls: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(
  what: string,
  check: () => Promise<boolean> | boolean,
  ms = 60_000,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`bench scaling: no ${what} within ${ms} ms`);
    await sleep(20);
  }
}

export const benchmark: Benchmark = {
  name: 'scaling',
  description:
    'load step → new instance serving, and failed calls during scale-out and scale-in (peak supervise + scaling policy)',
  async run({ runs, quick, progress }) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'peak-bench-scaling-'));
    const server = await PeakServer.start({
      dataDir: path.join(dir, 'data'),
      port: 0,
      scale: { intervalMs: 500 },
    });
    const admin = new AdminClient({
      servers: server.info.url,
      token: readFileSync(server.info.adminTokenFile, 'utf8').trim(),
    });
    // The supervisor, the instances it starts (they inherit the environment) and the caller
    // send the local app's credential (every SDK grant, scale included).
    process.env.PEAK_CREDENTIAL = server.credential();
    const supervisor = new Supervisor({
      spec: {
        app: APP,
        cwd: dir,
        services: [
          {
            name: SERVICE,
            command: `${process.execPath} ${here} --serve instance`,
            instances: 1,
            version: 'v1',
            stopTimeoutMs: 10_000,
            env: { PEAK_SERVER: server.info.url },
          },
        ],
      },
      stateDir: path.join(dir, 'state'),
      servers: server.info.url,
      reportEveryMs: 200,
      tickMs: 50,
    });
    const registry = new HttpRegistry({ servers: server.info.url });
    const client = new RpcClient({ registry, app: 'bench-caller', warmupMs: 0 });
    const caller = client.service(echo);
    const live = async () =>
      (await admin.scale.status(APP)).services.find((s) => s.service === SERVICE)?.instances ?? [];
    const results: RunFigures[] = [];
    try {
      await admin.scale.setPolicy(APP, SERVICE, {
        metric: 'qps',
        target: 100,
        min: 1,
        max: 2,
        step: 1,
        cooldownMs: 0,
        scaleDownWindowMs: 2000,
        windowMs: 2000,
      });
      await supervisor.start();
      await until('one instance serving', async () => {
        await caller.echo({ n: 0 }).catch(() => undefined);
        return (await live()).filter((i) => i.state === 'running').length === 1;
      });
      const total = quick ? 1 : runs;
      for (let run = 0; run < total; run++) {
        let failed = 0;
        let calls = 0;
        let mode: 'low' | 'high' | 'stop' = 'low';
        const seenBefore = new Set((await live()).map((i) => i.id));
        let newServedAt: number | undefined;
        const one = async () => {
          try {
            const r = await caller.echo({ n: calls });
            calls++;
            if (newServedAt === undefined && !seenBefore.has(r.instance) && mode === 'high')
              newServedAt = Date.now();
          } catch {
            failed++;
          }
        };
        const loops = Array.from({ length: 8 }, async (_, c) => {
          for (let i = 0; i < 1_000_000 && mode !== 'stop'; i++) {
            if (mode === 'low') {
              if (c === 0) await one();
              await sleep(50);
            } else await one();
          }
        });
        // 20 calls/s until the policy's window has seen it, then the step.
        await sleep(3000);
        const lastBefore =
          (await admin.scale.history(APP, { service: SERVICE, limit: 1 }))[0]?.id ?? 0;
        const stepAt = Date.now();
        const failedBefore = failed;
        mode = 'high';
        await until('a new instance answering', () => newServedAt !== undefined);
        const failedOut = failed - failedBefore;
        mode = 'low';
        const out = (await admin.scale.history(APP, { service: SERVICE, limit: 10 })).find(
          (d) => d.id > lastBefore && d.action === 'out',
        );
        const decisionAt = out === undefined ? stepAt : Date.parse(out.at);
        const failedAtIn = failed;
        await until('the service back to one instance', async () => (await live()).length === 1);
        const failedIn = failed - failedAtIn;
        mode = 'stop';
        await Promise.all(loops);
        const r: RunFigures = {
          stepToDecisionMs: decisionAt - stepAt,
          decisionToServingMs: newServedAt! - decisionAt,
          stepToServingMs: newServedAt! - stepAt,
          failedOut,
          failedIn,
          calls,
        };
        results.push(r);
        progress(
          `run ${run + 1}: step → decision ${r.stepToDecisionMs} ms, decision → serving ${r.decisionToServingMs} ms, failed ${r.failedOut} out / ${r.failedIn} in of ${r.calls} calls`,
        );
      }
    } finally {
      await supervisor.stop();
      await client.close();
      await registry.close();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
    const m = (k: keyof RunFigures) => median(results.map((r) => r[k]));
    const sum = (k: keyof RunFigures) => results.reduce((s, r) => s + r[k], 0);
    const figures = {
      'peakware.stepToDecisionMs': m('stepToDecisionMs'),
      'peakware.decisionToServingMs': m('decisionToServingMs'),
      'peakware.stepToServingMs': m('stepToServingMs'),
      'peakware.failedScaleOut': sum('failedOut'),
      'peakware.failedScaleIn': sum('failedIn'),
      'peakware.calls': sum('calls'),
    };
    return {
      figures,
      ratios: { 'peakware.decisionToServing/goal5s': round(m('decisionToServingMs') / 5000) },
      table: [
        [
          'run',
          'step → decision ms',
          'decision → serving ms',
          'step → serving ms',
          'failed out',
          'failed in',
          'calls',
        ],
        ...results.map((r, i) => [
          i + 1,
          r.stepToDecisionMs,
          r.decisionToServingMs,
          r.stepToServingMs,
          r.failedOut,
          r.failedIn,
          r.calls,
        ]),
        [
          'median/sum',
          figures['peakware.stepToDecisionMs'],
          figures['peakware.decisionToServingMs'],
          figures['peakware.stepToServingMs'],
          figures['peakware.failedScaleOut'],
          figures['peakware.failedScaleIn'],
          figures['peakware.calls'],
        ],
      ],
      notes: [
        'scaling evaluated every 500 ms; QPS policy: target 100 per instance, 2 s window, no cooldown, 2 s scale-down window',
        'decision → serving covers the supervisor taking its order (reports every 200 ms), node start, registration and the push to the consumer',
      ],
    };
  },
};
