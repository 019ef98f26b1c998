/**
 * Callers that cannot be spoofed: apps trade their credentials for signed identities at a
 * real `peak server` (AppIdentity), RPC consumers present them once per connection, and a
 * provider verifies them offline with the control plane's public keys (IdentityVerifier).
 * The guard's authority rule on the provider sees the verified app only:
 *
 * - a client that sets another app's name (`app`, the `peak-caller` header) is refused by
 *   an authority rule, with its identity or without one;
 * - a forged, expired or missing identity is refused with PEAK_UNAUTHENTICATED naming why;
 * - keys rotate without breaking identities in use;
 * - the provider keeps verifying through a control-plane outage, until identities expire;
 * - the txn coordinator calls branches with an identity of its own (app `peak-txn`), so a
 *   provider requiring verified callers, with an authority rule naming it, serves a saga;
 *   no app can be created under that name.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';
import { AdminClient } from '../src/admin/admin-client.js';
import { ErrorCodes, isPeakError } from '../src/core/errors.js';
import {
  IDENTITY_AUDIENCE,
  newIdentityKeyPair,
  privateKeyOf,
  signIdentity,
} from '../src/core/identity-token.js';
import { Guard, guardRpcFilter } from '../src/guard/index.js';
import { HttpRegistry } from '../src/registry/http-registry.js';
import { InMemoryRegistry } from '../src/registry/in-memory-registry.js';
import {
  defineService,
  definitionKey,
  type Invocation,
  RpcClient,
  RpcServer,
} from '../src/rpc/index.js';
import { AppIdentity, IdentityVerifier } from '../src/security/index.js';
import { PeakServer } from '../src/server/index.js';
import { TxnClient } from '../src/txn/index.js';

const ledger = defineService({
  name: 'shop.ledger',
  version: '1.0.0',
  methods: {
    credit: {
      input: z.object({ points: z.number() }),
      output: z.object({ caller: z.string() }),
    },
  },
});

const wallet = defineService({
  name: 'shop.wallet',
  version: '1.0.0',
  methods: {
    pay: { input: z.object({ amount: z.number() }), output: z.object({ caller: z.string() }) },
    refund: { input: z.object({ amount: z.number() }), output: z.object({ caller: z.string() }) },
  },
});

const fixed = (token: string) => ({ current: () => token });

describe('RPC callers that cannot be spoofed', { timeout: 120_000 }, () => {
  let dataDir: string;
  let server: PeakServer;
  let admin: AdminClient;
  let gateway: AppIdentity;
  let evil: AppIdentity;
  let verifier: IdentityVerifier;
  let provider: RpcServer;
  const registry = new InMemoryRegistry();
  const clients: RpcClient[] = [];
  const seen: (string | undefined)[] = [];
  const guard = new Guard({
    rules: {
      authority: [{ resource: 'shop.ledger.credit', strategy: 'allow', origins: ['shop.gateway'] }],
    },
  });

  const client = (options: { app?: string; identity?: { current(): string | undefined } }) => {
    const c = new RpcClient({ registry, warmupMs: 0, cluster: 'failfast', ...options });
    clients.push(c);
    return c.service(ledger);
  };

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-rpc-identity-'));
    server = await PeakServer.start({ dataDir, port: 0 });
    admin = new AdminClient({ servers: server.info.url, token: server.info.adminToken! });
    const issue = async (name: string) =>
      (await admin.apps.create(name, ['telemetry:nothing'])).credential;
    gateway = new AppIdentity({ servers: server.info.url, token: await issue('shop.gateway') });
    evil = new AppIdentity({ servers: server.info.url, token: await issue('evil') });
    await gateway.start();
    await evil.start();
    verifier = new IdentityVerifier({ servers: server.info.url, unknownKeyRetryMs: 0 });
    await verifier.start();
    provider = new RpcServer({
      registry,
      identity: { verifier },
      filters: [
        async (inv: Invocation, next) => {
          seen.push(inv.caller);
          return next();
        },
        guardRpcFilter(guard),
      ],
    });
    provider.addService(ledger, {
      credit: (_input, ctx) => ({ caller: ctx.callerApp ?? '' }),
    });
    await provider.start();
  });

  after(async () => {
    for (const c of clients) await c.close();
    await provider?.stop();
    gateway?.close();
    evil?.close();
    verifier?.close();
    guard.close();
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('serves the app its identity proves, and the context says so', async () => {
    const r = await client({ app: 'shop.gateway', identity: gateway }).credit({ points: 1 });
    assert.equal(r.caller, 'shop.gateway');
    assert.equal(seen.at(-1), 'shop.gateway');
    assert.equal(gateway.app, 'shop.gateway');
  });

  it('a client that sets another app’s name is refused by the authority rule', async () => {
    // Its own identity says evil: the name it sets is ignored.
    await assert.rejects(
      client({ app: 'shop.gateway', identity: evil }).credit({ points: 1 }),
      (err) =>
        isPeakError(err, ErrorCodes.GUARD_BLOCKED) &&
        err.details.kind === 'authority' &&
        err.details.origin === 'evil',
    );
    // With nothing proving it, a provider that does not require identities serves it as
    // an unknown caller, which an allow list refuses too.
    const lenient = new RpcServer({
      registry,
      group: 'lenient',
      identity: { verifier, required: false },
      filters: [guardRpcFilter(guard)],
    });
    lenient.addService(ledger, { credit: (_i, ctx) => ({ caller: ctx.callerApp ?? '' }) });
    await lenient.start();
    try {
      const c = new RpcClient({ registry, warmupMs: 0, app: 'shop.gateway', group: 'lenient' });
      clients.push(c);
      await assert.rejects(
        c.service(ledger).credit({ points: 1 }),
        (err) =>
          isPeakError(err, ErrorCodes.GUARD_BLOCKED) &&
          err.details.kind === 'authority' &&
          err.details.origin === '',
      );
    } finally {
      await lenient.stop();
    }
  });

  it('refuses a missing, forged, foreign or expired identity with a clear error', async () => {
    const reason = (why: string) => (err: unknown) =>
      isPeakError(err, ErrorCodes.UNAUTHENTICATED) && err.details.reason === why;
    await assert.rejects(client({ app: 'shop.gateway' }).credit({ points: 1 }), (err) => {
      assert.ok(reason('missing')(err));
      assert.match((err as Error).message, /requires a verified caller identity/);
      return true;
    });
    // The gateway's identity with the app changed to itself by evil: the signature breaks.
    const [h, p, s] = evil.current()!.split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: 'shop.gateway' })).toString('base64url')}.${s}`;
    await assert.rejects(
      client({ identity: fixed(forged) }).credit({ points: 1 }),
      reason('forged'),
    );
    // Signed by a key the control plane never published.
    const stranger = newIdentityKeyPair();
    const foreign = signIdentity(
      { kid: stranger.kid, privateKey: privateKeyOf(stranger.privatePem) },
      { sub: 'shop.gateway', aud: IDENTITY_AUDIENCE, iat: 0, exp: 4_000_000_000, jti: 'f' },
    );
    await assert.rejects(
      client({ identity: fixed(foreign) }).credit({ points: 1 }),
      reason('unknown-key'),
    );
    // A real identity of the gateway, checked by a verifier whose clock is past its expiry.
    const late = new IdentityVerifier({
      servers: server.info.url,
      now: () => Date.now() + 3_600_000,
    });
    await late.start();
    const strict = new RpcServer({ registry, group: 'late', identity: { verifier: late } });
    strict.addService(ledger, { credit: () => ({ caller: '' }) });
    await strict.start();
    try {
      const c = new RpcClient({ registry, warmupMs: 0, group: 'late', identity: gateway });
      clients.push(c);
      await assert.rejects(c.service(ledger).credit({ points: 1 }), reason('expired'));
    } finally {
      await strict.stop();
      late.close();
    }
  });

  it('an operator token gets no identity, and a revoked app gets none either', async () => {
    const asAdmin = new AppIdentity({ servers: server.info.url, token: server.info.adminToken! });
    await assert.rejects(asAdmin.start(), (err) => isPeakError(err, ErrorCodes.FORBIDDEN));
    const gone = await admin.apps.create('gone', ['telemetry']);
    await admin.apps.revoke('gone');
    await assert.rejects(
      new AppIdentity({ servers: server.info.url, token: gone.credential }).start(),
      (err) => isPeakError(err, ErrorCodes.FORBIDDEN),
    );
  });

  it('keys rotate without breaking identities in use', async () => {
    const before = gateway.current()!;
    const { kid } = await admin.apps.rotateSigningKey();
    // A fresh identity is signed with the new key; the provider learns it on first sight.
    const fresh = new AppIdentity({
      servers: server.info.url,
      token: (await admin.apps.rotate('shop.gateway')).credential,
    });
    await fresh.start();
    const header = JSON.parse(Buffer.from(fresh.current()!.split('.')[0]!, 'base64url').toString());
    assert.equal(header.kid, kid);
    assert.equal((await client({ identity: fresh }).credit({ points: 1 })).caller, 'shop.gateway');
    // The identity signed with the old key still verifies.
    assert.equal(
      (await client({ identity: fixed(before) }).credit({ points: 1 })).caller,
      'shop.gateway',
    );
    fresh.close();
  });

  it('keeps verifying through a control-plane outage, on keys in hand', async () => {
    // A second node of the same control plane, which the verifier alone talks to.
    const dir2 = await mkdtemp(path.join(os.tmpdir(), 'peak-rpc-identity-2-'));
    const node2 = await PeakServer.start({
      dataDir: dir2,
      port: 0,
      postgresUrl: server.postgresUrl(),
    });
    const offline = new IdentityVerifier({ servers: node2.info.url });
    await offline.start();
    await node2.stop();
    await rm(dir2, { recursive: true, force: true });
    const cut = new RpcServer({ registry, group: 'cut', identity: { verifier: offline } });
    cut.addService(ledger, { credit: (_i, ctx) => ({ caller: ctx.callerApp ?? '' }) });
    await cut.start();
    try {
      const c = new RpcClient({ registry, warmupMs: 0, group: 'cut', identity: gateway });
      clients.push(c);
      assert.equal((await c.service(ledger).credit({ points: 1 })).caller, 'shop.gateway');
    } finally {
      await cut.stop();
      offline.close();
    }
  });

  it('the txn coordinator calls branches as peak-txn, which a provider requiring verified callers serves', async () => {
    // The coordinator finds branches in the control plane's registry: the provider registers there.
    const shared = new HttpRegistry({ servers: server.info.url, token: server.credential() });
    const onlyCoordinator = new Guard({
      rules: {
        authority: [{ resource: 'shop.wallet.pay', strategy: 'allow', origins: ['peak-txn'] }],
      },
    });
    const callers: (string | undefined)[] = [];
    const branches = new RpcServer({
      registry: shared,
      identity: { verifier, required: true },
      filters: [guardRpcFilter(onlyCoordinator)],
    });
    branches.addService(wallet, {
      pay: (_input, ctx) => {
        callers.push(ctx.callerApp);
        return { caller: ctx.callerApp ?? '' };
      },
      refund: (_input, ctx) => ({ caller: ctx.callerApp ?? '' }),
    });
    await branches.start();
    try {
      const txn = new TxnClient({ servers: server.info.url, token: server.credential() });
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
    } finally {
      await branches.stop();
      await shared.close();
      onlyCoordinator.close();
    }
    // Nobody can pass for the coordinator: its name cannot be an app's.
    await assert.rejects(
      admin.apps.create('peak-txn', ['txn']),
      (err) => isPeakError(err, ErrorCodes.INVALID_ARGUMENT) && /peak-txn/.test(err.message),
    );
  });
});
