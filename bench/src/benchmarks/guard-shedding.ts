/**
 * What shedding does to latency under overload: an RPC service whose work goes through a
 * pool of 2 "connections" (20 ms each, like a database pool) is called by a consumer with
 * 24 calls in flight, over loopback, once behind the guard's provider-side filter (a
 * concurrency rule of 2: the excess is refused at once with PEAK_GUARD_BLOCKED) and once
 * with no guard (every call queues at the pool). Reported: the admitted calls' p50 and p99
 * with the guard, the p50 and p99 without, and how many calls the guard shed.
 *
 * The claim it backs (once a timed assertion in test/guard-rpc.test.ts): admitted calls
 * take about one work time, so the guarded p99 stays below the unguarded median, which
 * grows with the queue (24 / 2 × 20 ms, about 240 ms). The test keeps the part that needs
 * no clock: no admitted call ever waits for the pool.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Guard, guardRpcFilter } from 'peakware/guard';
import { InMemoryRegistry } from 'peakware/registry';
import { defineService, RpcClient, RpcServer } from 'peakware/rpc';
import { z } from 'zod';
import { type Benchmark, median, round } from '../bench.js';

const checkout = defineService({
  name: 'bench.checkout',
  version: '1.0.0',
  methods: {
    buy: { input: z.object({ sku: z.string() }), output: z.object({ ok: z.boolean() }) },
  },
});

const WORK_MS = 20;
const POOL = 2;
const INFLIGHT = 24;

/** A pool of `size` slots: callers past it wait in line. */
function pool(size: number) {
  let free = size;
  const waiting: (() => void)[] = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (free > 0) free--;
    else await new Promise<void>((r) => waiting.push(r));
    try {
      return await fn();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else free++;
    }
  };
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(s.length * q) - 1))] ?? Number.NaN;
}

/** Calls for `ms` with `inflight` at a time: latencies of admitted calls, count of refused. */
async function load(client: RpcClient, ms: number, inflight: number) {
  const svc = client.service(checkout);
  const latencies: number[] = [];
  let refused = 0;
  let next = 0;
  const until = performance.now() + ms;
  const worker = async () => {
    while (performance.now() < until) {
      next++;
      const t = performance.now();
      try {
        await svc.buy({ sku: `sku-${next % 10}` });
        latencies.push(performance.now() - t);
      } catch {
        refused++;
        await sleep(10);
      }
    }
  };
  await Promise.all(Array.from({ length: inflight }, worker));
  return { latencies, refused };
}

export const benchmark: Benchmark = {
  name: 'guard-shedding',
  description: `admitted-call latency under ${INFLIGHT} calls in flight to a ${POOL}-slot pool, with and without the guard's concurrency rule`,
  async run({ runs, quick, progress }) {
    const ms = quick ? 1000 : 2000;
    const registry = new InMemoryRegistry();
    const guard = new Guard({
      rules: { flow: [{ resource: 'bench.checkout.buy', grade: 'concurrency', count: POOL }] },
    });
    const servers: RpcServer[] = [];
    for (const [group, filters] of [
      ['guarded', [guardRpcFilter(guard)]],
      ['plain', []],
    ] as const) {
      const db = pool(POOL);
      const server = new RpcServer({ registry, group, filters: [...filters] });
      server.addService(checkout, {
        buy: () =>
          db(async () => {
            await sleep(WORK_MS);
            return { ok: true };
          }),
      });
      await server.start();
      servers.push(server);
    }
    const guarded = new RpcClient({ registry, app: 'bench', warmupMs: 0, group: 'guarded' });
    const plain = new RpcClient({ registry, app: 'bench', warmupMs: 0, group: 'plain' });
    const figures = {
      guardedP50: [] as number[],
      guardedP99: [] as number[],
      plainP50: [] as number[],
      plainP99: [] as number[],
      shedShare: [] as number[],
    };
    try {
      await load(guarded, 300, 2);
      await load(plain, 300, 2);
      for (let r = 0; r < runs; r++) {
        progress(`run ${r + 1}/${runs}`);
        const g = await load(guarded, ms, INFLIGHT);
        const p = await load(plain, ms, INFLIGHT);
        figures.guardedP50.push(quantile(g.latencies, 0.5));
        figures.guardedP99.push(quantile(g.latencies, 0.99));
        figures.plainP50.push(quantile(p.latencies, 0.5));
        figures.plainP99.push(quantile(p.latencies, 0.99));
        figures.shedShare.push(g.refused / (g.refused + g.latencies.length));
      }
    } finally {
      await guarded.close();
      await plain.close();
      for (const s of servers) await s.stop();
      guard.close();
    }
    const m = (xs: number[]) => median(xs);
    return {
      figures: {
        'guarded.admitted.p50Ms': round(m(figures.guardedP50)),
        'guarded.admitted.p99Ms': round(m(figures.guardedP99)),
        'unguarded.p50Ms': round(m(figures.plainP50)),
        'unguarded.p99Ms': round(m(figures.plainP99)),
        'guarded.shedShare': round(m(figures.shedShare)),
      },
      ratios: {
        'unguardedP50/guardedP99': round(m(figures.plainP50) / m(figures.guardedP99)),
        'unguardedP99/guardedP99': round(m(figures.plainP99) / m(figures.guardedP99)),
      },
      table: [
        ['calls', 'p50 ms (median)', 'p99 ms (median)'],
        [
          'admitted, guard (concurrency 2)',
          round(m(figures.guardedP50)),
          round(m(figures.guardedP99)),
        ],
        ['all, no guard', round(m(figures.plainP50)), round(m(figures.plainP99))],
      ],
      notes: [
        `${INFLIGHT} calls in flight for ${ms / 1000} s per side and run, work ${WORK_MS} ms in a ${POOL}-slot pool; medians of ${runs} runs.`,
        `The guard shed a median ${round(m(figures.shedShare) * 100)} % of the calls (refused at once; the caller backs off 10 ms).`,
        'unguardedP50/guardedP99 above 1: even the slowest admitted calls beat the typical unguarded call.',
      ],
    };
  },
};
