/**
 * An instance for the scaling and release tests, run by `peak supervise`: hosts
 * `scaletest.echo` (answers its version and instance id; `--fail` makes every call fail,
 * `--slow-ms=N` delays each answer), registers as PEAK_INSTANCE_ID with weight PEAK_WEIGHT at
 * PEAK_SERVER, pushes per-second metrics of its calls under that instance id, burns CPU
 * while the file BURN_FILE exists, and stops gracefully on SIGTERM (deregister, drain).
 */
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { SlidingWindow } from '../src/core/sliding-window.js';
import { HttpRegistry } from '../src/registry/index.js';
import { defineService, RpcServer } from '../src/rpc/index.js';
import { MetricsPusher } from '../src/telemetry/index.js';

/** The service the scale tests call. */
export const echoService = defineService({
  name: 'scaletest.echo',
  version: '1.0.0',
  methods: {
    echo: {
      input: z.object({ n: z.number() }),
      output: z.object({ n: z.number(), version: z.string(), instance: z.string() }),
    },
  },
});

if (process.env.PEAK_SUPERVISED === '1') {
  const servers = process.env.PEAK_SERVER ?? 'http://127.0.0.1:7420';
  const instance = process.env.PEAK_INSTANCE_ID ?? `echo-${process.pid}`;
  const version = process.env.PEAK_VERSION ?? 'v1';
  const fail = process.argv.includes('--fail');
  const slowMs = Number(process.argv.find((a) => a.startsWith('--slow-ms='))?.slice(10) ?? 0);
  const burn = process.env.BURN_FILE;
  const registry = new HttpRegistry({ servers, leaseMs: 3000 });
  const pusher = new MetricsPusher({ servers, service: 'scaletest.echo', instance });
  const window = new SlidingWindow({ intervalMs: 1000, buckets: 2 });
  pusher.watchWindow('scaletest.echo.echo', window);
  const rpc = new RpcServer({
    registry,
    instanceId: instance,
    weight: Number(process.env.PEAK_WEIGHT ?? 100),
    drainTimeoutMs: 5000,
    filters: [
      async (_inv, next) => {
        const t = performance.now();
        window.addPass();
        try {
          const r = await next();
          window.addComplete(performance.now() - t, false);
          return r;
        } catch (err) {
          window.addComplete(performance.now() - t, true);
          throw err;
        }
      },
    ],
  });
  rpc.addService(echoService, {
    echo: async ({ n }) => {
      if (slowMs > 0) await sleep(slowMs);
      if (fail) throw new Error(`${version} is broken`);
      return { n, version, instance };
    },
  });
  await rpc.start();
  const burner = setInterval(() => {
    if (burn === undefined || !existsSync(burn)) return;
    const until = performance.now() + 80;
    while (performance.now() < until) {
      // busy: the CPU policy's load
    }
  }, 100);
  process.once('SIGTERM', () => {
    clearInterval(burner);
    rpc
      .stop()
      .then(() => pusher.close())
      .then(() => registry.close())
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  });
}
