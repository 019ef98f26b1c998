/**
 * Full-link tracing end to end over real sockets: an HTTP gateway (node:http wrapped by
 * traceHttp) calls the order service over RPC, which calls inventory over RPC, which runs
 * a (simulated) SQL statement in a span. Each service has its own tracer exporting to a
 * real peak server. One request must become ONE trace whose spans link parent → child
 * across every hop, returned by the trace API as a tree with its critical path, and the
 * topology API must return the real call graph with errors and stress traffic apart.
 * OTLP/HTTP JSON spans are accepted and queryable; /metrics passes promtool and parses strictly.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';
import { currentContext } from '../src/core/context.js';
import { PeakError } from '../src/core/errors.js';
import { ShardedDatabase } from '../src/data/index.js';
import { Consumer, Producer } from '../src/mq/index.js';
import { InMemoryRegistry } from '../src/registry/in-memory-registry.js';
import { defineService, RpcClient, RpcServer } from '../src/rpc/index.js';
import { PeakServer } from '../src/server/index.js';
import {
  BatchSpanProcessor,
  ControlPlaneSpanExporter,
  parsePrometheusText,
  rpcTracingFilter,
  type SpanRecord,
  sqlSpanCollector,
  type TraceNode,
  Tracer,
  type TraceTree,
  toOtlpJson,
  traceConsumer,
  traceHttp,
  traceSend,
} from '../src/telemetry/index.js';
import { bearer, useLocalCredential } from './support/credentials.js';
import { runPeak } from './support/peak-process.js';
import { waitFor } from './support/wait.js';
import { assertPromtoolAccepts } from './telemetry-promtool-check.js';

const inventory = defineService({
  name: 'shop.inventory',
  version: '1.0.0',
  methods: {
    deduct: { input: z.object({ sku: z.string() }), output: z.object({ left: z.number() }) },
  },
});
const order = defineService({
  name: 'shop.order',
  version: '1.0.0',
  methods: {
    create: { input: z.object({ sku: z.string() }), output: z.object({ left: z.number() }) },
  },
});

interface Topology {
  services: string[];
  edges: {
    caller: string;
    callee: string;
    stress: boolean;
    calls: number;
    errors: number;
    rtP99Ms: number;
  }[];
}

describe('telemetry: one trace across HTTP → RPC → RPC → SQL', { timeout: 120_000 }, () => {
  let dataDir: string;
  let server: PeakServer;
  const registry = new InMemoryRegistry();
  const processors: BatchSpanProcessor[] = [];
  const closers: (() => Promise<void>)[] = [];
  let gatewayUrl: string;

  const tracerFor = (service: string) => {
    const processor = new BatchSpanProcessor({
      exporter: new ControlPlaneSpanExporter({ servers: server.info.url }),
      flushIntervalMs: 50,
    });
    processors.push(processor);
    return new Tracer({ service, sink: processor });
  };
  const api = async <T>(p: string): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${server.info.url}${p}`, {
      headers: bearer(),
      signal: AbortSignal.timeout(10_000),
    });
    return { status: res.status, body: (await res.json()) as T };
  };
  const flush = () => Promise.all(processors.map((p) => p.flush()));
  const get = async (p: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${gatewayUrl}${p}`, { headers, signal: AbortSignal.timeout(10_000) });
    return { status: res.status, body: (await res.json()) as { traceId: string } };
  };

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-telemetry-'));
    server = await PeakServer.start({ dataDir, port: 0 });
    useLocalCredential(server);

    const invTracer = tracerFor('inventory');
    const inv = new RpcServer({ registry, filters: [rpcTracingFilter(invTracer)] }).addService(
      inventory,
      {
        deduct: ({ sku }) =>
          invTracer.trace(
            'SELECT stock',
            async (span) => {
              await new Promise((r) => setTimeout(r, 5));
              span.setAttribute('db.rows', 1);
              if (sku === 'bad') throw new PeakError('PEAK_DATA_SQL', `no stock row for ${sku}`);
              return { left: 7 };
            },
            {
              kind: 'client',
              peerService: 'postgres',
              attributes: {
                'db.system': 'postgresql',
                'db.shard': 'inventory_01',
                'db.statement.fingerprint': 'SELECT stock FROM inventory WHERE sku = ?',
              },
            },
          ),
      },
    );
    await inv.start();
    closers.push(() => inv.stop());

    const orderTracer = tracerFor('order');
    const orderClient = new RpcClient({
      registry,
      app: 'order',
      warmupMs: 0,
      cluster: 'failfast',
      filters: [rpcTracingFilter(orderTracer)],
    });
    const ord = new RpcServer({ registry, filters: [rpcTracingFilter(orderTracer)] }).addService(
      order,
      { create: ({ sku }) => orderClient.service(inventory).deduct({ sku }) },
    );
    await ord.start();
    closers.push(async () => {
      await ord.stop();
      await orderClient.close();
    });

    const gwTracer = tracerFor('gateway');
    const gwClient = new RpcClient({
      registry,
      app: 'gateway',
      warmupMs: 0,
      cluster: 'failfast',
      filters: [rpcTracingFilter(gwTracer)],
    });
    const gw = http.createServer(
      traceHttp(gwTracer, (req, res) => {
        const traceId = currentContext()?.traceId ?? '';
        const sku = new URL(req.url ?? '/', 'http://x').searchParams.get('sku') ?? 'A1';
        gwClient
          .service(order)
          .create({ sku })
          .then(
            (r) => res.writeHead(200).end(JSON.stringify({ traceId, ...r })),
            () => res.writeHead(502).end(JSON.stringify({ traceId })),
          );
      }),
    );
    await new Promise<void>((r) => gw.listen(0, '127.0.0.1', r));
    gatewayUrl = `http://127.0.0.1:${(gw.address() as AddressInfo).port}`;
    closers.push(async () => {
      gw.closeAllConnections();
      await new Promise((r) => gw.close(r));
      await gwClient.close();
    });
  });

  after(async () => {
    for (const close of closers.reverse()) await close().catch(() => {});
    for (const p of processors) await p.shutdown().catch(() => {});
    await server?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('links every hop of one request into one trace, tree and critical path', async () => {
    const r = await get('/orders?sku=A1');
    assert.equal(r.status, 200);
    await flush();
    const { status, body: tree } = await api<TraceTree>(
      `/api/v1/telemetry/traces/${r.body.traceId}`,
    );
    assert.equal(status, 200);
    assert.equal(tree.spanCount, 6, 'http server, 2× rpc client + server, sql');
    assert.deepEqual(tree.services, ['gateway', 'inventory', 'order']);
    assert.equal(tree.roots.length, 1);
    // Walk the single chain: each span is the only child of the one before.
    const chain: SpanRecord[] = [];
    let node: TraceNode | undefined = tree.roots[0];
    while (node !== undefined) {
      chain.push(node.span);
      assert.ok(node.children.length <= 1);
      node = node.children[0];
    }
    assert.deepEqual(
      chain.map((s) => `${s.service}:${s.kind}:${s.name}`),
      [
        'gateway:server:GET /orders',
        'gateway:client:shop.order.create',
        'order:server:shop.order.create',
        'order:client:shop.inventory.deduct',
        'inventory:server:shop.inventory.deduct',
        'inventory:client:SELECT stock',
      ],
    );
    for (let i = 1; i < chain.length; i++)
      assert.equal(chain[i]?.parentSpanId, chain[i - 1]?.spanId);
    assert.deepEqual(
      tree.criticalPath,
      chain.map((s) => s.spanId),
    );
    assert.equal(chain[5]?.attributes['db.shard'], 'inventory_01');
    assert.equal(chain[3]?.peerService, 'shop.inventory');

    const cli = await runPeak(['trace', r.body.traceId, '--server', server.info.url]);
    assert.equal(cli.code, 0, cli.stderr);
    const lines = cli.stdout.trim().split('\n');
    assert.match(lines[0] ?? '', /6 spans, 3 services \(gateway, inventory, order\)/);
    assert.match(lines[1] ?? '', /^\*GET \/orders\s+gateway\s+server/);
    assert.match(lines[6] ?? '', /^\s+└─ \*SELECT stock\s+inventory\s+client .*\| *█+ *\|$/);
    const bad = await runPeak(['trace', 'nope', '--server', server.info.url]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /not a trace id/);
  });

  it('returns the dependency topology with errors and stress traffic counted apart', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await get('/orders?sku=A1')).status, 200);
    const bad = await get('/orders?sku=bad');
    assert.equal(bad.status, 502);
    assert.equal((await get('/orders?sku=A1', { 'peak-stress': '1' })).status, 200);
    await flush();
    const { body } = await api<Topology>('/api/v1/telemetry/topology?sinceMinutes=5');
    const edge = (caller: string, callee: string, stress: boolean) =>
      body.edges.find((e) => e.caller === caller && e.callee === callee && e.stress === stress);
    assert.deepEqual(body.services, ['gateway', 'inventory', 'order', 'postgres']);
    assert.equal(edge('gateway', 'order', false)?.calls, 5, 'first test + 3 + bad');
    assert.equal(edge('gateway', 'order', false)?.errors, 1);
    assert.equal(edge('order', 'inventory', false)?.calls, 5);
    assert.equal(edge('order', 'inventory', false)?.errors, 1);
    assert.equal(edge('inventory', 'postgres', false)?.calls, 5);
    assert.equal(edge('gateway', 'order', true)?.calls, 1, 'stress traffic apart');
    assert.equal(edge('order', 'inventory', true)?.calls, 1);
    assert.ok((edge('order', 'inventory', false)?.rtP99Ms ?? 0) >= 5);

    const errs = await api<{ traces: { traceId: string }[] }>(
      '/api/v1/telemetry/traces?service=inventory&error=true&sinceMinutes=5',
    );
    assert.deepEqual(
      errs.body.traces.map((t) => t.traceId),
      [bad.body.traceId],
    );
    const tagged = await api<{ traces: unknown[] }>(
      '/api/v1/telemetry/traces?tag=db.shard=inventory_01&stress=true',
    );
    assert.equal(tagged.body.traces.length, 1);
    const slow = await api<{
      statements: {
        fingerprint: string;
        shard: string;
        caller: string;
        calls: number;
        slowestTraceId: string;
      }[];
    }>('/api/v1/telemetry/slow-sql?sinceMinutes=5');
    const real = slow.body.statements.find((s) => s.calls === 5);
    assert.equal(real?.fingerprint, 'SELECT stock FROM inventory WHERE sku = ?');
    assert.match(real?.slowestTraceId ?? '', /^[0-9a-f]{32}$/);
    assert.equal(real?.shard, 'inventory_01');
    assert.equal(real?.caller, 'order');
    const eps = await api<{
      endpoints: { service: string; name: string; calls: number; p99Ms: number }[];
    }>('/api/v1/telemetry/endpoints?service=order&sinceMinutes=5');
    assert.equal(eps.body.endpoints.find((e) => e.name === 'shop.order.create')?.calls, 5);

    const top = await runPeak(['top', '--once', '--server', server.info.url]);
    assert.equal(top.code, 0, top.stderr);
    assert.match(top.stdout, /order\s+shop\.order\.create\s+0\.08\s+20\.0/);
    const search = await runPeak([
      'trace',
      '--service',
      'inventory',
      '--error',
      '--server',
      server.info.url,
    ]);
    assert.equal(search.code, 0, search.stderr);
    assert.match(search.stdout, new RegExp(`^${bad.body.traceId} .*ERROR`, 'm'));
  });

  it('accepts OTLP/HTTP JSON spans and serves them by trace id; rejects bad ones', async () => {
    const traceId = '5b8efff798038103d269b633813fc60c';
    const body = toOtlpJson([
      {
        traceId,
        spanId: 'eee19b7ec3c1b174',
        name: 'otel-root',
        kind: 'server',
        service: 'otel-app',
        startUs: Date.now() * 1000,
        durationUs: 1500,
        error: false,
        stress: false,
        attributes: { 'http.route': '/x' },
      },
    ]);
    const res = await fetch(`${server.info.url}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer() },
      body: JSON.stringify(body),
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {});
    const { body: tree } = await api<TraceTree>(`/api/v1/telemetry/traces/${traceId}`);
    assert.equal(tree.roots[0]?.span.service, 'otel-app');
    assert.equal(tree.roots[0]?.span.durationUs, 1500);
    const bad = await fetch(`${server.info.url}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer() },
      body: JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: 'zz' }] }] }] }),
    });
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(await bad.json()), /traceId must be 32 hex/);
    const badSdk = await fetch(`${server.info.url}/api/v1/telemetry/spans`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer() },
      body: JSON.stringify({
        spans: [
          {
            traceId,
            spanId: '1111111111111111',
            name: 'x',
            kind: 'internal',
            service: 's',
            startUs: 1,
            durationUs: 1,
            attributes: { nested: { a: 1 } },
          },
        ],
      }),
    });
    assert.equal(badSdk.status, 400);
    assert.match(
      JSON.stringify(await badSdk.json()),
      /attribute 'nested' must be a string, number or boolean/,
    );
    const missing = await api<{ error: { code: string } }>(
      `/api/v1/telemetry/traces/${'1'.repeat(32)}`,
    );
    assert.equal(missing.status, 404);
    const malformed = await api<{ error: { message: string } }>('/api/v1/telemetry/traces/xyz');
    assert.equal(malformed.status, 400);
    // OTLP metrics and logs: a clear 501 saying what is taken (JSON), or google.rpc.Status
    // UNIMPLEMENTED (code 12) for a protobuf request; they were a bare 404.
    for (const signal of ['metrics', 'logs']) {
      const res = await fetch(`${server.info.url}/v1/${signal}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      assert.equal(res.status, 501);
      const { error } = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(error.code, 'PEAK_NOT_IMPLEMENTED');
      assert.match(error.message, new RegExp(`does not store OTLP ${signal}.*POST /v1/traces`));
    }
    const proto = await fetch(`${server.info.url}/v1/metrics`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf' },
      body: new Uint8Array(0),
    });
    assert.equal(proto.status, 501);
    assert.equal(proto.headers.get('content-type'), 'application/x-protobuf');
    assert.deepEqual([...new Uint8Array(await proto.arrayBuffer()).slice(0, 2)], [0x08, 12]);
  });

  it('serves /metrics that promtool and a strict exposition-format parser accept', async () => {
    const res = await fetch(`${server.info.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    assertPromtoolAccepts(text, "peak server's /metrics");
    const parsed = parsePrometheusText(text);
    const stored = parsed.samples.find((s) => s.name === 'peak_telemetry_spans_stored_total');
    assert.equal(stored?.value, 6 * 6 + 1, 'six requests of six spans, one OTLP span');
    assert.equal(parsed.types.get('process_cpu_seconds_total'), 'counter');
    // HTTP latency by route template (this test's OTLP posts among them), runtime figures.
    assert.equal(parsed.types.get('peak_http_request_duration_seconds'), 'histogram');
    const traces = parsed.samples.find(
      (s) =>
        s.name === 'peak_http_request_duration_seconds_count' &&
        s.labels.route === '/v1/traces' &&
        s.labels.method === 'POST' &&
        s.labels.status === '2xx',
    );
    assert.ok((traces?.value ?? 0) >= 1, 'POST /v1/traces counted under its route');
    for (const [name, type] of [
      ['nodejs_eventloop_lag_seconds', 'summary'],
      ['nodejs_eventloop_utilization_ratio', 'gauge'],
      ['nodejs_gc_duration_seconds', 'summary'],
      ['nodejs_heap_size_total_bytes', 'gauge'],
    ]) {
      assert.equal(parsed.types.get(name!), type, name);
    }
  });

  it("links an MQ send and its consumption into the sender's trace (and the topology)", async () => {
    const created = await fetch(`${server.info.url}/api/v1/mq/topics`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${server.info.adminToken}`,
      },
      body: JSON.stringify({ name: 'order-created', queues: 2 }),
    });
    assert.equal(created.status < 300, true, await created.text());
    const checkout = tracerFor('checkout');
    const points = tracerFor('points');
    const consumed: string[] = [];
    const consumer = new Consumer({
      servers: server.info.url,
      group: 'points',
      topic: 'order-created',
      waitMs: 300,
      handler: traceConsumer(points, (m) => {
        consumed.push(m.id);
      }),
    }).start();
    const producer = new Producer({ servers: server.info.url });
    closers.push(async () => {
      await consumer.close();
      await producer.close();
    });
    const traceId = await checkout.trace('checkout.place', async (span) => {
      await traceSend(checkout, 'order-created', () =>
        producer.send('order-created', { body: JSON.stringify({ order: 1 }) }),
      );
      return span.context.traceId;
    });
    await waitFor('the message to be consumed', () => consumed.length > 0);
    assert.equal(consumed.length, 1, 'the message was consumed once');
    await flush();
    const { body: tree } = await api<TraceTree>(`/api/v1/telemetry/traces/${traceId}`);
    assert.equal(tree.spanCount, 3);
    const root = tree.roots[0];
    const send = root?.children[0];
    const consume = send?.children[0];
    assert.equal(root?.span.name, 'checkout.place');
    assert.equal(send?.span.kind, 'producer');
    assert.equal(consume?.span.kind, 'consumer');
    assert.equal(consume?.span.service, 'points');
    assert.equal(consume?.span.parentSpanId, send?.span.spanId);
    const { body } = await api<Topology>('/api/v1/telemetry/topology?sinceMinutes=5');
    const edge = body.edges.find((e) => e.caller === 'checkout' && e.callee === 'points');
    assert.equal(edge?.calls, 1);
  });

  it('records SQL spans from the data layer: shard, fingerprint, rows; slow SQL names the caller', async () => {
    const web = tracerFor('web');
    const warehouse = tracerFor('warehouse');
    const pg = server.info.postgres;
    assert.equal(pg.mode, 'embedded');
    if (pg.mode !== 'embedded') return;
    const password = (await readFile(path.join(dataDir, 'postgres-password'), 'utf8')).trim();
    const db = await ShardedDatabase.connect({
      layout: {
        dataSources: ['ds0'],
        tables: {
          t_stock: {
            shardingColumn: 'sku',
            algorithm: { type: 'hash-mod' },
            tablesPerDataSource: 2,
          },
        },
      },
      connections: {
        ds0: {
          primary: `postgres://peak:${encodeURIComponent(password)}@${pg.host}:${pg.port}/postgres`,
        },
      },
      poolSize: 2,
      collector: sqlSpanCollector(warehouse),
    });
    closers.push(() => db.close());
    for (const t of db.physicalTables()) {
      await db
        .primary(t.dataSource)
        .query(`CREATE TABLE ${t.table} (sku text PRIMARY KEY, left_qty int NOT NULL)`);
    }
    await db.query('INSERT INTO t_stock (sku, left_qty) VALUES ($1, $2)', ['A1', 7]);
    const traceId = await web.trace(
      'warehouse.stock',
      () =>
        warehouse.trace(
          'warehouse.stock',
          async (span) => {
            const r = await db.query('SELECT left_qty FROM t_stock WHERE sku = $1', ['A1']);
            assert.equal(r.rows.length, 1);
            return span.context.traceId;
          },
          { kind: 'server' },
        ),
      { kind: 'client', peerService: 'warehouse' },
    );
    await flush();
    const { body: tree } = await api<TraceTree>(`/api/v1/telemetry/traces/${traceId}`);
    const sql = tree.roots[0]?.children[0]?.children[0]?.span;
    assert.equal(sql?.kind, 'client');
    assert.equal(sql?.service, 'warehouse');
    assert.equal(sql?.attributes['db.rows'], 1);
    assert.equal(sql?.name, 'SELECT left_qty FROM t_stock WHERE sku = $1');
    assert.ok(String(sql?.attributes['db.statement.fingerprint']).length > 0);
    assert.match(String(sql?.attributes['db.shard']), /^[01]$/);
    const slow = await api<{
      statements: { statement: string; shard: string; caller: string; service: string }[];
    }>('/api/v1/telemetry/slow-sql?sinceMinutes=5&limit=50');
    const row = slow.body.statements.find(
      (s) => s.service === 'warehouse' && /^SELECT left_qty/.test(s.statement),
    );
    assert.ok(row !== undefined, JSON.stringify(slow.body));
    assert.equal(row.caller, 'web');
    assert.equal(row?.shard, sql?.attributes['db.shard']);
  });
});
