/**
 * "Nothing acknowledged to a producer is ever lost": a broker node runs as its own
 * `peak server` process on a shared PostgreSQL; while a producer sends and a consumer
 * group consumes over real sockets, the broker is killed with SIGKILL and restarted on the
 * same port. Every message whose send was acknowledged must be consumed at least once.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BrokerClient, Consumer, Producer } from '../src/mq/index.js';
import { PeakServer } from '../src/server/peak-server.js';
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

describe('mq reliability: kill -9 the broker during produce + consume', {
  timeout: 240_000,
}, () => {
  let db: PeakServer;
  let dbDir: string;
  let brokerDir: string;
  let pgUrl: string;
  let port: number;
  let broker: PeakProcess | undefined;

  const startBroker = async (): Promise<PeakProcess> => {
    const p = spawnPeak([
      'server',
      '--postgres',
      pgUrl,
      '--data',
      brokerDir,
      '--port',
      String(port),
      '--json',
      '--log-level',
      'warn',
    ]);
    await p.waitFor('ready', 60_000);
    return p;
  };

  before(async () => {
    dbDir = await mkdtemp(path.join(os.tmpdir(), 'peak-mq-rel-db-'));
    brokerDir = await mkdtemp(path.join(os.tmpdir(), 'peak-mq-rel-broker-'));
    db = await PeakServer.start({ dataDir: dbDir, port: 0 });
    useLocalCredential(db);
    const info = db.info.postgres;
    assert.equal(info.mode, 'embedded');
    const password = (await readFile(path.join(dbDir, 'postgres-password'), 'utf8')).trim();
    pgUrl = `postgres://peak:${encodeURIComponent(password)}@${info.host}:${info.port}/postgres`;
    port = await freePort();
    const admin = new BrokerClient({ servers: db.info.url, token: db.info.adminToken! });
    await admin.call('POST', '/api/v1/mq/topics', { name: 'orders', queues: 4 });
  });

  after(async () => {
    if (broker !== undefined) {
      killGroup(broker.child);
      await broker.exited;
    }
    await db?.stop();
    await rm(dbDir, { recursive: true, force: true });
    await rm(brokerDir, { recursive: true, force: true });
  });

  it('consumes every acknowledged message at least once across a broker crash', async () => {
    broker = await startBroker();
    const url = `http://127.0.0.1:${port}`;
    const producer = new Producer({ servers: url });
    const acked = new Set<number>();
    const consumed = new Map<number, number>();
    const senders = 8;
    // Failed send batches per sender: a batch fails when the broker cannot store it (the
    // client's 3 tries span about 600 ms, the broker stays down for more than 1 s).
    const failedBatches = new Array<number>(senders).fill(0);
    const consumer = new Consumer({
      servers: url,
      group: 'reconcile',
      topic: 'orders',
      concurrency: 64,
      waitMs: 500,
      invisibleMs: 2000,
      handler: (m) => {
        const n = Number(m.text());
        consumed.set(n, (consumed.get(n) ?? 0) + 1);
      },
    }).start();

    let next = 0;
    let producing = true;
    const sending = Array.from({ length: senders }, async (_, sender) => {
      while (producing) {
        const batch = Array.from({ length: 20 }, () => next++);
        try {
          await Promise.all(
            batch.map(async (n) => {
              await producer.send('orders', { body: String(n), keys: [`n-${n}`] });
              acked.add(n);
            }),
          );
        } catch {
          failedBatches[sender]!++;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    });

    await waitFor(
      'some traffic before the crash',
      () => acked.size > 500 && consumed.size > 200,
      60_000,
    );
    killGroup(broker.child, 'SIGKILL');
    const killed = await broker.exited;
    assert.equal(killed.signal, 'SIGKILL');
    const ackedAtKill = acked.size;
    await new Promise((r) => setTimeout(r, 1000));
    broker = await startBroker();
    await waitFor('traffic after the restart', () => acked.size > ackedAtKill + 500, 60_000);
    producing = false;
    await Promise.all(sending);
    await producer.close();

    await waitFor(
      `all ${acked.size} acknowledged messages consumed`,
      () => [...acked].every((n) => consumed.has(n)),
      90_000,
    ).catch((err: Error) => {
      const missing = [...acked].filter((n) => !consumed.has(n));
      throw new Error(
        `${err.message}; ${missing.length} missing, e.g. ${missing.slice(0, 10).join(', ')}`,
      );
    });
    await consumer.close();
    const duplicates = [...consumed.values()].filter((c) => c > 1).length;
    const extra = [...consumed.keys()].filter((n) => !acked.has(n)).length;
    // Counts reconcile: consumed = acked + (sends whose ack was lost in the crash), each
    // at least once; the duplicates are redeliveries of un-acked deliveries.
    assert.ok(consumed.size >= acked.size);
    assert.ok(extra <= next - acked.size, 'nothing consumed that was never sent');
    // Every sender kept sending through the downtime (over 1 s, longer than a send's tries),
    // so each saw the crash as failed sends: the producers really were cut off mid-stream,
    // and a failed send surfaced as an error instead of being reported as stored.
    assert.ok(
      failedBatches.every((n) => n > 0),
      `every sender saw failed sends during the downtime: ${failedBatches.join(', ')}`,
    );
    process.stderr.write(
      `# reliability: acked ${acked.size}, consumed ${consumed.size} distinct (${extra} unacked-but-stored), ${duplicates} redelivered, failed send batches per sender ${failedBatches.join(', ')}\n`,
    );
  });
});
