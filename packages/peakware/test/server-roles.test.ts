/**
 * Roles split over nodes on one PostgreSQL: a full node and a broker-only node
 * (`roles: ['mq']`). The broker node serves the mq routes (a message sent to it is consumed
 * from it), answers 404 for the subsystems it does not serve, and says so in its info; an
 * unknown role is refused, naming the valid ones.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AdminClient } from '../src/admin/index.js';
import { ErrorCodes, isPeakError } from '../src/core/errors.js';
import { Consumer } from '../src/mq/consumer.js';
import { Producer } from '../src/mq/producer.js';
import { PeakServer, SERVER_ROLES } from '../src/server/peak-server.js';
import { bearer, useLocalCredential } from './support/credentials.js';

describe('peak server roles', { timeout: 120_000 }, () => {
  let full: PeakServer;
  let broker: PeakServer;
  const dirs: string[] = [];
  let token: string;

  before(async () => {
    for (let i = 0; i < 3; i++) dirs.push(await mkdtemp(path.join(os.tmpdir(), 'peak-roles-')));
    full = await PeakServer.start({ dataDir: dirs[0], port: 0 });
    token = full.info.adminToken!;
    // The SDK clients and reads below send the local app's credential (the nodes share it).
    useLocalCredential(full);
    broker = await PeakServer.start({
      dataDir: dirs[1],
      port: 0,
      postgresUrl: full.postgresUrl(),
      roles: ['mq'],
    });
  });

  after(async () => {
    await broker?.stop();
    await full?.stop();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('says which roles each node serves', async () => {
    assert.deepEqual(full.info.roles, SERVER_ROLES);
    assert.deepEqual(broker.info.roles, ['mq']);
    const info = await new AdminClient({ servers: broker.info.url }).system.info();
    assert.deepEqual(info.roles, ['mq']);
  });

  it('the broker node serves the mq routes: a message sent to it is consumed from it', async () => {
    const admin = new AdminClient({ servers: broker.info.url, token });
    await admin.mq.createTopic({ name: 'roles-orders', queues: 2 });
    const producer = new Producer({ servers: broker.info.url });
    const sent = await producer.send('roles-orders', { body: 'o-1', keys: ['o-1'] });
    let gotIt: (body: string) => void = () => undefined;
    const got = new Promise<string>((resolve) => {
      gotIt = resolve;
    });
    const consumer = new Consumer({
      servers: broker.info.url,
      group: 'roles-points',
      topic: 'roles-orders',
      waitMs: 500,
      handler: async (m) => gotIt(m.text()),
    }).start();
    try {
      assert.equal(await got, 'o-1');
      // The full node reads the same store: the message is there too.
      const seen = await new AdminClient({ servers: full.info.url }).mq.message(sent.id);
      assert.equal(seen.found, true);
    } finally {
      await consumer.close();
      await producer.close();
    }
  });

  it('answers 404 for a subsystem it does not serve; the full node serves it', async () => {
    const onBroker = await fetch(`${broker.info.url}/api/v1/registry/services`);
    assert.equal(onBroker.status, 404);
    await onBroker.body?.cancel();
    const onFull = await fetch(`${full.info.url}/api/v1/registry/services`, { headers: bearer() });
    assert.equal(onFull.status, 200);
    await onFull.body?.cancel();
  });

  it('refuses an unknown role, naming the valid ones', async () => {
    await assert.rejects(
      PeakServer.start({
        dataDir: dirs[2],
        port: 0,
        postgresUrl: full.postgresUrl(),
        roles: ['mq', 'brokerr'],
      }),
      (e: unknown) =>
        isPeakError(e, ErrorCodes.USAGE) &&
        /'brokerr'/.test((e as Error).message) &&
        SERVER_ROLES.every((r) => (e as Error).message.includes(r)),
    );
  });
});
