/**
 * The HTTP/1.1 front (`HttpFront`, core; exported by `peakware/gateway`) against node:http,
 * the server it stands in front of, with the same handler: a JSON echo (parse the body,
 * answer with a JSON object). Four servers, each in its own process: node:http, the front,
 * node's https and the front over TLS (a dev certificate from `createDevPki`); and the RPC
 * provider's HTTP/JSON port (`RpcServer` with `httpPort`, a zod-checked echo method) read by
 * the front and by node:http alone (`httpFront: false`). The load is an undici 7 pool in this
 * process (closed loop, 64 in flight, contenders interleaved); the figure that matters is the
 * server process's CPU a request, since on two shared cores the load decides the req/s.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { type FrontRequest, type FrontResponse, HttpFront } from 'peakware/gateway';
import { RpcServer } from 'peakware/rpc';
import { createDevPki } from 'peakware/security';
import { Pool } from 'undici';
import { type Benchmark, median, round } from '../bench.js';
import { processCpuUs, startChildServer } from '../child-server.js';
import { measureClosedLoop } from '../closed-loop.js';
import { echoService } from '../echo-service.js';

type Kind = 'node' | 'front' | 'node-tls' | 'front-tls' | 'rpc-node' | 'rpc-front';
const LABEL: Record<Kind, string> = {
  node: 'node:http',
  front: 'HttpFront',
  'node-tls': 'node:https',
  'front-tls': 'HttpFront over TLS',
  'rpc-node': 'RPC HTTP/JSON port, node:http alone',
  'rpc-front': 'RPC HTTP/JSON port, HttpFront',
};

/** The echo both servers run: the body's `n` and `s` back, with the key header. */
function echo(body: Buffer, headers: http.IncomingHttpHeaders): string {
  const input = JSON.parse(body.toString()) as { n: number; s: string };
  return JSON.stringify({ n: input.n, s: input.s, key: headers['x-api-key'] ?? null });
}

const HEAD = (text: string) => [
  'content-type',
  'application/json',
  'content-length',
  String(Buffer.byteLength(text)),
];

async function serve(kind: Kind, certFile?: string, keyFile?: string): Promise<number> {
  if (kind === 'rpc-node' || kind === 'rpc-front') {
    const rpc = new RpcServer({ httpPort: 0, httpFront: kind === 'rpc-front' });
    rpc.addService(echoService, { echo: ({ n, s }) => ({ n, s }) });
    await rpc.start();
    return rpc.httpPort!;
  }
  const pair =
    certFile === undefined || keyFile === undefined
      ? undefined
      : { cert: readFileSync(certFile), key: readFileSync(keyFile) };
  const options = { keepAliveTimeout: 30_000 };
  const nodeHandler = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = echo(Buffer.concat(chunks), req.headers);
      res.writeHead(200, HEAD(text));
      res.end(text);
    });
  };
  let server: http.Server | https.Server | HttpFront['server'];
  if (kind === 'node') server = http.createServer(options, nodeHandler);
  else if (kind === 'node-tls') server = https.createServer({ ...options, ...pair }, nodeHandler);
  else
    server = new HttpFront({
      fallback: http.createServer(options, nodeHandler),
      handle: (req: FrontRequest, res: FrontResponse) => {
        const text = echo(req.body, req.headers);
        res.writeHead(200, HEAD(text));
        res.end(text);
      },
      keepAliveTimeoutMs: 30_000,
      requestTimeoutMs: 30_000,
      maxBodyBytes: 256 * 1024,
      ...(kind === 'front-tls' && pair !== undefined ? { tls: pair } : {}),
    }).server;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

