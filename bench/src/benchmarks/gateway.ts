/**
 * The open API gateway: HTTP → RPC echo through `peak gateway` with every check on (a
 * signed request: key, timestamp, nonce claimed in Redis, HMAC-SHA256 over the canonical
 * request; an approved subscription; the app's quota from a lease; a guard flow rule with
 * the app as origin; the method's schema), against
 *
 * - direct: the same method over the provider's own HTTP/JSON port (`POST /rpc/...`), no hop;
 * - @fastify/http-proxy: a plain reverse proxy to that port, no auth (fastify 5, undici);
 * - nginx: the Debian package as a plain reverse proxy to that port (one process: no master,
 *   so its CPU is measured where it serves; upstream keep-alive), the physical anchor;
 *   installed with apt-get when missing.
 *
 * Each contender is its own process; the load (an undici Pool, closed loop) runs here, and
 * signs the gateway's requests before each timed window (the client's work, which a client
 * does on its own machine; its cost per request is reported beside). Then every contender
 * again under wrk (C, one thread, 64 connections; `wrk-load.ts`), whose CPU a request is a
 * third of the Node load's, on the same two cores. One
 * run reports req/s and p50/p99 with 64 in flight, the added latency with one in flight
 * (p50 minus direct's), and how long a route change among 10 000 routes takes from the
 * admin's call until the gateway serves it. Run as `--serve <kind> <port>`, this file is a
 * proxy or provider process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
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
import { childNodeArgs, processCpuUs, startChildServer } from '../child-server.js';
import { type Call, measureClosedLoop as measure } from '../closed-loop.js';
import { debianTool } from '../debian-tool.js';
import { signedEcho } from '../gateway-echo.js';
import { runWrk, type WrkRequest } from '../wrk-load.js';

const echoService = defineService({
  name: 'bench.gw-echo',
  methods: {
    echo: {
      input: z.object({ n: z.number().int(), s: z.string().max(64) }),
      output: z.object({ n: z.number(), s: z.string() }),
    },
  },
});
const UPSTREAM_PATH = `/rpc/${echoService.name}/echo`;

type Kind = 'direct' | 'gateway' | 'gateway-node-http' | 'fastify-proxy' | 'nginx';
const LABEL: Record<Kind, string> = {
  direct: 'direct (provider HTTP/JSON)',
  gateway: 'peak gateway (all checks)',
  'gateway-node-http': 'peak gateway, node:http only (all checks)',
  'fastify-proxy': '@fastify/http-proxy',
  nginx: 'nginx',
};

async function serve(kind: string, extra: string[]): Promise<number> {
  if (kind === 'provider') {
    const registry = new HttpRegistry({ servers: extra[0]!, token: extra[1]! });
    const server = new RpcServer({ registry, port: 0, httpPort: 0, maxInFlight: 100_000 });
    server.addService(echoService, { echo: (input) => input });
    const { httpPort } = await server.start();
    return httpPort!;
  }
  // @fastify/http-proxy in front of the provider's HTTP port.
  const { default: Fastify } = await import('fastify');
  const { default: proxy } = await import('@fastify/http-proxy');
  const app = Fastify({ logger: false });
  await app.register(proxy, {
    upstream: `http://127.0.0.1:${extra[0]}`,
    prefix: '/echo',
    rewritePrefix: UPSTREAM_PATH,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  return (app.server.address() as AddressInfo).port;
}

async function freePort(): Promise<number> {
  const net = await import('node:net');
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function startNginx(
  bin: string,
  upstreamPort: number,
  dir: string,
): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const conf = path.join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `worker_processes 1;
master_process off;
daemon off;
pid ${dir}/nginx.pid;
error_log stderr error;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  upstream provider { server 127.0.0.1:${upstreamPort}; keepalive 128; }
  server {
    listen 127.0.0.1:${port};
    location = /echo {
      proxy_pass http://provider${UPSTREAM_PATH};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`,
  );
  const child = spawn(bin, ['-c', conf, '-p', dir, '-e', 'stderr'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (let i = 0; i < 100; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/echo`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"n":1,"s":"x"}',
      });
      await res.arrayBuffer();
      if (res.ok) return { child, port };
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error('nginx did not answer in 5 s');
}

interface Caller {
  call: Call;
  /**
   * Gateway only: signs `count` requests ahead (each with its own nonce and timestamp), so
   * the timed window holds the gateway's work and not the client's; returns the signing
   * cost, µs a request. A window that outruns them signs the rest as it goes.
   */
  presign?(count: number): number;
  /** Requests the timed windows had to sign themselves (none when presign kept ahead). */
  signedInWindow(): number;
  close(): Promise<void>;
}

