/**
 * The gateway's CPU per proxied request (issues 12 and 16): `peak gateway`'s own process
 * time (user + system, from /proc) over a fixed number of requests sent at a fixed rate
 * (open loop), for two routes:
 *
 * - `key`: the shop's buy route as `examples/shop/src/edge.ts` publishes it: the app key in
 *   `x-peak-api-key`, a JSON body, guard rules on the route (flow, a hot-parameter rule on
 *   `body.sku`, system protection), the status field mapped, an RPC target;
 * - `signed`: `bench gateway`'s route: HMAC-signed, the nonce claimed in Redis, a flow rule
 *   with the app as origin, the method's schema, an RPC target.
 *
 * Both against an echo-like provider in its own process, traces sampled at 5 % (the shop's
 * capacity runs). `GATEWAY_CPU_BASE=<dir>` adds a second gateway run from another build's
 * `dist` (e.g. a copy of the branch point's), loaded at the same time with its requests
 * interleaved, so a change is compared with what it replaces over the same seconds of a
 * shared machine (the ratio is the median of the runs' ratios). `GATEWAY_CPU_PROF=<dir>`
 * runs the (first) gateway under `node --cpu-prof` and leaves the profile in that dir;
 * `GATEWAY_CPU_NODE_ARGS` adds node flags to it (e.g. `--perf-basic-prof` for `perf`);
 * `GATEWAY_CPU_ROUTES=key` (or `signed`) measures one route; `GATEWAY_CPU_RATE` and
 * `GATEWAY_CPU_COUNT` set the rate per gateway (default 600/s) and requests per run (4 000).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { AdminClient } from 'peakware/admin';
import { redisServerAvailable, startRedisServer } from 'peakware/cache';
import { rpcRoute } from 'peakware/gateway';
import { HttpRegistry } from 'peakware/registry';
import { defineService, RpcServer } from 'peakware/rpc';
import { PeakServer } from 'peakware/server';
import { Pool } from 'undici';
import { z } from 'zod';
import { type Benchmark, median, round } from '../bench.js';
import { startChildServer } from '../child-server.js';
import { signedEcho } from '../gateway-echo.js';

/** User and system CPU time a process has used so far, µs, from /proc/<pid>/stat (Linux). */
function cpuTimes(pid: number | undefined): { user: number; sys: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of stat (utime, stime), in clock ticks (100 per second on Linux).
    return { user: Number(fields[11]) * 10_000, sys: Number(fields[12]) * 10_000 };
  } catch {
    return { user: Number.NaN, sys: Number.NaN };
  }
}

const shopLike = defineService({
  name: 'bench.gw-cpu',
  methods: {
    place: {
      input: z.object({ userId: z.number().int(), sku: z.string().max(64), qty: z.number().int() }),
      output: z.object({ status: z.string(), orderId: z.string() }),
    },
    echo: {
      input: z.object({ n: z.number().int(), s: z.string().max(64) }),
      output: z.object({ n: z.number(), s: z.string() }),
    },
  },
});

async function serve(): Promise<number> {
  const registry = new HttpRegistry({ servers: process.argv[4]!, token: process.argv[5]! });
  const server = new RpcServer({ registry, port: 0, maxInFlight: 100_000 });
  let n = 0;
  server.addService(shopLike, {
    place: () => ({ status: 'placed', orderId: `o${++n}` }),
    echo: (input) => input,
  });
  return (await server.start()).port;
}

type RouteKind = 'key' | 'signed';

interface GatewayProcess {
  label: string;
  child: ChildProcess;
  url: string;
  pool: Pool;
}

function startGateway(
  label: string,
  cli: string,
  args: string[],
  nodeArgs: string[],
): Promise<GatewayProcess> {
  const child = spawn(process.execPath, [...nodeArgs, cli, 'gateway', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`${label}: not ready in 30 s`)), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.includes('"event":"ready"'));
      if (line !== undefined && out !== '') {
        clearTimeout(t);
        const url = String((JSON.parse(line) as { url: string }).url);
        out = '';
        resolve({ label, child, url, pool: new Pool(url, { connections: 64, pipelining: 1 }) });
      }
    });
    child.once('exit', (code) => reject(new Error(`${label}: exited with ${code}`)));
  });
}

interface RunFigures {
  cpuUs: number;
  sysUs: number;
  p50: number;
  errors: number;
  firstError: string;
}

/**
 * Sends `count` requests to each gateway at `rate` per second each (open loop: a request
 * is sent on schedule whether or not earlier ones answered), the gateways' requests
 * interleaved, so every build is measured over the same seconds of a shared machine;
 * resolves with each gateway's CPU µs per request.
 */
