/**
 * The txn coordinator calls branches with a signed caller identity of its own (app
 * `peak-txn`): a provider that requires verified callers, with an authority rule letting
 * only the coordinator call its branch methods, serves a saga's steps and sees the
 * coordinator as the caller; an app cannot be created under that name to pass for it.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';
import { AdminClient } from '../src/admin/admin-client.js';
import { ErrorCodes, isPeakError } from '../src/core/errors.js';
import { Guard, guardRpcFilter } from '../src/guard/index.js';
import { HttpRegistry } from '../src/registry/http-registry.js';
import { defineService, definitionKey, RpcServer } from '../src/rpc/index.js';
import { IdentityVerifier } from '../src/security/index.js';
import { PeakServer } from '../src/server/index.js';
import { TxnClient } from '../src/txn/index.js';
import { useLocalCredential } from './support/credentials.js';

const wallet = defineService({
  name: 'shop.wallet',
  version: '1.0.0',
  methods: {
    pay: { input: z.object({ amount: z.number() }), output: z.object({ caller: z.string() }) },
    refund: { input: z.object({ amount: z.number() }), output: z.object({ caller: z.string() }) },
  },
});

describe('the txn coordinator’s caller identity', { timeout: 60_000 }, () => {
  let dataDir: string;
  let server: PeakServer;
  let registry: HttpRegistry;
  let verifier: IdentityVerifier;
  let provider: RpcServer;
  const callers: (string | undefined)[] = [];
  const guard = new Guard({
    rules: {
      authority: [{ resource: 'shop.wallet.pay', strategy: 'allow', origins: ['peak-txn'] }],
    },
  });

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-txn-identity-'));
    server = await PeakServer.start({ dataDir, port: 0 });
    useLocalCredential(server);
    registry = new HttpRegistry({ servers: server.info.url });
    verifier = new IdentityVerifier({ servers: server.info.url, unknownKeyRetryMs: 0 });
    await verifier.start();
    provider = new RpcServer({
      registry,
      identity: { verifier, required: true },
      filters: [guardRpcFilter(guard)],
    });
    provider.addService(wallet, {
      pay: (_input, ctx) => {
        callers.push(ctx.callerApp);
        return { caller: ctx.callerApp ?? '' };
      },
      refund: (_input, ctx) => ({ caller: ctx.callerApp ?? '' }),
    });
    await provider.start();
  });

  after(async () => {
    await provider?.stop();
    await registry?.close();
    verifier?.close();
    guard.close();
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('a provider requiring verified callers serves the coordinator’s branch calls as peak-txn', async () => {
    const txn = new TxnClient({ servers: server.info.url });
    const key = definitionKey(wallet);
    const outcome = await txn.saga({
      steps: [
        {
          name: 'pay',
          action: { service: key, method: 'pay' },
          compensate: { service: key, method: 'refund' },
          payload: { amount: 5 },
          retries: 0,
        },
      ],
      timeoutMs: 20_000,
    });
    assert.equal(outcome.status, 'succeeded', JSON.stringify(outcome));
    assert.deepEqual(callers, ['peak-txn']);
    assert.deepEqual(outcome.results, { pay: { caller: 'peak-txn' } });
  });

  it('no app can be created under the coordinator’s name', async () => {
    const admin = new AdminClient({ servers: server.info.url, token: server.info.adminToken! });
    await assert.rejects(
      admin.apps.create('peak-txn', ['txn']),
      (err) => isPeakError(err, ErrorCodes.INVALID_ARGUMENT) && /peak-txn/.test(err.message),
    );
  });
});