function caller(url: string, kind: Kind, key: { id: string; secret: string }): Caller {
  const pool = new Pool(url, { connections: 64, pipelining: 1 });
  const reqPath = kind === 'direct' ? UPSTREAM_PATH : '/echo';
  const json = { 'content-type': 'application/json' };
  const signed = (n: number) => signedEcho(n, key);
  let ready: { body: string; headers: Record<string, string> }[] = [];
  let next = 0;
  let inWindow = 0;
  let seq = 0;
  const signs = kind === 'gateway' || kind === 'gateway-node-http';
  return {
    call: async (n) => {
      let req: { body: string; headers: Record<string, string> };
      if (!signs) req = { body: `{"n":${n},"s":"hello"}`, headers: json };
      else if (next < ready.length) req = ready[next++]!;
      else {
        inWindow++;
        req = signed(seq++);
      }
      const res = await pool.request({ path: reqPath, method: 'POST', ...req });
      const text = await res.body.text();
      if (res.statusCode !== 200)
        throw new Error(`${kind}: HTTP ${res.statusCode} ${text.slice(0, 200)}`);
    },
    ...(signs
      ? {
          presign: (count: number) => {
            const t0 = performance.now();
            ready = Array.from({ length: count }, () => signed(seq++));
            next = 0;
            return ((performance.now() - t0) * 1000) / count;
          },
        }
      : {}),
    signedInWindow: () => inWindow,
    close: () => pool.close(),
  };
}