async function atRate(
  gws: readonly GatewayProcess[],
  request: (i: number) => { path: string; headers: Record<string, string>; body: string },
  rate: number,
  count: number,
): Promise<RunFigures[]> {
  const latencies: number[][] = gws.map(() => []);
  const errors = gws.map(() => 0);
  const firstError = gws.map(() => '');
  const one = async (g: number, i: number) => {
    const r = request(i);
    const t = performance.now();
    try {
      const res = await gws[g]!.pool.request({ method: 'POST', ...r });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode} ${text.slice(0, 200)}`);
      latencies[g]!.push(performance.now() - t);
    } catch (err) {
      errors[g]!++;
      firstError[g] ||= String(err);
    }
  };
  const cpu0 = gws.map((gw) => cpuTimes(gw.child.pid));
  const started = performance.now();
  const inFlight: Promise<void>[] = [];
  const total = count * gws.length;
  for (let n = 0; n < total; n++) {
    const due = started + (n * 1000) / (rate * gws.length);
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    inFlight.push(one(n % gws.length, Math.floor(n / gws.length)));
  }
  await Promise.all(inFlight);
  return gws.map((gw, g) => {
    const cpu1 = cpuTimes(gw.child.pid);
    const sysUs = (cpu1.sys - cpu0[g]!.sys) / count;
    const cpuUs = (cpu1.user - cpu0[g]!.user) / count + sysUs;
    const l = latencies[g]!.sort((x, y) => x - y);
    return {
      cpuUs,
      sysUs,
      p50: l[l.length >> 1] ?? Number.NaN,
      errors: errors[g]!,
      firstError: firstError[g]!,
    };
  });
}

export const benchmark: Benchmark = {
  name: 'gateway-cpu',
  description:
    "peak gateway's own CPU µs per request at a fixed rate: the shop's key route and bench gateway's signed route, both HTTP -> RPC (GATEWAY_CPU_BASE=<dist dir> runs another build beside it, interleaved)",
  async run({ runs, quick, progress }) {
    const rate = Number(process.env.GATEWAY_CPU_RATE ?? 600);
    const count = quick ? 1000 : Number(process.env.GATEWAY_CPU_COUNT ?? 4000);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'peak-bench-gateway-cpu-'));
    const children: ChildProcess[] = [];
    const gateways: GatewayProcess[] = [];
    let server: PeakServer | undefined;
    let stopRedis: (() => Promise<void>) | undefined;
    try {
      server = await PeakServer.start({ dataDir: path.join(dir, 'peak'), port: 0 });
      const token = server.info.adminToken ?? '';
      const admin = new AdminClient({ servers: server.info.url, token });
      if (!redisServerAvailable())
        throw new Error('the gateway-cpu benchmark needs redis-server on PATH (nonces in Redis)');
      const redis = await startRedisServer({ dir: path.join(dir, 'redis') });
      stopRedis = () => redis.stop();
      const provider = await startChildServer(
        import.meta.url,
        ['provider', server.info.url, token],
        'provider',
      );
      children.push(provider.child);

      await admin.gateway.putRoute(
        rpcRoute(shopLike, 'place', {
          name: 'buy',
          api: 'buy',
          method: 'POST',
          path: '/api/buy',
          auth: 'key',
          timeoutMs: 2000,
          maxBodyBytes: 16 * 1024,
          resource: 'POST /api/buy',
          guardArgs: ['body.sku'],
          statusField: 'status',
          statuses: { 'sold-out': 409 },
        }),
      );
      await admin.gateway.putRoute(
        rpcRoute(shopLike, 'echo', { name: 'echo', api: 'echo', method: 'POST', path: '/echo' }),
      );
      await admin.gateway.putApp({ name: 'bench-app' });
      const key = await admin.gateway.createKey('bench-app');
      for (const api of ['buy', 'echo']) {
        await admin.gateway.requestSubscription('bench-app', api);
        await admin.gateway.approve('bench-app', api, { quota: { perDay: 1_000_000_000 } });
      }
      await admin.config.publish(
        { app: 'gateway', group: 'governance', key: 'guard-rules' },
        {
          value: JSON.stringify({
            flow: [
              { resource: 'POST /api/buy', count: 1_000_000 },
              { resource: 'POST /echo', limitApp: 'bench-app', count: 1_000_000 },
            ],
            param: [
              {
                resource: 'POST /api/buy',
                paramIndex: 0,
                count: 1_000_000,
                items: [{ value: 'HOT', count: 1_000_000 }],
              },
            ],
            system: [{ maxConcurrency: 100_000 }],
          }),
          format: 'json',
          schema: { $peak: 'guard-rules' },
          author: 'bench',
        },
      );

      const here = path.dirname(createRequire(import.meta.url).resolve('peakware/package.json'));
      const builds: [string, string][] = [['this build', path.join(here, 'dist')]];
      const base = process.env.GATEWAY_CPU_BASE;
      if (base !== undefined && base !== '') builds.push(['base', base]);
      const prof = process.env.GATEWAY_CPU_PROF;
      for (const [label, dist] of builds) {
        const args = [
          '--port',
          '0',
          '--server',
          server.info.url,
          '--data',
          path.join(dir, 'peak'),
          '--redis',
          redis.url,
          '--sample',
          '0.05',
          '--log-level',
          'warn',
          '--json',
        ];
        const nodeArgs =
          label !== 'this build'
            ? []
            : [
                ...(prof === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', prof]),
                ...(process.env.GATEWAY_CPU_NODE_ARGS ?? '').split(' ').filter((a) => a !== ''),
              ];
        const gw = await startGateway(label, path.join(dist, 'src/cli/main.js'), args, nodeArgs);
        gateways.push(gw);
        children.push(gw.child);
      }

      const apiKey = `${key.id}.${key.secret}`;
      const json = { 'content-type': 'application/json' };
      const requests: Record<
        RouteKind,
        (i: number) => { path: string; headers: Record<string, string>; body: string }
      > = {
        key: (i) => ({
          path: '/api/buy',
          headers: { ...json, 'x-peak-api-key': apiKey },
          body: `{"userId":${i},"sku":"${i % 10 === 0 ? 'HOT' : `S${i % 50}`}","qty":1}`,
        }),
        signed: (i) => ({ path: '/echo', ...signedEcho(i, key) }),
      };
      const kinds = (['key', 'signed'] as const).filter((k) =>
        (process.env.GATEWAY_CPU_ROUTES ?? 'key,signed').split(',').includes(k),
      );
      for (const k of kinds) {
        // JIT, connections, leases
        const w = await atRate(gateways, requests[k], rate, quick ? 300 : 1500);
        for (const [g, f] of w.entries())
          if (f.errors > 0)
            throw new Error(
              `${gateways[g]!.label} ${k}: ${f.errors} errors in the warm-up: ${f.firstError}`,
            );
      }
      const cpu: Record<string, number[]> = {};
      const sys: Record<string, number[]> = {};
      const p50: Record<string, number[]> = {};
      let errors = 0;
      const paired: Record<string, number[]> = {};
      for (let r = 0; r < runs; r++) {
        for (const k of kinds) {
          const ms = await atRate(gateways, requests[k], rate, count);
          for (const [g, m] of ms.entries()) {
            const gw = gateways[g]!;
            const name = `${g === 0 ? 'gateway' : 'base'}.${k}`;
            const add = (to: Record<string, number[]>, v: number) => {
              to[name] = [...(to[name] ?? []), v];
            };
            add(cpu, m.cpuUs);
            add(sys, m.sysUs);
            add(p50, m.p50);
            errors += m.errors;
            progress(
              `${gw.label} ${k} run ${r + 1}: ${m.cpuUs.toFixed(1)} µs CPU/req (${m.sysUs.toFixed(1)} system), p50 ${m.p50.toFixed(3)} ms, ${m.errors} errors${m.errors > 0 ? ` (${m.firstError})` : ''}; load ${os.loadavg()[0]!.toFixed(1)}`,
            );
          }
          if (ms.length === 2) paired[k] = [...(paired[k] ?? []), ms[0]!.cpuUs / ms[1]!.cpuUs];
        }
      }
      const figures: Record<string, number> = {};
      const table: (string | number)[][] = [
        ['gateway', 'route', 'CPU µs/req (median)', 'of it system', 'all runs', 'p50 ms'],
      ];
      for (const [name, v] of Object.entries(cpu)) {
        figures[`${name}.cpuUs`] = round(median(v));
        figures[`${name}.sysUs`] = round(median(sys[name]!));
        figures[`${name}.p50Ms`] = round(median(p50[name]!));
        const [who, k] = name.split('.');
        table.push([
          who!,
          k!,
          round(median(v)),
          round(median(sys[name]!)),
          v.map((x) => Math.round(x)).join(', '),
          round(median(p50[name]!)),
        ]);
      }
      const ratios: Record<string, number> = {};
      for (const k of kinds)
        if (cpu[`base.${k}`] !== undefined)
          // The median of each run's ratio: both builds measured over the same seconds.
          ratios[`gateway/base.${k}.cpuUs`] = round(median(paired[k] ?? []));
      figures.errors = errors;
      return {
        figures,
        ratios,
        table,
        notes: [
          `open loop at ${rate} req/s, ${count} requests a run per route and build; CPU of the gateway process alone (/proc utime + stime, 10 ms ticks); load average at the end ${os
            .loadavg()
            .map((l) => l.toFixed(1))
            .join(' ')}`,
        ],
      };
    } finally {
      for (const gw of gateways) await gw.pool.close().catch(() => undefined);
      for (const c of children) c.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 1500));
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      await stopRedis?.().catch(() => undefined);
      await server?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

if (process.argv[2] === '--serve') {
  const port = await serve();
  process.stdout.write(`${port}\n`);
}
