/**
 * A span flood while the collector hangs or is down: RPC calls over real sockets keep
 * completing, the exporter's memory stays bounded (at most maxQueueSize spans pending and
 * one batch in flight), and every span is accounted for as exported, pending or dropped.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';
import { InMemoryRegistry } from '../src/registry/in-memory-registry.js';
import { defineService, RpcClient, RpcServer } from '../src/rpc/index.js';
import {
  BatchSpanProcessor,
  ControlPlaneSpanExporter,
  rpcTracingFilter,
  Tracer,
} from '../src/telemetry/index.js';
import { waitFor } from './support/wait.js';

const echo = defineService({
  name: 'flood.echo',
  version: '1.0.0',
  methods: { ping: { input: z.object({ n: z.number() }), output: z.number() } },
});

async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

async function callMany(client: RpcClient, total: number, concurrency: number): Promise<number> {
  let next = 0;
  let ok = 0;
  const proxy = client.service(echo);
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const n = next++;
        if ((await proxy.ping({ n }, { timeoutMs: 10_000 })) === n) ok++;
      }
    }),
  );
  return ok;
}

describe('telemetry under a span flood', { timeout: 120_000 }, () => {
  let hung: http.Server;
  const held: http.ServerResponse[] = [];
  let hungUrl: string;

  before(async () => {
    // A collector that accepts connections and never answers.
    hung = http.createServer((_req, res) => {
      held.push(res);
    });
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
    hungUrl = `http://127.0.0.1:${(hung.address() as AddressInfo).port}`;
  });

  after(async () => {
    hung.closeAllConnections();
    await new Promise((r) => hung.close(r));
  });

  const setup = async (server: string) => {
    const registry = new InMemoryRegistry();
    const processor = new BatchSpanProcessor({
      exporter: new ControlPlaneSpanExporter({ servers: server, timeoutMs: 60_000 }),
      maxQueueSize: 256,
      maxBatchSize: 64,
      flushIntervalMs: 5,
    });
    const tracer = new Tracer({ service: 'flood', sink: processor });
    const provider = new RpcServer({ registry, filters: [rpcTracingFilter(tracer)] }).addService(
      echo,
      {
        ping: ({ n }) => n,
      },
    );
    await provider.start();
    const client = new RpcClient({ registry, warmupMs: 0, filters: [rpcTracingFilter(tracer)] });
    return {
      processor,
      tracer,
      close: async () => {
        await client.close();
        await provider.stop();
      },
      client,
    };
  };

  it('keeps serving calls and bounds memory while the collector hangs', async () => {
    const t = await setup(hungUrl);
    try {
      const ok = await callMany(t.client, 3000, 32);
      assert.equal(ok, 3000, 'every call completed');
      // A synchronous burst on the caller's stack: add never waits.
      for (let i = 0; i < 100_000; i++) t.tracer.startSpan('burst').end();
      const s = t.processor.stats();
      assert.ok(s.pending <= 256, `pending ${s.pending}`);
      assert.equal(s.exported, 0, 'the collector never answered');
      assert.ok(s.droppedFull > 100_000 - 256, `dropped ${s.droppedFull}`);
      // Every span is counted: one batch in flight + pending + dropped = all 106,000.
      assert.equal(s.queued + s.droppedFull, 3000 * 2 + 100_000);
      // One batch is out, waiting on the collector: a full one (64), or a smaller one when the
      // 5 ms flush timer fired before 64 spans had gathered (a busy machine), never more.
      const out = s.queued - s.pending;
      assert.ok(out >= 1 && out <= 64, `one batch is out, waiting on the collector: ${out} spans`);
      assert.ok(held.length >= 1, 'the exporter did reach the hung collector');
    } finally {
      await t.close();
    }
  });

  it('counts spans lost to an unreachable collector and keeps going', async () => {
    const t = await setup(`http://127.0.0.1:${await freePort()}`);
    try {
      assert.equal(await callMany(t.client, 2000, 32), 2000);
      await waitFor('failed exports to be counted', () => t.processor.stats().droppedExport > 0);
      const s = t.processor.stats();
      assert.equal(s.exported, 0);
      assert.equal(s.queued + s.droppedFull, 4000);
    } finally {
      await t.close();
    }
  });
});