export const benchmark: Benchmark = {
  name: 'gateway',
  description:
    'HTTP -> RPC echo through peak gateway (signature, nonce in Redis, subscription, quota, guard rule, schema) vs the method direct, @fastify/http-proxy and nginx; 64 in flight, added latency at 1 in flight, route change among 10 000 routes',
  async run({ runs, quick, progress }) {
    const ms = quick ? 1000 : 3000;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'peak-bench-gateway-'));
    const children: ChildProcess[] = [];
    const closers: (() => Promise<unknown>)[] = [];
    const notes: string[] = [];
    let server: PeakServer | undefined;
    try {
      server = await PeakServer.start({ dataDir: path.join(dir, 'peak'), port: 0 });
      const admin = new AdminClient({
        servers: server.info.url,
        token: server.info.adminToken ?? '',
      });
      if (!redisServerAvailable())
        throw new Error('the gateway benchmark needs redis-server on PATH (nonces in Redis)');
      const redis = await startRedisServer({ dir: path.join(dir, 'redis') });
      closers.push(() => redis.stop());

      const provider = await startChildServer(
        import.meta.url,
        ['provider', server.info.url, server.info.adminToken ?? ''],
        'provider',
      );
      children.push(provider.child);
      const upstreamPort = provider.port;

      // What the gateway serves: the route, an app with a key, its approved subscription
      // with a quota, and a flow rule per app (guard) in the gateway's config app.
      await admin.gateway.putRoute(
        rpcRoute(echoService, 'echo', { name: 'echo', api: 'echo', method: 'POST', path: '/echo' }),
      );
      await admin.gateway.putApp({ name: 'bench-app' });
      const key = await admin.gateway.createKey('bench-app');
      await admin.gateway.requestSubscription('bench-app', 'echo');
      await admin.gateway.approve('bench-app', 'echo', { quota: { perDay: 1_000_000_000 } });
      await admin.config.publish(
        { app: 'gateway', group: 'governance', key: 'guard-rules' },
        {
          value: JSON.stringify({
            flow: [{ resource: 'POST /echo', limitApp: 'bench-app', count: 1_000_000 }],
          }),
          format: 'json',
          schema: { $peak: 'guard-rules' },
          author: 'bench',
        },
      );
      const peakBin = path.join(
        path.dirname(createRequire(import.meta.url).resolve('peakware/package.json')),
        'bin',
        'peak.js',
      );
      // The gateway as users run it, and once more with node:http serving every request
      // (`--node-http`), so the HTTP front's share shows in the same run.
      const startGateway = async (extra: string[]) => {
        const gw = spawn(
          process.execPath,
          [
            ...childNodeArgs(),
            peakBin,
            'gateway',
            '--port',
            '0',
            '--server',
            server!.info.url,
            '--data',
            path.join(dir, 'peak'),
            '--redis',
            redis.url,
            '--sample',
            '0.01',
            '--log-level',
            'warn',
            '--json',
            ...extra,
          ],
          { stdio: ['ignore', 'pipe', 'inherit'] },
        );
        children.push(gw);
        const url = await new Promise<string>((resolve, reject) => {
          let out = '';
          const t = setTimeout(() => reject(new Error('peak gateway not ready in 30 s')), 30_000);
          gw.stdout!.on('data', (d: Buffer) => {
            out += d.toString();
            const line = out.split('\n').find((l) => l.includes('"event":"ready"'));
            if (line !== undefined) {
              clearTimeout(t);
              resolve(String((JSON.parse(line) as { url: string }).url));
            }
          });
          gw.once('exit', (code) => reject(new Error(`peak gateway exited with ${code}`)));
        });
        return { url, pid: gw.pid };
      };
      const gateway = await startGateway([]);
      const gatewayNodeHttp = await startGateway([
        '--node-http',
        '--snapshot',
        path.join(dir, 'gw2.json'),
      ]);
      const gatewayUrl = gateway.url;

      const proxy = await startChildServer(
        import.meta.url,
        ['fastify-proxy', String(upstreamPort)],
        'fastify-proxy',
      );
      children.push(proxy.child);
      const urls: Partial<Record<Kind, { url: string; pid: number | undefined }>> = {
        direct: { url: `http://127.0.0.1:${upstreamPort}`, pid: provider.child.pid },
        gateway,
        'gateway-node-http': gatewayNodeHttp,
        'fastify-proxy': { url: `http://127.0.0.1:${proxy.port}`, pid: proxy.child.pid },
      };
      const nginx = debianTool('nginx', 'nginx', progress);
      if (nginx === undefined)
        notes.push(
          'nginx: not installed and could not be (apt-get needs root); its row is missing',
        );
      else {
        const n = await startNginx(nginx, upstreamPort, dir);
        children.push(n.child);
        urls.nginx = { url: `http://127.0.0.1:${n.port}`, pid: n.child.pid };
      }
      const kinds = (Object.keys(urls) as Kind[]).filter((k) => urls[k] !== undefined);
      // Every process a contender's requests go through (the load's aside): the chain's CPU.
      const chainPids = (k: Kind): (number | undefined)[] => {
        if (k === 'direct') return [provider.child.pid];
        if (k === 'gateway' || k === 'gateway-node-http')
          return [urls[k]!.pid, provider.child.pid, redis.pid];
        return [urls[k]!.pid, provider.child.pid];
      };
      const clients = new Map(kinds.map((k) => [k, caller(urls[k]!.url, k, key)]));
      for (const c of clients.values()) closers.push(() => c.close());

      const res: Record<
        string,
        {
          perSec: number[];
          p50: number[];
          p99: number[];
          p50one: number[];
          p99one: number[];
          cpuUs: number[];
          chainUs: number[];
          loadUs: number[];
          errors: number;
        }
      > = {};
      for (const k of kinds)
        res[k] = {
          perSec: [],
          p50: [],
          p99: [],
          p50one: [],
          p99one: [],
          cpuUs: [],
          chainUs: [],
          loadUs: [],
          errors: 0,
        };
      // Signing is the client's work (its own machine's, in use): the gateway's requests are
      // signed before each timed window, enough for the fastest rate seen here with room.
      const signUs: number[] = [];
      const presign = (k: Kind, windowMs: number, inFlight: number) => {
        const c = clients.get(k)!;
        if (c.presign !== undefined)
          signUs.push(c.presign(Math.ceil((windowMs / 1000) * (inFlight > 1 ? 20_000 : 8_000))));
      };
      for (const k of kinds) {
        presign(k, quick ? 300 : 1000, 64);
        const w = await measure(clients.get(k)!.call, 64, quick ? 300 : 1000); // warm-up: JIT, connections, leases
        if (w.errors > 0)
          throw new Error(`${LABEL[k]}: ${w.errors} errors in the warm-up, e.g. ${w.firstError}`);
      }
      for (let r = 0; r < runs; r++) {
        for (const k of kinds) {
          const pid = urls[k]!.pid;
          presign(k, ms, 64);
          const cpu0 = processCpuUs(pid);
          const chain = chainPids(k);
          const chain0 = chain.map(processCpuUs);
          const load0 = process.cpuUsage();
          const m = await measure(clients.get(k)!.call, 64, ms);
          // CPU of the contender's own process(es) per request (the provider's excluded, except for direct).
          const count = m.perSec * (ms / 1000);
          const cpuUs = (processCpuUs(pid) - cpu0) / count;
          const load = process.cpuUsage(load0);
          const loadUs = (load.user + load.system) / count;
          const chainUs =
            chain.reduce<number>((sum, p, i) => sum + processCpuUs(p) - (chain0[i] ?? 0), 0) /
            count;
          presign(k, quick ? 500 : 1000, 1);
          const one = await measure(clients.get(k)!.call, 1, quick ? 500 : 1000);
          res[k]!.perSec.push(m.perSec);
          res[k]!.p50.push(m.p50);
          res[k]!.p99.push(m.p99);
          res[k]!.p50one.push(one.p50);
          res[k]!.p99one.push(one.p99);
          res[k]!.cpuUs.push(cpuUs);
          res[k]!.chainUs.push(chainUs);
          res[k]!.loadUs.push(loadUs);
          res[k]!.errors += m.errors + one.errors;
          progress(
            `${LABEL[k]} run ${r + 1}: ${Math.round(m.perSec)} req/s, p50 ${m.p50.toFixed(2)} ms, p99 ${m.p99.toFixed(2)} ms; 1 in flight p50 ${one.p50.toFixed(3)} ms`,
          );
        }
      }

      // The same contenders under wrk (C, one thread): a Node load process takes about as much
      // CPU a request as the gateway itself, on the two cores the chain shares, which pulls
      // every ratio toward 1; wrk takes a fraction of it (its CPU a request is reported).
      const wrk = quick ? undefined : debianTool('wrk', 'wrk', progress);
      const wrkRes: Record<
        string,
        {
          perSec: number[];
          p50: number[];
          p99: number[];
          chainUs: number[];
          loadUs: number[];
          errors: number;
        }
      > = {};
      if (wrk === undefined && !quick)
        notes.push(
          'wrk: not installed and could not be (apt-get needs root); its rows are missing',
        );
      if (wrk !== undefined) {
        const wrkDir = path.join(dir, 'wrk');
        mkdirSync(wrkDir, { recursive: true });
        const fixed = (k: Kind): WrkRequest => ({
          method: 'POST',
          path: k === 'direct' ? UPSTREAM_PATH : '/echo',
          headers: { 'content-type': 'application/json' },
          body: '{"n":1,"s":"hello"}',
        });
        let seq = 1_000_000_000;
        for (const k of kinds)
          wrkRes[k] = { perSec: [], p50: [], p99: [], chainUs: [], loadUs: [], errors: 0 };
        for (let r = 0; r < runs; r++) {
          for (const k of kinds) {
            const signs = k === 'gateway' || k === 'gateway-node-http';
            // Each signed request is sent once: enough for three times the rate the Node load
            // reached (at least 20 000/s) over the window; a shortfall shows as errors.
            const rate = Math.max(20_000, 3 * median(res[k]!.perSec));
            const requests = signs
              ? Array.from({ length: Math.ceil((ms / 1000) * rate) }, () => ({
                  method: 'POST',
                  path: '/echo',
                  ...signedEcho(seq++, key),
                }))
              : fixed(k);
            const chain = chainPids(k);
            const chain0 = chain.map(processCpuUs);
            const m = await runWrk({
              wrk,
              url: urls[k]!.url,
              connections: 64,
              durationMs: ms,
              requests,
              dir: wrkDir,
            });
            const chainUs =
              chain.reduce<number>((sum, p, i) => sum + processCpuUs(p) - (chain0[i] ?? 0), 0) /
              m.requests;
            wrkRes[k]!.perSec.push(m.perSec);
            wrkRes[k]!.p50.push(m.p50);
            wrkRes[k]!.p99.push(m.p99);
            wrkRes[k]!.chainUs.push(chainUs);
            wrkRes[k]!.loadUs.push(m.loadUs);
            wrkRes[k]!.errors += m.errors;
            progress(
              `${LABEL[k]} run ${r + 1}, wrk: ${Math.round(m.perSec)} req/s, p50 ${m.p50.toFixed(2)} ms, p99 ${m.p99.toFixed(2)} ms, wrk ${m.loadUs.toFixed(1)} µs a request${m.errors > 0 ? `, ${m.errors} errors` : ''}`,
            );
          }
        }
      }

      // A route change among 10 000 routes: from the admin's call until the gateway serves it.
      progress('loading 10 000 routes');
      const many = Array.from({ length: 10_000 }, (_, i) =>
        rpcRoute(echoService, 'echo', {
          name: `r${i}`,
          api: 'echo',
          method: i % 2 === 0 ? 'POST' : 'PUT',
          path: `/svc${i % 100}/v${i % 7}/item${i}/:id`,
        }),
      );
      for (let i = 0; i < many.length; i += 1000)
        await admin.gateway.putRoutes(many.slice(i, i + 1000));
      const health = async () =>
        (await (await fetch(`${gatewayUrl}/_peak/health`)).json()) as { routes: number };
      for (let i = 0; i < 600 && (await health()).routes < 10_001; i++)
        await new Promise((r) => setTimeout(r, 50));
      const changeMs: number[] = [];
      // The admin call alone: the control plane's transaction on PostgreSQL, until it answers.
      const commitMs: number[] = [];
      // The gateway's own part: from the change's arrival to the route in force.
      const applyMs: number[] = [];
      const probe = new Pool(gatewayUrl, { connections: 1 });
      closers.push(() => probe.close());
      for (let c = 0; c < Math.max(3, runs); c++) {
        const name = `changed-${c}`;
        const t0 = performance.now();
        await admin.gateway.putRoute(
          rpcRoute(echoService, 'echo', {
            name,
            api: 'echo',
            method: 'POST',
            path: `/changed/${c}`,
            auth: 'none',
          }),
        );
        commitMs.push(performance.now() - t0);
        for (;;) {
          const r = await probe.request({
            path: `/changed/${c}`,
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: '{"n":1,"s":"c"}',
          });
          await r.body.text();
          if (r.statusCode === 200) break;
          if (performance.now() - t0 > 10_000)
            throw new Error('a route change was not served within 10 s');
        }
        changeMs.push(performance.now() - t0);
        applyMs.push(
          ((await (await fetch(`${gatewayUrl}/_peak/health`)).json()) as { lastApplyMs: number })
            .lastApplyMs,
        );
      }
      progress(
        `route change among 10 000 routes: applied in ${applyMs.join(', ')} ms; admin call answered in ${commitMs.map((m) => m.toFixed(1)).join(', ')} ms; admin call -> served ${changeMs.map((m) => m.toFixed(1)).join(', ')} ms`,
      );

      const fig = (k: Kind) => ({
        perSec: median(res[k]!.perSec),
        p50: median(res[k]!.p50),
        p99: median(res[k]!.p99),
        p50one: median(res[k]!.p50one),
        p99one: median(res[k]!.p99one),
        cpuUs: median(res[k]!.cpuUs),
        chainUs: median(res[k]!.chainUs),
        loadUs: median(res[k]!.loadUs),
      });
      const figures: Record<string, number> = {};
      const table: (string | number)[][] = [
        [
          'contender',
          'req/s (64 in flight)',
          'p50 ms',
          'p99 ms',
          'p50 ms (1 in flight)',
          'p99 ms (1 in flight)',
          'added p50 ms',
          'CPU µs/req (its process)',
          'CPU µs/req (chain)',
          'CPU µs/req (load)',
          'errors',
        ],
      ];
      const direct = fig('direct');
      for (const k of kinds) {
        const f = fig(k);
        for (const [name, v] of Object.entries(f)) figures[`${k}.${name}`] = round(v);
        figures[`${k}.addedP50Ms`] = round(f.p50one - direct.p50one);
        table.push([
          LABEL[k],
          Math.round(f.perSec),
          round(f.p50),
          round(f.p99),
          round(f.p50one),
          round(f.p99one),
          k === 'direct' ? '-' : round(f.p50one - direct.p50one),
          round(f.cpuUs),
          round(f.chainUs),
          round(f.loadUs),
          res[k]!.errors,
        ]);
      }
      for (const k of Object.keys(wrkRes) as Kind[]) {
        const w = wrkRes[k]!;
        const f = {
          perSec: median(w.perSec),
          p50: median(w.p50),
          p99: median(w.p99),
          chainUs: median(w.chainUs),
          loadUs: median(w.loadUs),
        };
        for (const [name, v] of Object.entries(f)) figures[`wrk.${k}.${name}`] = round(v);
        figures[`wrk.${k}.errors`] = w.errors;
        table.push([
          `${LABEL[k]}, wrk load`,
          Math.round(f.perSec),
          round(f.p50),
          round(f.p99),
          '',
          '',
          '',
          '',
          round(f.chainUs),
          round(f.loadUs),
          w.errors,
        ]);
      }
      figures['gateway.clientSignUsPerReq'] = round(median(signUs));
      figures['gateway.signedInWindow'] =
        clients.get('gateway')!.signedInWindow() +
        clients.get('gateway-node-http')!.signedInWindow();
      figures['routeChange.ms'] = round(median(changeMs));
      figures['routeChange.applyMs'] = round(median(applyMs));
      figures['routeChange.commitMs'] = round(median(commitMs));
      table.push([
        'route change among 10 000 routes (admin call -> served), median ms',
        round(median(changeMs)),
        '',
        '',
        '',
        '',
        '',
        '',
        '',
        '',
        '',
      ]);
      table.push([
        'route change among 10 000 routes: the admin call alone (control plane, PostgreSQL commit), median ms',
        round(median(commitMs)),
        '',
        '',
        '',
        '',
        '',
        '',
        '',
        '',
        '',
      ]);
      table.push([
        'route change among 10 000 routes: applied at the gateway (arrival -> in force), median ms',
        round(median(applyMs)),
        '',
        '',
        '',
        '',
        '',
        '',
        '',
        '',
        '',
      ]);
      const gwf = fig('gateway');
      const ratios: Record<string, number> = {
        'gateway/fastify-proxy.perSec': round(gwf.perSec / fig('fastify-proxy').perSec),
        'gateway/direct.perSec': round(gwf.perSec / direct.perSec),
        'gateway.addedP50Ms': round(gwf.p50one - direct.p50one),
        'gateway/gateway-node-http.perSec': round(gwf.perSec / fig('gateway-node-http').perSec),
        'gateway/gateway-node-http.cpuUs': round(gwf.cpuUs / fig('gateway-node-http').cpuUs),
      };
      if (urls.nginx !== undefined)
        ratios['gateway/nginx.perSec'] = round(gwf.perSec / fig('nginx').perSec);
      const wrkPerSec = (k: Kind) => median(wrkRes[k]?.perSec ?? []);
      if (wrkRes.gateway !== undefined) {
        ratios['wrk: gateway/fastify-proxy.perSec'] = round(
          wrkPerSec('gateway') / wrkPerSec('fastify-proxy'),
        );
        ratios['wrk: gateway/direct.perSec'] = round(wrkPerSec('gateway') / wrkPerSec('direct'));
        if (wrkRes.nginx !== undefined)
          ratios['wrk: gateway/nginx.perSec'] = round(wrkPerSec('gateway') / wrkPerSec('nginx'));
      }

      notes.push(
        'goals (issue 16): gateway >= 2x @fastify/http-proxy req/s with all checks on, added p50 <= 0.3 ms, >= 0.5x nginx, a route change among 10 000 routes <= 10 ms',
        'every process on one loopback host; the control plane runs in the benchmark process (idle but for quota leases and the change feed); trace sampling 1 % at the gateway',
        `the gateway's requests are signed by the load process before each timed window (its client's work, on the client's machine in use): ${round(median(signUs))} µs a request, median; ${figures['gateway.signedInWindow']} had to be signed inside a window`,
      );
      return { figures, ratios, table, notes };
    } finally {
      for (const close of closers.reverse()) await close().catch(() => undefined);
      for (const c of children) c.kill('SIGTERM');
      // A profiled child (PEAK_BENCH_PROFILE) needs a moment to write its profile.
      await new Promise((r) => setTimeout(r, childNodeArgs().length > 0 ? 5000 : 300));
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      await server?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

if (process.argv[2] === '--serve') {
  const port = await serve(process.argv[3]!, process.argv.slice(4));
  process.stdout.write(`${port}\n`);
}
