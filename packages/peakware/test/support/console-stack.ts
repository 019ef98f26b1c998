/**
 * A running stack for the console's browser tests, its screenshots and its benchmark: a
 * real `peak server` (embedded PostgreSQL) holding what every page shows: registered
 * services and instances, per-second metrics pushed every second (with the last minutes
 * back-filled), traces across gateway → order → inventory → SQL (errors, stress traffic, a
 * slow statement), config items with versions and a gray release, guard rules, a sharding
 * layout, MQ topics with messages, a consumer group with backlog and a dead letter, and
 * alert rules (one firing).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { AdminClient } from '../../src/admin/index.js';
import { Consumer, Producer } from '../../src/mq/index.js';
import { HttpRegistry } from '../../src/registry/index.js';
import { PeakServer } from '../../src/server/index.js';
import { bearer, useLocalCredential } from './credentials.js';
import { waitFor } from './wait.js';

/** What to seed. */
export interface ConsoleStackOptions {
  /** Synthetic services (`svc-000` ...) besides the shop's. Default 0. */
  services?: number;
  /** Instances of each synthetic service. Default 2. */
  instancesPerService?: number;
  /** Push per-second metrics for the synthetic services too (one instance each). Default false. */
  pushSynthetic?: boolean;
  /** Synthetic services in the traces (topology nodes), up to `services`. Default 0. */
  tracedServices?: number;
  /** HTTP port (0 picks one). */
  port?: number;
}

/** The stack, with the ids the tests act on. */
export interface ConsoleStack {
  server: PeakServer;
  url: string;
  token: string;
  admin: AdminClient;
  /** An instance of shop.order (to take offline). */
  orderInstance: string;
  /** A trace through the whole chain. */
  traceId: string;
  /** The dead letter's group and id. */
  dlqGroup: string;
  dlqMessageId: string;
  stop(): Promise<void>;
}

const SHOP: { service: string; instances: number; resource: string; qps: number; rt: number }[] = [
  { service: 'shop.gateway', instances: 2, resource: 'POST /api/buy', qps: 120, rt: 14 },
  { service: 'shop.order', instances: 2, resource: 'shop.order.place', qps: 110, rt: 9 },
  { service: 'shop.inventory', instances: 2, resource: 'shop.inventory.deduct', qps: 110, rt: 3 },
  { service: 'shop.points', instances: 1, resource: 'consume shop-order-placed', qps: 60, rt: 2 },
];

const LAYOUT = {
  dataSources: ['orders_a', 'orders_b'],
  tables: {
    t_order: {
      shardingColumn: 'buyer_id',
      geneColumns: ['id'],
      algorithm: { kind: 'hash-mod' },
      tablesPerDataSource: 4,
    },
    t_order_item: {
      shardingColumn: 'buyer_id',
      algorithm: { kind: 'hash-mod' },
      tablesPerDataSource: 4,
    },
  },
  bindingGroups: [['t_order', 't_order_item']],
  broadcastTables: ['t_region'],
  localTables: ['peak_outbox.messages'],
};

const GUARD_RULES = {
  flow: [
    { resource: 'POST /api/buy', count: 300, grade: 'qps' },
    { resource: 'shop.order.place', count: 64, grade: 'concurrency' },
  ],
  degrade: [
    {
      resource: 'shop.inventory.deduct',
      strategy: 'slow-ratio',
      threshold: 0.5,
      maxRtMs: 200,
      recoveryTimeoutMs: 5000,
    },
  ],
};

const hex = (n: number) =>
  Array.from({ length: n }, () => Math.floor(Math.random() * 16).toString(16)).join('');

interface Span {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: 'server' | 'client' | 'producer' | 'consumer' | 'internal';
  service: string;
  peerService?: string;
  startUs: number;
  durationUs: number;
  error?: boolean;
  errorMessage?: string;
  stress?: boolean;
  attributes?: Record<string, string | number | boolean>;
}

