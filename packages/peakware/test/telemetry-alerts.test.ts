/**
 * SLA alerts end to end: a traced RPC service reports spans to a real peak server; a rule
 * "p99 of order < 100 ms while QPS ≥ 5, for 1 s" fires (event + webhook) under induced
 * latency and resolves after it; a silenced rule records events without calling the
 * webhook; rule changes need the admin token and bad rules are refused clearly.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';
import { InMemoryRegistry } from '../src/registry/in-memory-registry.js';
import { defineService, RpcClient, RpcServer } from '../src/rpc/index.js';
import { PeakServer } from '../src/server/index.js';
import {
  BatchSpanProcessor,
  ControlPlaneSpanExporter,
  rpcTracingFilter,
  Tracer,
} from '../src/telemetry/index.js';
import { useLocalCredential } from './support/credentials.js';
import { waitFor } from './support/wait.js';
import { startWebhookSink, type WebhookSink } from './support/webhook-sink.js';

const order = defineService({
  name: 'shop.order',
  version: '1.0.0',
  methods: { create: { input: z.object({}), output: z.boolean() } },
});

interface Hook {
  rule: string;
  state: string;
  value: number;
}

describe('telemetry SLA alerts', { timeout: 120_000 }, () => {
  let dataDir: string;
  let server: PeakServer;
  let webhook: WebhookSink | undefined;
  let webhookUrl: string;
  const hooks: Hook[] = [];
  let latencyMs = 2;
  let stop = false;
  let load: Promise<unknown> | undefined;
  const closers: (() => Promise<void>)[] = [];

  const api = async (method: string, p: string, body?: unknown, token = server.info.adminToken) => {
    const res = await fetch(`${server.info.url}${p}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(10_000),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-telemetry-alerts-'));
    server = await PeakServer.start({ dataDir, port: 0, telemetry: { alertIntervalMs: 200 } });
    useLocalCredential(server);
    webhook = await startWebhookSink(hooks);
    webhookUrl = webhook.url;

    const registry = new InMemoryRegistry();
    const processor = new BatchSpanProcessor({
      exporter: new ControlPlaneSpanExporter({ servers: server.info.url }),
      flushIntervalMs: 50,
    });
    const tracer = new Tracer({ service: 'order', sink: processor });
    const provider = new RpcServer({ registry, filters: [rpcTracingFilter(tracer)] }).addService(
      order,
      {
        create: async () => {
          await new Promise((r) => setTimeout(r, latencyMs));
          return true;
        },
      },
    );
    await provider.start();
    const client = new RpcClient({ registry, warmupMs: 0 });
    const proxy = client.service(order);
    load = Promise.all(
      Array.from({ length: 4 }, async () => {
        while (!stop) {
          await proxy.create({}).catch(() => undefined);
          await new Promise((r) => setTimeout(r, 10));
        }
      }),
    );
    closers.push(async () => {
      stop = true;
      await load;
      await client.close();
      await provider.stop();
      await processor.shutdown();
    });
  });

  after(async () => {
    for (const close of closers) await close().catch(() => {});
    await webhook?.close();
    await server?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('refuses rule changes without the admin token and bad rules with a clear message', async () => {
    const rule = { service: 'order', kind: 'p99', threshold: 25, windowSeconds: 2 };
    assert.equal((await api('PUT', '/api/v1/telemetry/alerts/rules/x', rule, '')).status, 401);
    const bad = await api('PUT', '/api/v1/telemetry/alerts/rules/x', {
      ...rule,
      kind: 'error-rate',
      threshold: 2,
    });
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(bad.body), /fraction 0\.\.1/);
    assert.equal(
      (await api('PUT', '/api/v1/telemetry/alerts/rules/x', { ...rule, kind: 'median' })).status,
      400,
    );
  });

  it('fires under induced latency and resolves after it', async () => {
    const put = await api('PUT', '/api/v1/telemetry/alerts/rules/order-p99', {
      service: 'order',
      kind: 'p99',
      // Far above what a loaded CI machine adds to a 2 ms call, far below the induced 600 ms.
      threshold: 400,
      minQps: 2,
      windowSeconds: 2,
      forSeconds: 1,
      webhook: webhookUrl,
    });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(hooks.length, 0, 'no alert while p99 is a few ms');

    latencyMs = 600;
    const induced = Date.now();
    await waitFor('the fired webhook', () => hooks.length >= 1);
    assert.ok(Date.now() - induced >= 1000, 'not before the for-duration');
    assert.equal(hooks[0]?.state, 'fired');
    assert.equal(hooks[0]?.rule, 'order-p99');
    assert.ok((hooks[0]?.value ?? 0) > 400);
    const rules = await api('GET', '/api/v1/telemetry/alerts/rules');
    assert.equal((rules.body.rules as { firing: boolean }[])[0]?.firing, true);

    latencyMs = 2;
    await waitFor('the resolved webhook', () => hooks.length >= 2);
    assert.equal(hooks[1]?.state, 'resolved');
    const events = await api('GET', '/api/v1/telemetry/alerts/events?rule=order-p99');
    const list = events.body.events as { state: string; delivery: string }[];
    assert.deepEqual(
      list.map((e) => e.state),
      ['resolved', 'fired'],
    );
    assert.equal(hooks.length, 2);
  });

  it('records events of a silenced rule without calling its webhook', async () => {
    const s = await api('POST', '/api/v1/telemetry/alerts/rules/order-p99/silence', { minutes: 5 });
    assert.equal(s.status, 200, JSON.stringify(s.body));
    latencyMs = 600;
    let fired: { state: string; delivery: string } | undefined;
    await waitFor('the silenced rule to fire again', async () => {
      const events = await api('GET', '/api/v1/telemetry/alerts/events?rule=order-p99&limit=1');
      const first = (events.body.events as { state: string; delivery: string }[])[0];
      if (first?.state === 'fired') fired = first;
      return fired !== undefined;
    });
    latencyMs = 2;
    assert.equal(fired?.delivery, 'silenced');
    assert.equal(hooks.length, 2, 'the webhook was not called');
    assert.equal((await api('DELETE', '/api/v1/telemetry/alerts/rules/order-p99')).status, 200);
    assert.equal((await api('DELETE', '/api/v1/telemetry/alerts/rules/order-p99')).status, 404);
  });
});