export const benchmark: Benchmark = {
  name: 'http-front',
  description:
    "the HTTP/1.1 front vs node:http (and both over TLS, and as the RPC provider's HTTP/JSON port), the same JSON echo, 64 in flight: server CPU a request",
  async run({ runs, quick, progress }) {
    const ms = quick ? 1000 : 3000;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'peak-bench-http-front-'));
    const children: ChildProcess[] = [];
    const pools: Pool[] = [];
    try {
      const pki = await createDevPki({ dir, names: ['server'] });
      const cert = pki.certs.server!;
      const ca = readFileSync(pki.caFile);
      const kinds: Kind[] = ['node', 'front', 'node-tls', 'front-tls', 'rpc-node', 'rpc-front'];
      const servers = new Map<Kind, { pid: number | undefined; pool: Pool }>();
      for (const k of kinds) {
        const tls = k.endsWith('-tls');
        const s = await startChildServer(
          import.meta.url,
          tls ? [k, cert.certFile, cert.keyFile] : [k],
          LABEL[k],
        );
        children.push(s.child);
        const pool = new Pool(`${tls ? 'https' : 'http'}://127.0.0.1:${s.port}`, {
          connections: 64,
          pipelining: 1,
          ...(tls ? { connect: { ca, servername: 'localhost' } } : {}),
        });
        pools.push(pool);
        servers.set(k, { pid: s.child.pid, pool });
      }
      const call = (pool: Pool, rpc: boolean) => async (n: number) => {
        const res = await pool.request({
          path: rpc ? '/rpc/bench.echo/echo' : '/echo',
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-api-key': 'k1' },
          body: `{"n":${n},"s":"hello"}`,
        });
        const text = await res.body.text();
        if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode} ${text.slice(0, 200)}`);
      };
      const res = new Map<
        Kind,
        { perSec: number[]; p99: number[]; cpuUs: number[]; errors: number }
      >(kinds.map((k) => [k, { perSec: [], p99: [], cpuUs: [], errors: 0 }]));
      for (const k of kinds)
        await measureClosedLoop(
          call(servers.get(k)!.pool, k.startsWith('rpc')),
          64,
          quick ? 300 : 1000,
        );
      for (let r = 0; r < runs; r++) {
        for (const k of kinds) {
          const { pid, pool } = servers.get(k)!;
          const cpu0 = processCpuUs(pid);
          const m = await measureClosedLoop(call(pool, k.startsWith('rpc')), 64, ms);
          const cpuUs = (processCpuUs(pid) - cpu0) / (m.perSec * (ms / 1000));
          const f = res.get(k)!;
          f.perSec.push(m.perSec);
          f.p99.push(m.p99);
          f.cpuUs.push(cpuUs);
          f.errors += m.errors;
          progress(
            `${LABEL[k]} run ${r + 1}: ${Math.round(m.perSec)} req/s, p99 ${m.p99.toFixed(2)} ms, ${cpuUs.toFixed(1)} µs CPU a request`,
          );
        }
      }
      const figures: Record<string, number> = {};
      const table: (string | number)[][] = [
        ['server', 'req/s (64 in flight)', 'p99 ms', 'CPU µs/req (server process)', 'errors'],
      ];
      const fig = (k: Kind) => {
        const f = res.get(k)!;
        return { perSec: median(f.perSec), p99: median(f.p99), cpuUs: median(f.cpuUs) };
      };
      for (const k of kinds) {
        const f = fig(k);
        for (const [name, v] of Object.entries(f)) figures[`${k}.${name}`] = round(v);
        table.push([
          LABEL[k],
          Math.round(f.perSec),
          round(f.p99),
          round(f.cpuUs),
          res.get(k)!.errors,
        ]);
      }
      return {
        figures,
        ratios: {
          'front/node.cpuUs': round(fig('front').cpuUs / fig('node').cpuUs),
          'front/node.perSec': round(fig('front').perSec / fig('node').perSec),
          'front-tls/node-tls.cpuUs': round(fig('front-tls').cpuUs / fig('node-tls').cpuUs),
          'front-tls/node-tls.perSec': round(fig('front-tls').perSec / fig('node-tls').perSec),
          'rpc-front/rpc-node.cpuUs': round(fig('rpc-front').cpuUs / fig('rpc-node').cpuUs),
          'rpc-front/rpc-node.perSec': round(fig('rpc-front').perSec / fig('rpc-node').perSec),
        },
        table,
        notes: [
          "each server its own process; the load (undici, closed loop) in the benchmark process on the same two cores, so req/s is mostly the load's; CPU a request is the server process's own (/proc)",
          "the front serves every request here (complete heads, small content-length bodies); what it hands to node:http is node's cost plus the hand-over",
        ],
      };
    } finally {
      for (const p of pools) await p.close().catch(() => undefined);
      for (const c of children) c.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

if (process.argv[2] === '--serve') {
  const port = await serve(process.argv[3] as Kind, process.argv[4], process.argv[5]);
  process.stdout.write(`${port}\n`);
}