/** One buy through the chain as spans: gateway → order → inventory → SQL, order → points. */
function buyTrace(startMs: number, i: number, stress: boolean, extra: string[]): Span[] {
  const t = hex(32);
  const us = startMs * 1000;
  const id = () => hex(16);
  const gw = id();
  const gwc = id();
  const ord = id();
  const ordc = id();
  const inv = id();
  const sql = id();
  const prod = id();
  const cons = id();
  const error = i % 9 === 4;
  const slow = i % 13 === 6 ? 80_000 : 0;
  const spans: Span[] = [
    {
      traceId: t,
      spanId: gw,
      name: 'POST /api/buy',
      kind: 'server',
      service: 'shop.gateway',
      startUs: us,
      durationUs: 16_000 + slow,
      error,
      stress,
    },
    {
      traceId: t,
      spanId: gwc,
      parentSpanId: gw,
      name: 'shop.order.place',
      kind: 'client',
      service: 'shop.gateway',
      peerService: 'shop.order',
      startUs: us + 500,
      durationUs: 14_000 + slow,
      error,
      stress,
    },
    {
      traceId: t,
      spanId: ord,
      parentSpanId: gwc,
      name: 'shop.order.place',
      kind: 'server',
      service: 'shop.order',
      startUs: us + 800,
      durationUs: 13_000 + slow,
      error,
      stress,
      ...(error ? { errorMessage: 'sold out' } : {}),
    },
    {
      traceId: t,
      spanId: ordc,
      parentSpanId: ord,
      name: 'shop.inventory.deduct',
      kind: 'client',
      service: 'shop.order',
      peerService: 'shop.inventory',
      startUs: us + 1200,
      durationUs: 4_000 + slow,
      stress,
    },
    {
      traceId: t,
      spanId: inv,
      parentSpanId: ordc,
      name: 'shop.inventory.deduct',
      kind: 'server',
      service: 'shop.inventory',
      startUs: us + 1400,
      durationUs: 3_500 + slow,
      stress,
    },
    {
      traceId: t,
      spanId: sql,
      parentSpanId: inv,
      name: 'UPDATE stock',
      kind: 'client',
      service: 'shop.inventory',
      peerService: 'postgresql',
      startUs: us + 1600,
      durationUs: 2_000 + slow,
      stress,
      attributes: {
        'db.system': 'postgresql',
        'db.statement': 'UPDATE stock SET left = left - $1 WHERE sku = $2 AND left >= $1',
        'db.statement.fingerprint': 'UPDATE stock SET left = left - ? WHERE sku = ? AND left >= ?',
        'db.shard': `orders_${i % 2 === 0 ? 'a' : 'b'}.t_stock_${i % 4}`,
        'db.data_source': i % 2 === 0 ? 'orders_a' : 'orders_b',
        'db.rows': 1,
      },
    },
    {
      traceId: t,
      spanId: prod,
      parentSpanId: ord,
      name: 'send shop-order-placed',
      kind: 'producer',
      service: 'shop.order',
      peerService: 'shop.points',
      startUs: us + 9000,
      durationUs: 1_500,
      stress,
    },
    {
      traceId: t,
      spanId: cons,
      parentSpanId: prod,
      name: 'consume shop-order-placed',
      kind: 'consumer',
      service: 'shop.points',
      startUs: us + 12_000,
      durationUs: 2_000,
      stress,
    },
  ];
  // Synthetic services hang off the gateway, so the topology has them as nodes.
  for (const [k, name] of extra.entries()) {
    const c = id();
    const s = id();
    spans.push(
      {
        traceId: t,
        spanId: c,
        parentSpanId: gw,
        name: `${name}.get`,
        kind: 'client',
        service: k % 3 === 0 ? 'shop.gateway' : (extra[k - 1] ?? 'shop.gateway'),
        peerService: name,
        startUs: us + 100,
        durationUs: 900,
        stress,
      },
      {
        traceId: t,
        spanId: s,
        parentSpanId: c,
        name: `${name}.get`,
        kind: 'server',
        service: name,
        startUs: us + 150,
        durationUs: 800,
        stress,
      },
    );
  }
  return spans;
}

