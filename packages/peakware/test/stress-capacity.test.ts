/**
 * Capacity on a real control plane: a probe raises one registered instance's weight through
 * the registry; the traffic the instance gets follows its weight (the test's balancer reads
 * the weight back from the registry: weight / 5 requests/s), and the instance serves one
 * request at a time, so past its pace the queue breaks the p99 SLA. The probe stops at the
 * first failing step, restores the weight and keeps the max QPS in the control plane; then
 * `peak capacity plan` reads the call graph from telemetry (spans pushed as the SDK does)
 * and its instance counts equal the hand computation from the measured figure.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { AdminClient } from '../src/admin/index.js';
import { rootCommand } from '../src/cli/commands/index.js';
import { runCli } from '../src/cli/run-cli.js';
import { HttpRegistry } from '../src/registry/index.js';
import { PeakServer } from '../src/server/index.js';
import {
  type CapacityPlan,
  constantRate,
  defineScenario,
  httpStep,
  probeCapacity,
  startRun,
} from '../src/stress/index.js';
import { bearer, useLocalCredential } from './support/credentials.js';

describe('capacity: probe one instance, plan the chain', { timeout: 120_000 }, () => {
  let dataDir: string;
  let server: PeakServer;
  let admin: AdminClient;
  let registry: HttpRegistry;
  let instance: http.Server;
  let target: string;

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-stress-cap-'));
    server = await PeakServer.start({ dataDir, port: 0 });
    useLocalCredential(server);
    admin = new AdminClient({ servers: [server.info.url], token: server.info.adminToken! });
    // One request at a time, 8 ms each: at most 125/s, slower on a busy machine; past its pace
    // the queue grows by the excess every second (2 s at 320/s: a p99 of seconds).
    let busyUntil = 0;
    instance = http.createServer((req, res) => {
      req.resume();
      const start = Math.max(Date.now(), busyUntil);
      busyUntil = start + 8;
      setTimeout(() => res.end('ok'), busyUntil - Date.now());
    });
    await new Promise<void>((r) => instance.listen(0, '127.0.0.1', r));
    const port = (instance.address() as AddressInfo).port;
    target = `http://127.0.0.1:${port}`;
    registry = new HttpRegistry({ servers: [server.info.url] });
    const base = {
      service: 'inventory',
      version: '1.0.0',
      group: 'default',
      host: '127.0.0.1',
      port,
      tags: [],
      metadata: {},
    };
    await registry.register({ ...base, instanceId: 'inv-1', weight: 100 });
    await registry.register({ ...base, instanceId: 'inv-2', weight: 100, port: port + 1 });
  });

  after(async () => {
    await registry?.close();
    instance?.closeAllConnections();
    instance?.close();
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  const weightOf = async (id: string) =>
    (await admin.registry.instances()).find((i) => i.instanceId === id)?.weight ?? -1;

  it('raises the weight until the p99 SLA breaks, restores it, and plans from the measured figure', async () => {
    await fetch(target).then((r) => r.text()); // warm the instance
    const seen: number[] = [];
    const result = await probeCapacity(
      {
        currentWeight: () => weightOf('inv-1'),
        setWeight: async (w) => {
          await admin.registry.weight('inv-1', w);
        },
        measure: async () => {
          const weight = await weightOf('inv-1');
          seen.push(weight);
          const report = await startRun(
            defineScenario({
              name: 'probe-step',
              target,
              stress: false,
              load: constantRate(weight / 5, 2),
              steps: [httpStep({ name: 'get', path: '/' })],
            }),
          ).done;
          return {
            qps: report.totals.throughput,
            p99Ms: report.latency.p99Ms,
            errorRate: report.totals.errorRate,
          };
        },
      },
      { sla: { p99Ms: 1000, errorRate: 0.01 }, weights: [100, 200, 400, 800, 1600, 3200] },
    );
    assert.deepEqual(
      seen,
      [100, 200, 400, 800, 1600, 3200].slice(0, seen.length),
      'the load followed the weight',
    );
    assert.equal(result.stoppedBy, 'sla', JSON.stringify(result.steps));
    assert.equal(result.steps.at(-1)?.passed, false);
    assert.ok(result.steps.slice(0, -1).every((s) => s.passed));
    const passed = result.steps.filter((s) => s.passed);
    assert.ok(passed.length >= 1, JSON.stringify(result.steps));
    assert.equal(result.maxQps, Math.max(...passed.map((s) => s.qps)));
    assert.ok(result.maxQps > 0 && result.maxQps <= 125 * 1.1, `max QPS ${result.maxQps}`);
    assert.equal(await weightOf('inv-1'), 100, 'the weight is back');

    await admin.stress.putCapacity({
      service: 'inventory',
      instance: 'inv-1',
      maxQps: result.maxQps,
      sla: { p99Ms: 1000, errorRate: 0.01 },
      steps: result.steps,
    });
    await admin.stress.putCapacity({
      service: 'order',
      instance: 'ord-1',
      maxQps: 300,
      sla: { p99Ms: 200, errorRate: 0.01 },
      steps: [],
    });
    const kept = await admin.stress.capacity();
    assert.deepEqual(
      kept.map((c) => [c.service, c.maxQps]),
      [
        ['inventory', result.maxQps],
        ['order', 300],
      ],
    );

    // The call graph: 100 orders; each calls inventory twice and coupon every other time.
    const spans = [];
    const nowUs = Date.now() * 1000;
    const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');
    let id = 1;
    for (let t = 0; t < 100; t++) {
      const traceId = hex(t + 1, 32);
      const orderServer = hex(id++, 16);
      spans.push({
        traceId,
        spanId: orderServer,
        name: 'place',
        kind: 'server',
        service: 'order',
        startUs: nowUs,
        durationUs: 1000,
      });
      const calls = t % 2 === 0 ? ['inventory', 'inventory', 'coupon'] : ['inventory', 'inventory'];
      for (const callee of calls) {
        const client = hex(id++, 16);
        spans.push({
          traceId,
          spanId: client,
          parentSpanId: orderServer,
          name: `${callee}.call`,
          kind: 'client',
          service: 'order',
          peerService: callee,
          startUs: nowUs,
          durationUs: 500,
        });
        spans.push({
          traceId,
          spanId: hex(id++, 16),
          parentSpanId: client,
          name: 'handle',
          kind: 'server',
          service: callee,
          startUs: nowUs,
          durationUs: 400,
        });
      }
    }
    const res = await fetch(`${server.info.url}/api/v1/telemetry/spans`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer() },
      body: JSON.stringify({ spans }),
    });
    assert.equal(res.status, 200, await res.text());

    let out = '';
    const stdout = new PassThrough();
    stdout.on('data', (b) => {
      out += b;
    });
    const code = await runCli(
      rootCommand,
      [
        'capacity',
        'plan',
        '--target',
        'order=1000/s',
        '--buffer',
        '0.25',
        '--server',
        server.info.url,
        // This server's folder, not a `.peak` an `npm start` left in the working directory
        // (the CLI would send that server's admin token here).
        '--data',
        dataDir,
        '--json',
      ],
      { stdout, stderr: new PassThrough(), env: {} },
    );
    assert.equal(code, 0, out);
    const plan = JSON.parse(out) as CapacityPlan;
    // By hand: inventory gets 2 calls an order, coupon 0.5; instances = ceil(QPS × 1.25 ÷ one instance's max).
    const row = (s: string) => plan.rows.find((r) => r.service === s);
    assert.equal(row('order')?.qps, 1000);
    assert.equal(row('order')?.instances, Math.ceil((1000 * 1.25) / 300)); // 5
    assert.equal(row('inventory')?.qps, 2000);
    assert.equal(row('inventory')?.instances, Math.ceil((2000 * 1.25) / result.maxQps));
    assert.equal(row('coupon')?.qps, 500);
    assert.equal(row('coupon')?.instances, undefined);
    assert.deepEqual(plan.unmeasured, ['coupon']);
  });
});
