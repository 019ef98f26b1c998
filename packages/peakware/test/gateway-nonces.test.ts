/**
 * The gateway's shared nonce stores against their real engines: Redis (a private
 * redis-server) and the control plane's PostgreSQL. A nonce is fresh once per key within its
 * window, whichever gateway claims it, including twice in one batch. With Redis the first
 * claim of an idle store goes alone (SET NX) and the two after it in one batch (the script),
 * so both paths are checked against each other.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type RedisServerProcess, startRedisServer } from '../src/cache/index.js';
import { ControlPlaneClient } from '../src/core/index.js';
import {
  ControlPlaneNonceStore,
  type NonceStore,
  RedisNonceStore,
} from '../src/gateway/nonce-store.js';
import { PeakServer } from '../src/server/index.js';

describe('gateway nonce stores', { timeout: 120_000 }, () => {
  let redis: RedisServerProcess;
  let server: PeakServer;
  let dataDir: string;
  const stores: Record<string, NonceStore[]> = {};

  before(async () => {
    redis = await startRedisServer({});
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-gw-nonces-'));
    server = await PeakServer.start({ dataDir, port: 0 });
    const http = () =>
      new ControlPlaneClient({ servers: server.info.url, token: server.info.adminToken ?? '' });
    // Two of each: two gateways sharing one store.
    stores.redis = [
      await RedisNonceStore.connect(redis.url),
      await RedisNonceStore.connect(redis.url),
    ];
    stores.postgres = [new ControlPlaneNonceStore(http()), new ControlPlaneNonceStore(http())];
  });

  after(async () => {
    for (const list of Object.values(stores)) for (const s of list) await s.close();
    await redis?.stop();
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  for (const kind of ['redis', 'postgres']) {
    it(`${kind}: fresh once per key across gateways, within a batch too`, async () => {
      const [a, b] = stores[kind]!;
      const first = await Promise.all([
        a!.claim('gk_1', 'nonce-aaaa', 60_000),
        a!.claim('gk_1', 'nonce-aaaa', 60_000),
        a!.claim('gk_2', 'nonce-aaaa', 60_000),
      ]);
      assert.deepEqual(first, [true, false, true]);
      assert.equal(
        await b!.claim('gk_1', 'nonce-aaaa', 60_000),
        false,
        'the other gateway sees it',
      );
      assert.equal(await b!.claim('gk_1', 'nonce-bbbb', 60_000), true);
    });
  }
});