/** Starts the stack and seeds it; `stop()` ends everything it started. */
export async function startConsoleStack(options: ConsoleStackOptions = {}): Promise<ConsoleStack> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-console-stack-'));
  const server = await PeakServer.start({
    dataDir,
    port: options.port ?? 0,
    telemetry: { alertIntervalMs: 1000 },
  });
  const url = server.info.url;
  // The stack's SDK clients (and raw posts) send the server's local app credential.
  useLocalCredential(server);
  const token = (await readFile(server.info.adminTokenFile, 'utf8')).trim();
  const admin = new AdminClient({ servers: url, token });
  const timers: NodeJS.Timeout[] = [];
  const registry = new HttpRegistry({ servers: url, leaseMs: 600_000 });
  const consumers: Consumer[] = [];
  const producer = new Producer({ servers: url });
  const post = async (route: string, body: unknown) => {
    const r = await fetch(`${url}${route}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer() },
      body: JSON.stringify(body),
    });
    if (!r.ok) throw new Error(`${route}: ${r.status} ${await r.text()}`);
  };
  const stop = async () => {
    for (const t of timers) clearInterval(t);
    await Promise.all(consumers.map((c) => c.close().catch(() => undefined)));
    await producer.close?.();
    await registry.close();
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    // Registry: the shop's services and the synthetic ones.
    const regs: Parameters<HttpRegistry['register']>[0][] = [];
    for (const s of SHOP) {
      for (let i = 0; i < s.instances; i++) {
        regs.push({
          instanceId: `${s.service.split('.')[1]}-${i + 1}`,
          service: s.service,
          version: '1.0.0',
          group: 'buy-chain',
          host: '127.0.0.1',
          port: 7600 + regs.length,
          weight: 100,
          tags: i === 0 ? ['stable'] : ['canary'],
          metadata: {},
        });
      }
    }
    const synthetic = Array.from(
      { length: options.services ?? 0 },
      (_, i) => `svc-${String(i).padStart(3, '0')}`,
    );
    for (const name of synthetic) {
      for (let i = 0; i < (options.instancesPerService ?? 2); i++) {
        regs.push({
          instanceId: `${name}-${i}`,
          service: name,
          version: '1.0.0',
          group: 'fleet',
          host: `10.1.${Math.floor(regs.length / 250)}.${regs.length % 250}`,
          port: 8000 + i,
          weight: 100,
          tags: [],
          metadata: {},
        });
      }
    }
    for (let i = 0; i < regs.length; i += 100) {
      await Promise.all(regs.slice(i, i + 100).map((r) => registry.register(r)));
    }

    // Metrics: the last 3 minutes back-filled, then one second at a time.
    const pushers = SHOP.flatMap((s) =>
      Array.from({ length: s.instances }, (_, i) => ({
        service: s.service,
        instance: `${s.service.split('.')[1]}-${i + 1}`,
        resource: s.resource,
        qps: s.qps / s.instances,
        rt: s.rt,
      })),
    );
    if (options.pushSynthetic === true) {
      for (const name of synthetic)
        pushers.push({
          service: name,
          instance: `${name}-0`,
          resource: `${name}.get`,
          qps: 20,
          rt: 2,
        });
    }
    const record = (p: (typeof pushers)[number], second: number) => {
      const wave = 1 + 0.25 * Math.sin(second / 20_000) + 0.1 * Math.sin(second / 3_000);
      const calls = Math.round(p.qps * wave);
      const error = Math.round(calls * 0.02 * (1 + Math.sin(second / 7_000)));
      const block = p.service === 'shop.gateway' ? Math.round(calls * 0.06) : 0;
      return {
        resource: p.resource,
        second,
        pass: calls,
        block,
        success: calls - error,
        error,
        rtAvg: p.rt * wave,
        rtP50: p.rt,
        rtP99: p.rt * 3.2 * wave,
        concurrency: Math.round((calls * p.rt) / 1000) + 1,
      };
    };
    const now = Math.floor(Date.now() / 1000) * 1000;
    await Promise.all(
      pushers.map((p) =>
        post('/api/v1/telemetry/metrics', {
          service: p.service,
          instance: p.instance,
          metrics: Array.from({ length: 180 }, (_, i) => record(p, now - (180 - i) * 1000)),
        }),
      ),
    );
    let last = now;
    const push = setInterval(() => {
      const second = Math.floor(Date.now() / 1000) * 1000 - 1000;
      if (second <= last) return;
      const seconds: number[] = [];
      for (let s = last + 1000; s <= second; s += 1000) seconds.push(s);
      last = second;
      for (const p of pushers) {
        post('/api/v1/telemetry/metrics', {
          service: p.service,
          instance: p.instance,
          metrics: seconds.map((s) => record(p, s)),
        }).catch(() => undefined);
      }
    }, 250);
    timers.push(push);

    // Traces: 40 buys over the last 4 minutes, every fifth a stress one.
    const traced = synthetic.slice(0, options.tracedServices ?? 0);
    const spans: Span[] = [];
    let traceId = '';
    for (let i = 0; i < 40; i++) {
      const trace = buyTrace(Date.now() - (40 - i) * 6000, i, i % 5 === 4, i === 0 ? traced : []);
      if (i === 1) traceId = trace[0]!.traceId;
      spans.push(...trace);
    }
    for (let i = 0; i < spans.length; i += 500) {
      await post('/api/v1/telemetry/spans', { spans: spans.slice(i, i + 500) });
    }

    // Config: versions, a gray release, guard rules, routing rules, a layout.
    const pool = { app: 'shop', group: 'db', key: 'pool' };
    await admin.config.publish(pool, {
      value: '{\n  "max": 20,\n  "idleMs": 10000\n}',
      author: 'ops',
    });
    await admin.config.publish(pool, {
      value: '{\n  "max": 40,\n  "idleMs": 10000\n}',
      author: 'ops',
      comment: 'flash sale',
    });
    await admin.config.publish(
      { app: 'shop', group: 'cache', key: 'products' },
      { value: '{"l1TtlMs":60000,"frozen":false}', author: 'ops' },
    );
    await admin.config.gray(
      { app: 'shop', group: 'cache', key: 'products' },
      {
        value: '{"l1TtlMs":5000,"frozen":true}',
        tags: ['canary'],
        author: 'ops',
        comment: 'try a frozen cache',
      },
    );
    await admin.config.publish(
      { app: 'shop', group: 'governance', key: 'guard-rules' },
      {
        value: JSON.stringify(GUARD_RULES, null, 2),
        schema: { $peak: 'guard-rules' },
        author: 'ops',
      },
    );
    await admin.config.publish(
      { app: 'shop', group: 'governance', key: 'rpc-routes' },
      {
        value: JSON.stringify(
          [{ service: 'shop.order', method: 'place', when: 'userId % 100 < 10', tag: 'canary' }],
          null,
          2,
        ),
        schema: { $peak: 'rpc-routes' },
        author: 'ops',
      },
    );
    await admin.config.publish(
      { app: 'shop', group: 'data', key: 'layout' },
      { value: JSON.stringify(LAYOUT, null, 2), author: 'ops' },
    );

    // MQ: topics, messages, a consuming group, a group left behind, a dead letter.
    await admin.mq.createTopic({ name: 'shop-order-placed', queues: 4 });
    await admin.mq.createTopic({ name: 'shop-audit', queues: 2 });
    for (let i = 0; i < 30; i++) {
      await producer.send('shop-order-placed', {
        body: JSON.stringify({ orderId: 1000 + i, buyerId: i % 7, sku: 'flash-phone' }),
        tag: i % 3 === 0 ? 'vip' : 'regular',
        keys: [`order-${1000 + i}`, `buyer-${i % 7}`],
      });
    }
    const fast = { waitMs: 200, invisibleMs: 2000, backoffMs: [100] as const, maxRetries: 1 };
    let consumed = 0;
    consumers.push(
      new Consumer({
        servers: url,
        group: 'shop-points',
        topic: 'shop-order-placed',
        ...fast,
        handler: () => void consumed++,
      }).start(),
    );
    const dlqGroup = 'shop-audit-writer';
    const poison = await producer.send('shop-audit', {
      body: '{"event":"malformed"',
      tag: 'audit',
      keys: ['audit-1'],
    });
    consumers.push(
      new Consumer({
        servers: url,
        group: dlqGroup,
        topic: 'shop-audit',
        ...fast,
        handler: () => {
          throw new Error('cannot parse the audit event');
        },
      }).start(),
    );
    await waitFor('the poison message in the DLQ', async () =>
      (await admin.mq.deadLetters(dlqGroup)).some((m) => m.id === poison.id),
    );
    await waitFor('the points group consumed', async () => consumed >= 30);
    // A group that stops, leaving backlog behind it.
    const lagging = new Consumer({
      servers: url,
      group: 'shop-reports',
      topic: 'shop-order-placed',
      ...fast,
      handler: () => undefined,
    }).start();
    await waitFor('the reports group subscribed', async () =>
      (await admin.mq.stats()).groups.some((g) => g.group === 'shop-reports'),
    );
    await lagging.close();
    for (let i = 0; i < 12; i++) {
      await producer.send('shop-order-placed', {
        body: `{"orderId":${2000 + i}}`,
        tag: 'regular',
        keys: [`order-${2000 + i}`],
      });
    }

    // Alerts: one that fires (order p99 over 5 ms), one that does not.
    await admin.alerts.putRule('order-p99', {
      kind: 'p99',
      service: 'shop.order',
      threshold: 5,
      minQps: 0,
      windowSeconds: 600,
      forSeconds: 0,
    });
    await admin.alerts.putRule('gateway-errors', {
      kind: 'error-rate',
      service: 'shop.gateway',
      threshold: 0.5,
      windowSeconds: 60,
    });
    await waitFor('the p99 rule firing', async () =>
      (await admin.alerts.rules()).some((r) => r.name === 'order-p99' && r.firing),
    );
    return {
      server,
      url,
      token,
      admin,
      orderInstance: 'order-1',
      traceId,
      dlqGroup,
      dlqMessageId: poison.id,
      stop,
    };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}
