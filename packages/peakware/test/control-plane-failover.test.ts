/**
 * Failover for every SDK client: two control-plane nodes on one PostgreSQL, node B a
 * `peak server` process listed first by every client, node A in this process. With B
 * killed by SIGKILL, each client keeps working through A: the registry (a registration and
 * its push to a watching consumer), the config center (a change pushed to a watching
 * client), the MQ producer and consumer (every acknowledged message consumed; the consumer
 * long-polls with its default 20 s wait, so a poll is in flight on B when it dies), the
 * guard's cluster token client (token batches answered through A), and the span exporter.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AdminClient } from '../src/admin/index.js';
import { ConfigClient } from '../src/config/index.js';
import { HttpTokenClient } from '../src/guard/index.js';
import { Consumer, Producer } from '../src/mq/index.js';
import { HttpRegistry, type ServiceInstance } from '../src/registry/index.js';
import { PeakServer } from '../src/server/peak-server.js';
import { ControlPlaneSpanExporter } from '../src/telemetry/index.js';
import { useLocalCredential } from './support/credentials.js';
import { killGroup, type PeakProcess, spawnPeak } from './support/peak-process.js';
import { waitFor } from './support/wait.js';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}

const hex = (n: number) =>
  Array.from({ length: n }, () => Math.floor(Math.random() * 16).toString(16)).join('');

describe('every SDK client fails over when a control-plane node is killed', {
  timeout: 180_000,
}, () => {
  let nodeA: PeakServer;
  let dirA: string;
  let dirB: string;
  let nodeB: PeakProcess | undefined;

  before(async () => {
    dirA = await mkdtemp(path.join(os.tmpdir(), 'peak-failover-a-'));
    dirB = await mkdtemp(path.join(os.tmpdir(), 'peak-failover-b-'));
    nodeA = await PeakServer.start({ dataDir: dirA, port: 0 });
    // Every SDK client below sends the local app's credential; node B shares the database.
    useLocalCredential(nodeA);
  });

  after(async () => {
    if (nodeB !== undefined) {
      killGroup(nodeB.child);
      await nodeB.exited;
    }
    await nodeA?.stop();
    await rm(dirA, { recursive: true, force: true });
    await rm(dirB, { recursive: true, force: true });
  });

  it('registry, config, mq and telemetry keep working through the other node', async (t) => {
    const info = nodeA.info.postgres;
    assert.equal(info.mode, 'embedded');
    const password = (await readFile(path.join(dirA, 'postgres-password'), 'utf8')).trim();
    const pgUrl = `postgres://peak:${encodeURIComponent(password)}@${info.host}:${info.port}/postgres`;
    const portB = await freePort();
    nodeB = spawnPeak([
      'server',
      '--postgres',
      pgUrl,
      '--data',
      dirB,
      '--port',
      String(portB),
      '--json',
      '--log-level',
      'warn',
    ]);
    await nodeB.waitFor('ready', 60_000);
    const servers = [`http://127.0.0.1:${portB}`, nodeA.info.url];
    const admin = new AdminClient({ servers: nodeA.info.url, token: nodeA.info.adminToken! });
    await admin.mq.createTopic({ name: 'failover', queues: 2 });
    await admin.config.publish(
      { app: 'failover', group: 'default', key: 'mode' },
      { value: 'before', format: 'text', author: 'test' },
    );

    const providerRegistry = new HttpRegistry({ servers, leaseMs: 3000 });
    const consumerRegistry = new HttpRegistry({ servers });
    const config = new ConfigClient({ servers, app: 'failover' });
    const producer = new Producer({ servers });
    const consumed = new Set<string>();
    const consumer = new Consumer({
      servers,
      group: 'failover',
      topic: 'failover',
      handler: (m) => {
        consumed.add(m.text());
      },
    });
    const exporter = new ControlPlaneSpanExporter({ servers });
    const tokens = new HttpTokenClient({ servers, namespace: 'failover', timeoutMs: 2000 });
    /** Takes cluster tokens until `n` token requests in all were answered. */
    const tokensAnswered = (n: number) =>
      waitFor(
        () => `${n} token requests answered (${tokens.counters.answered} so far)`,
        async () => {
          tokens.acquire('failover.buy', 1000, 'global', 1);
          await new Promise((r) => setTimeout(r, 20));
          return tokens.counters.answered >= n;
        },
      );
    const instance = (id: string) => ({
      instanceId: id,
      service: 'test.failover',
      version: '1.0.0',
      group: 'default',
      host: '127.0.0.1',
      port: 9,
      weight: 1,
      tags: [],
      metadata: {},
    });
    const span = () => ({
      traceId: hex(32),
      spanId: hex(16),
      name: 'failover.probe',
      kind: 'internal' as const,
      service: 'failover-test',
      startUs: Date.now() * 1000,
      durationUs: 10,
      error: false,
      stress: false,
      attributes: {},
    });
    let list: readonly ServiceInstance[] = [];
    const watch = consumerRegistry.subscribe('default/test.failover:1.0.0', (l) => {
      list = l;
    });
    const acked: string[] = [];
    try {
      consumer.start();
      assert.equal(await config.start(10_000), 'server');
      await providerRegistry.register(instance('before'));
      await waitFor('the first instance pushed', () => list.length === 1);
      for (let i = 0; i < 20; i++) {
        await producer.send('failover', { body: `before-${i}` });
        acked.push(`before-${i}`);
      }
      await exporter.export([span()]);
      await tokensAnswered(1);
      await waitFor('messages before the kill consumed', () => acked.every((m) => consumed.has(m)));

      killGroup(nodeB.child, 'SIGKILL');
      await nodeB.exited;
      nodeB = undefined;

      // Each client, through node A only.
      await providerRegistry.register(instance('after'));
      await waitFor('a registration after the kill pushed to the watcher', () => list.length === 2);
      await admin.config.publish(
        { app: 'failover', group: 'default', key: 'mode' },
        { value: 'after', format: 'text', author: 'test' },
      );
      await waitFor('the config change pushed', () => config.getString('mode') === 'after');
      const failedSends: unknown[] = [];
      for (let i = 0; i < 50; i++) {
        try {
          await producer.send('failover', { body: `after-${i}` });
          acked.push(`after-${i}`);
        } catch (err) {
          failedSends.push(err);
        }
      }
      await exporter.export([span()]);
      await tokensAnswered(tokens.counters.answered + 3);
      await waitFor(`all ${acked.length} acknowledged messages consumed`, () =>
        acked.every((m) => consumed.has(m)),
      );
      t.diagnostic(
        `after the kill: ${failedSends.length} failed sends, ${consumed.size} consumed of ${acked.length} acked; token requests ${tokens.counters.answered} answered, ${tokens.counters.failed} failed`,
      );
      assert.deepEqual(failedSends.map(String), [], 'no send failed after the kill');
    } finally {
      tokens.close();
      watch.close();
      await consumer.close();
      await producer.close();
      await config.close();
      await providerRegistry.close();
      await consumerRegistry.close();
    }
  });
});
