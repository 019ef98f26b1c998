/**
 * RPC throughput and latency: the same tiny echo method (`{ n, s }` → the same object)
 * served from a separate process and called from this one over loopback, with the same
 * number of calls in flight for every contender:
 *
 * - peakware: the full consumer path (typed proxy, context headers, routing, balancing,
 *   failover, zod on both sides) over one multiplexed TCP connection, msgpack frames
 * - peakware-tls: the same over TLS (TlsTransport, a P-256 certificate from the dev CA of
 *   `peak tls init`, TLS 1.3; the consumer checks the provider, not the other way round)
 * - peakware-mtls: the same over mutual TLS (the provider requiring a client certificate)
 * - peakware-verified: plain TCP, the provider verifying callers' signed identities
 *   (IdentityVerifier with the keys in hand, the consumer presenting an Ed25519 JWT once
 *   per connection; the guard's authority rules would see the verified app)
 * - grpc-js: @grpc/grpc-js unary calls over HTTP/2 (JSON-serialised messages, one channel)
 * - grpc-js-tls: the same over TLS (the dev CA's provider certificate)
 * - fastify+undici: HTTP/1.1 JSON POST, fastify server, undici Pool client (keep-alive)
 * - moleculer: Moleculer service broker, TCP transporter (static peers, no UDP discovery)
 * - bare-tcp-json: newline-delimited JSON with ids on one TCP socket, no framework: the
 *   floor of what any RPC on this machine can cost
 *
 * Run as a script with `--serve <kind>`, this file is the server process.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  IDENTITY_AUDIENCE,
  newIdentityKeyPair,
  privateKeyOf,
  publicJwk,
  signIdentity,
} from 'peakware/core';
import { InMemoryRegistry } from 'peakware/registry';
import { RpcClient, RpcServer, TlsTransport } from 'peakware/rpc';
import { createDevPki, IdentityVerifier } from 'peakware/security';
import { type Benchmark, median, round } from '../bench.js';
import { processCpuUs, startChildServer } from '../child-server.js';
import { echoService } from '../echo-service.js';

type Kind =
  | 'peakware'
  | 'tls'
  | 'mtls'
  | 'verified'
  | 'grpc'
  | 'grpcTls'
  | 'http'
  | 'moleculer'
  | 'tcp';
const KINDS: Kind[] = [
  'peakware',
  'tls',
  'mtls',
  'verified',
  'grpc',
  'grpcTls',
  'http',
  'moleculer',
  'tcp',
];
const LABEL: Record<Kind, string> = {
  peakware: 'peakware',
  tls: 'peakware-tls',
  mtls: 'peakware-mtls',
  verified: 'peakware-verified',
  grpc: 'grpc-js',
  grpcTls: 'grpc-js-tls',
  http: 'fastify+undici',
  moleculer: 'moleculer-tcp',
  tcp: 'bare-tcp-json',
};

/** Two free loopback ports (Moleculer's TCP transporter wants its peers' ports up front). */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<net.Server>((resolve) => {
          const s = net.createServer();
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

function moleculerBroker(nodeID: string, port: number, peer: string) {
  return import('moleculer').then(
    ({ ServiceBroker }) =>
      new ServiceBroker({
        nodeID,
        logger: false,
        transporter: { type: 'TCP', options: { udpDiscovery: false, port, urls: [peer] } },
      }),
  );
}

const jsonSerialize = (value: unknown) => Buffer.from(JSON.stringify(value));
const jsonDeserialize = (buf: Buffer) => JSON.parse(buf.toString()) as unknown;

async function serve(kind: Kind, extra: string[]): Promise<number> {
  switch (kind) {
    case 'moleculer': {
      const [serverPort, clientPort] = extra.map(Number) as [number, number];
      const broker = await moleculerBroker(
        'bench-server',
        serverPort,
        `127.0.0.1:${clientPort}/bench-client`,
      );
      broker.createService({ name: 'echo', actions: { echo: (ctx) => ctx.params } });
      await broker.start();
      return serverPort;
    }
    case 'peakware': {
      const server = new RpcServer({ port: 0 });
      server.addService(echoService, { echo: (input) => input });
      return (await server.start()).port;
    }
    case 'tls':
    case 'mtls': {
      const dir = extra[0]!;
      const server = new RpcServer({
        port: 0,
        transport: new TlsTransport({
          certFile: path.join(dir, 'provider.pem'),
          keyFile: path.join(dir, 'provider.key'),
          ...(kind === 'mtls' ? { caFile: path.join(dir, 'ca.pem'), requireClientCert: true } : {}),
        }),
      });
      server.addService(echoService, { echo: (input) => input });
      return (await server.start()).port;
    }
    case 'verified': {
      const keys = JSON.parse(readFileSync(path.join(extra[0]!, 'jwks.json'), 'utf8'));
      const server = new RpcServer({
        port: 0,
        identity: { verifier: new IdentityVerifier({ keys }) },
      });
      server.addService(echoService, { echo: (input) => input });
      return (await server.start()).port;
    }
    case 'grpc':
    case 'grpcTls': {
      const grpc = await import('@grpc/grpc-js');
      const server = new grpc.Server();
      server.addService(
        {
          echo: {
            path: '/bench.Echo/Echo',
            requestStream: false,
            responseStream: false,
            requestSerialize: jsonSerialize,
            requestDeserialize: jsonDeserialize,
            responseSerialize: jsonSerialize,
            responseDeserialize: jsonDeserialize,
          },
        },
        {
          echo: (call: { request: unknown }, callback: (err: null, value: unknown) => void) =>
            callback(null, call.request),
        },
      );
      const dir = extra[0];
      const credentials =
        kind === 'grpcTls' && dir !== undefined
          ? grpc.ServerCredentials.createSsl(
              null,
              [
                {
                  cert_chain: readFileSync(path.join(dir, 'provider.pem')),
                  private_key: readFileSync(path.join(dir, 'provider.key')),
                },
              ],
              false,
            )
          : grpc.ServerCredentials.createInsecure();
      return new Promise((resolve, reject) =>
        server.bindAsync('127.0.0.1:0', credentials, (err, port) =>
          err ? reject(err) : resolve(port),
        ),
      );
    }
    case 'http': {
      const { default: Fastify } = await import('fastify');
      const app = Fastify({ logger: false });
      app.post('/echo', async (request) => request.body);
      await app.listen({ host: '127.0.0.1', port: 0 });
      return (app.server.address() as net.AddressInfo).port;
    }
    case 'tcp': {
      const server = net.createServer({ noDelay: true }, (socket) => {
        let buffered = '';
        socket.setEncoding('utf8');
        socket.on('data', (chunk: string) => {
          buffered += chunk;
          let out = '';
          let nl = buffered.indexOf('\n');
          while (nl >= 0) {
            const msg = JSON.parse(buffered.slice(0, nl)) as { id: number; p: unknown };
            out += `${JSON.stringify({ id: msg.id, r: msg.p })}\n`;
            buffered = buffered.slice(nl + 1);
            nl = buffered.indexOf('\n');
          }
          if (out.length > 0) socket.write(out);
        });
        socket.on('error', () => undefined);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      return (server.address() as net.AddressInfo).port;
    }
  }
}

type Call = (n: number) => Promise<unknown>;

async function connect(
  kind: Kind,
  port: number,
  extra: string[],
): Promise<{ call: Call; close(): Promise<void> }> {
  const payload = (n: number) => ({ n, s: 'hello' });
  switch (kind) {
    case 'moleculer': {
      const broker = await moleculerBroker(
        'bench-client',
        Number(extra[1]),
        `127.0.0.1:${port}/bench-server`,
      );
      await broker.start();
      await broker.waitForServices(['echo'], 20_000);
      return { call: (n) => broker.call('echo.echo', payload(n)), close: () => broker.stop() };
    }
    case 'peakware':
    case 'tls':
    case 'mtls':
    case 'verified': {
      const registry = new InMemoryRegistry();
      await registry.register({
        instanceId: 'bench',
        service: echoService.name,
        version: echoService.version,
        group: echoService.group,
        host: '127.0.0.1',
        port,
        weight: 100,
        tags: [],
        metadata: {},
      });
      const dir = extra[0];
      const transport =
        (kind === 'mtls' || kind === 'tls') && dir !== undefined
          ? new TlsTransport({
              ...(kind === 'mtls'
                ? {
                    certFile: path.join(dir, 'consumer.pem'),
                    keyFile: path.join(dir, 'consumer.key'),
                  }
                : {}),
              caFile: path.join(dir, 'ca.pem'),
            })
          : undefined;
      const identity =
        kind === 'verified' && dir !== undefined
          ? readFileSync(path.join(dir, 'identity.jwt'), 'utf8')
          : undefined;
      const client = new RpcClient({
        registry,
        warmupMs: 0,
        timeoutMs: 10_000,
        ...(transport === undefined ? {} : { connection: { transport } }),
        ...(identity === undefined ? {} : { identity: { current: () => identity } }),
      });
      const echo = client.service(echoService);
      return { call: (n) => echo.echo(payload(n)), close: () => client.close() };
    }
    case 'grpc':
    case 'grpcTls': {
      const grpc = await import('@grpc/grpc-js');
      const Client = grpc.makeGenericClientConstructor(
        {
          echo: {
            path: '/bench.Echo/Echo',
            requestStream: false,
            responseStream: false,
            requestSerialize: jsonSerialize,
            requestDeserialize: jsonDeserialize,
            responseSerialize: jsonSerialize,
            responseDeserialize: jsonDeserialize,
          },
        },
        'Echo',
      );
      const dir = extra[0];
      const client = new Client(
        `localhost:${port}`,
        kind === 'grpcTls' && dir !== undefined
          ? grpc.credentials.createSsl(readFileSync(path.join(dir, 'ca.pem')))
          : grpc.credentials.createInsecure(),
      ) as unknown as {
        echo(req: unknown, cb: (err: Error | null, res: unknown) => void): void;
        close(): void;
      };
      return {
        call: (n) =>
          new Promise((resolve, reject) =>
            client.echo(payload(n), (err, res) => (err ? reject(err) : resolve(res))),
          ),
        close: async () => client.close(),
      };
    }
    case 'http': {
      const { Pool } = await import('undici');
      const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 16, pipelining: 1 });
      return {
        call: async (n) => {
          const res = await pool.request({
            path: '/echo',
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(payload(n)),
          });
          return res.body.json();
        },
        close: () => pool.close(),
      };
    }
    case 'tcp': {
      const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
      await new Promise((r) => socket.once('connect', r));
      socket.setEncoding('utf8');
      const pending = new Map<number, (v: unknown) => void>();
      let nextId = 1;
      let buffered = '';
      socket.on('data', (chunk: string) => {
        buffered += chunk;
        let nl = buffered.indexOf('\n');
        while (nl >= 0) {
          const msg = JSON.parse(buffered.slice(0, nl)) as { id: number; r: unknown };
          buffered = buffered.slice(nl + 1);
          pending.get(msg.id)?.(msg.r);
          pending.delete(msg.id);
          nl = buffered.indexOf('\n');
        }
      });
      let queue: string[] = [];
      let scheduled = false;
      return {
        call: (n) =>
          new Promise((resolve) => {
            const id = nextId++;
            pending.set(id, resolve);
            queue.push(`${JSON.stringify({ id, p: payload(n) })}\n`);
            if (!scheduled) {
              scheduled = true;
              setImmediate(() => {
                scheduled = false;
                socket.write(queue.join(''));
                queue = [];
              });
            }
          }),
        close: async () => {
          socket.destroy();
        },
      };
    }
  }
}

/** Closed loop: `inFlight` workers call back to back until `maxCalls` or `ms` pass. */
async function measure(call: Call, inFlight: number, ms: number, maxCalls: number) {
  const latencies: number[] = [];
  let done = 0;
  let errors = 0;
  const started = performance.now();
  const end = started + ms;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (done < maxCalls && performance.now() < end) {
        const t = performance.now();
        try {
          await call(done);
          latencies.push(performance.now() - t);
        } catch {
          errors++;
        }
        done++;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const q = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? Number.NaN;
  return { callsPerSec: latencies.length / seconds, p50: q(0.5), p99: q(0.99), errors };
}

export const benchmark: Benchmark = {
  name: 'rpc',
  description:
    'echo RPC, client and server in separate processes on loopback, 200 calls in flight: peakware (plain, TLS, mutual TLS, verified callers) vs grpc-js (plain and TLS), fastify+undici, Moleculer (TCP), bare TCP JSON',
  async run({ runs, quick, progress }) {
    const inFlight = 200;
    const ms = quick ? 1000 : 3000;
    const maxCalls = quick ? 300_000 : 3_000_000;
    type Figures = {
      callsPerSec: number[];
      p50: number[];
      p99: number[];
      cpuUs: number[];
      errors: number;
    };
    const results = Object.fromEntries(
      KINDS.map((k): [Kind, Figures] => [
        k,
        { callsPerSec: [], p50: [], p99: [], cpuUs: [], errors: 0 },
      ]),
    ) as Record<Kind, Figures>;
    // All servers up at once, runs interleaved across contenders, so a burst of load from
    // elsewhere on the machine hits every contender alike instead of skewing one.
    const started: {
      kind: Kind;
      child: ChildProcess;
      client: Awaited<ReturnType<typeof connect>>;
    }[] = [];
    const pkiDir = mkdtempSync(path.join(os.tmpdir(), 'peak-bench-tls-'));
    await createDevPki({ dir: pkiDir, names: ['provider', 'consumer'] });
    // The verified-caller contender's key set (for the provider) and identity (for the consumer).
    const pair = newIdentityKeyPair();
    writeFileSync(
      path.join(pkiDir, 'jwks.json'),
      JSON.stringify({ keys: [publicJwk(pair.kid, pair.publicPem)] }),
    );
    const nowS = Math.floor(Date.now() / 1000);
    writeFileSync(
      path.join(pkiDir, 'identity.jwt'),
      signIdentity(
        { kid: pair.kid, privateKey: privateKeyOf(pair.privatePem) },
        { sub: 'bench.client', aud: IDENTITY_AUDIENCE, iat: nowS, exp: nowS + 3600, jti: 'bench' },
      ),
    );
    try {
      for (const kind of KINDS) {
        const extra =
          kind === 'moleculer'
            ? (await freePorts(2)).map(String)
            : ['tls', 'mtls', 'verified', 'grpcTls'].includes(kind)
              ? [pkiDir]
              : [];
        const { child, port } = await startChildServer(import.meta.url, [kind, ...extra], kind);
        started.push({ kind, child, client: await connect(kind, port, extra) });
      }
      for (const { client } of started) {
        await measure(client.call, inFlight, quick ? 300 : 1000, maxCalls); // warm-up (JIT, connections)
      }
      for (let r = 0; r < runs; r++) {
        for (const { kind, client, child } of started) {
          // CPU per call (client + server) does not depend on what else runs on the machine,
          // unlike calls/s: the steadier efficiency figure on a shared host.
          const cpu0 = process.cpuUsage();
          const server0 = processCpuUs(child.pid);
          const m = await measure(client.call, inFlight, ms, maxCalls);
          const cpu = process.cpuUsage(cpu0);
          const calls = m.callsPerSec * (ms / 1000);
          const cpuUs = (cpu.user + cpu.system + processCpuUs(child.pid) - server0) / calls;
          results[kind].cpuUs.push(cpuUs);
          progress(
            `${LABEL[kind]} run ${r + 1}: ${Math.round(m.callsPerSec)} calls/s, p99 ${m.p99.toFixed(2)} ms, ${cpuUs.toFixed(1)} µs CPU/call`,
          );
          results[kind].callsPerSec.push(m.callsPerSec);
          results[kind].p50.push(m.p50);
          results[kind].p99.push(m.p99);
          results[kind].errors += m.errors;
        }
      }
    } finally {
      for (const { client, child } of started) {
        await client.close().catch(() => undefined);
        child.kill('SIGKILL');
      }
      rmSync(pkiDir, { recursive: true, force: true });
    }
    const figures: Record<string, number> = {};
    const table: (string | number)[][] = [
      ['contender', 'calls/s', 'p50 ms', 'p99 ms', 'CPU µs/call', 'errors'],
    ];
    for (const kind of KINDS) {
      const r = results[kind];
      figures[`${kind}.callsPerSec`] = round(median(r.callsPerSec));
      figures[`${kind}.p50Ms`] = round(median(r.p50));
      figures[`${kind}.p99Ms`] = round(median(r.p99));
      figures[`${kind}.cpuUsPerCall`] = round(median(r.cpuUs));
      table.push([
        LABEL[kind],
        round(median(r.callsPerSec)),
        round(median(r.p50)),
        round(median(r.p99)),
        round(median(r.cpuUs)),
        r.errors,
      ]);
    }
    const pw = median(results.peakware.callsPerSec);
    const ratios: Record<string, number> = {
      'peakware/grpc-js.callsPerSec': round(pw / median(results.grpc.callsPerSec)),
      'peakware/fastify+undici.callsPerSec': round(pw / median(results.http.callsPerSec)),
      'peakware/moleculer-tcp.callsPerSec': round(pw / median(results.moleculer.callsPerSec)),
      'peakware/bare-tcp-json.callsPerSec': round(pw / median(results.tcp.callsPerSec)),
      'peakware-tls/peakware.callsPerSec': round(median(results.tls.callsPerSec) / pw),
      'peakware-mtls/peakware.callsPerSec': round(median(results.mtls.callsPerSec) / pw),
      'peakware-verified/peakware.callsPerSec': round(median(results.verified.callsPerSec) / pw),
      'peakware-tls/grpc-js-tls.callsPerSec': round(
        median(results.tls.callsPerSec) / median(results.grpcTls.callsPerSec),
      ),
      'peakware-mtls/grpc-js.callsPerSec': round(
        median(results.mtls.callsPerSec) / median(results.grpc.callsPerSec),
      ),
      'peakware/grpc-js.p99': round(median(results.peakware.p99) / median(results.grpc.p99)),
      'peakware/fastify+undici.p99': round(median(results.peakware.p99) / median(results.http.p99)),
      'peakware/moleculer-tcp.p99': round(
        median(results.peakware.p99) / median(results.moleculer.p99),
      ),
    };
    const pwCpu = median(results.peakware.cpuUs);
    for (const kind of ['tls', 'mtls', 'verified'] as const) {
      // CPU per call of the secured path over the plain one: the cost of the security.
      ratios[`${LABEL[kind]}/peakware.cpuPerCall`] = round(median(results[kind].cpuUs) / pwCpu);
    }
    for (const kind of ['grpc', 'http', 'moleculer', 'tcp'] as const) {
      // CPU per call of the peer over Peakware's: above 1 means Peakware does a call cheaper.
      ratios[`${LABEL[kind]}/peakware.cpuPerCall`] = round(median(results[kind].cpuUs) / pwCpu);
    }
    table.push([]);
    for (const [k, v] of Object.entries(ratios)) table.push([k, v]);
    return {
      figures,
      ratios,
      table,
      notes: [
        `${inFlight} calls in flight, closed loop, ${ms} ms per run after a warm-up, runs interleaved across contenders; each server in its own child process`,
        'grpc-js messages are JSON-serialised (no protobuf codegen), one channel; undici Pool of 16 keep-alive connections',
        'goals: peakware-tls and peakware-verified at most 15 % fewer calls/s than peakware; peakware-tls at least 10x grpc-js-tls',
        'CPU µs/call = user + system CPU of the client process and the server process over the run, per call (Linux /proc); steadier than calls/s on a shared machine',
      ],
    };
  },
};

if (process.argv[2] === '--serve') {
  const kind = process.argv[3] as Kind;
  if (!KINDS.includes(kind)) {
    process.stderr.write(`unknown server kind ${kind}\n`);
    process.exit(2);
  }
  const port = await serve(kind, process.argv.slice(4));
  process.stdout.write(`${port}\n`);
}
