/**
 * The attacks of the security report, tried against a real `peak server` with the
 * attacker holding a working credential of its own (app `evil`) or none: each was
 * possible before apps and scoped credentials, and each is refused now.
 *
 * - the fake provider: registering an instance of another app's service (weight 1 000 000
 *   to take its traffic), and turning the real instance's weight to 0 or deleting it;
 * - the stolen consumer group: receiving and acking another app's group's messages;
 * - the foreign rollback: rolling back another producer's half message, or reading it
 *   through the producer group's check-backs;
 * - a consumer reading a topic it is not allowed to, by receive or by key;
 * - the replay: a captured signed message of a secured topic sent again, alone and three
 *   times in one batch, and one signed outside the broker's window;
 * - the wide narrow grant: `drill:<service>`, `stress:<run>` and `txn:<service>` used for
 *   another service's reports, another run, a transaction calling another service;
 * - the foreign transaction: submitting, aborting or taking over (the same gid) another
 *   app's two-phase message or saga.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AdminClient } from '../src/admin/admin-client.js';
import { ErrorCodes, isPeakError } from '../src/core/errors.js';
import { BrokerClient } from '../src/mq/broker-client.js';
import { signMessage } from '../src/mq/message-signature.js';
import { toWire } from '../src/mq/wire-encoding.js';
import { HttpRegistry } from '../src/registry/http-registry.js';
import { PeakServer } from '../src/server/index.js';
import { TxnClient } from '../src/txn/index.js';

describe('attacks with a credential of ones own, or none', { timeout: 120_000 }, () => {
  let dataDir: string;
  let server: PeakServer;
  let url: string;
  let evil: string;
  let order: string;
  let points: string;
  let inventory: string;
  let narrow: string;

  /** A raw call as an attacker makes it. */
  const raw = async (method: string, route: string, token: string | undefined, body?: unknown) => {
    const res = await fetch(`${url}${route}`, {
      method,
      headers: {
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return {
      status: res.status,
      json: text.length === 0 ? undefined : (JSON.parse(text) as unknown),
    };
  };

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-attacks-'));
    server = await PeakServer.start({ dataDir, port: 0 });
    url = server.info.url;
    const admin = new AdminClient({ servers: url, token: server.info.adminToken! });
    const issue = async (name: string, can: string[]) =>
      (await admin.apps.create(name, can)).credential;
    inventory = await issue('shop.inventory', ['register:shop.inventory']);
    order = await issue('shop.order', ['produce:shop.orders', 'produce:shop.refunds', 'txn']);
    points = await issue('shop.points', ['consume:shop.orders/points']);
    evil = await issue('evil', [
      'register:evil.*',
      'produce:evil.*',
      'consume:evil.*/*',
      'read-config:evil/*',
    ]);
    narrow = await issue('evil.narrow', [
      'drill:evil.svc',
      'stress:evil-*',
      'txn:evil.*',
      'produce:evil.*',
    ]);
    await admin.mq.createTopic({ name: 'shop.orders', queues: 2 });
    await admin.mq.createTopic({ name: 'shop.payments', queues: 1 });
  });

  after(async () => {
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('a fake provider of another app’s service is refused, and the real one cannot be touched', async () => {
    const registry = new HttpRegistry({ servers: url, token: inventory });
    const handle = await registry.register({
      instanceId: 'inventory-1',
      service: 'shop.inventory',
      version: '1.0.0',
      group: 'default',
      host: '127.0.0.1',
      port: 7001,
      weight: 100,
      tags: [],
      metadata: {},
    });
    const fake = {
      instanceId: 'evil-1',
      service: 'shop.inventory',
      version: '1.0.0',
      group: 'default',
      host: '127.0.0.1',
      port: 6666,
      weight: 1_000_000,
    };
    for (const token of [evil, undefined]) {
      const r = await raw('POST', '/api/v1/registry/instances', token, fake);
      assert.equal(r.status, token === undefined ? 401 : 403, JSON.stringify(r.json));
      // Taking over the real instance's id does not work either.
      const over = await raw('POST', '/api/v1/registry/instances', token, {
        ...fake,
        instanceId: 'inventory-1',
      });
      assert.ok([401, 403].includes(over.status), JSON.stringify(over.json));
      const weight = await raw('PATCH', '/api/v1/registry/instances/inventory-1', token, {
        weight: 0,
      });
      assert.ok([401, 403].includes(weight.status), JSON.stringify(weight.json));
      const gone = await raw('DELETE', '/api/v1/registry/instances/inventory-1', token);
      assert.ok([401, 403].includes(gone.status), JSON.stringify(gone.json));
    }
    // The attacker may register its own service under its own grant, not the shop's.
    const own = await raw('POST', '/api/v1/registry/instances', evil, {
      ...fake,
      service: 'evil.svc',
    });
    assert.equal(own.status, 200, JSON.stringify(own.json));
    const listed = await raw(
      'GET',
      '/api/v1/registry/instances?key=default/shop.inventory:1.0.0',
      inventory,
    );
    const instances = (listed.json as { instances: { instanceId: string; weight: number }[] })
      .instances;
    assert.deepEqual(
      instances.map((i) => [i.instanceId, i.weight]),
      [['inventory-1', 100]],
    );
    await handle.deregister();
    await registry.close();
  });

  it('a stolen consumer group gets nothing; the real consumer gets every message', async () => {
    const producer = new BrokerClient({ servers: url, token: order });
    await producer.send(
      'shop.orders',
      Array.from({ length: 20 }, (_, i) => ({
        body: Buffer.from(`order ${i}`).toString('base64'),
      })),
    );
    const subscription = { topic: 'shop.orders', consumerId: 'thief', waitMs: 0, max: 100 };
    for (const token of [evil, undefined]) {
      const r = await raw('POST', '/api/v1/mq/groups/points/receive', token, subscription);
      assert.equal(r.status, token === undefined ? 401 : 403, JSON.stringify(r.json));
      const a = await raw('POST', '/api/v1/mq/groups/points/ack', token, {
        topic: 'shop.orders',
        consumerId: 'thief',
        receipts: [],
      });
      assert.equal(a.status, token === undefined ? 401 : 403);
    }
    const consumer = new BrokerClient({ servers: url, token: points });
    const got: string[] = [];
    for (let i = 0; i < 10 && got.length < 20; i++) {
      const { messages } = await consumer.receive(
        'points',
        {
          topic: 'shop.orders',
          consumerId: 'points-1',
          tags: '*',
          startFrom: 'earliest',
          broadcasting: false,
        },
        { max: 100, waitMs: 500 },
      );
      got.push(...messages.map((m) => Buffer.from(m.body, 'base64').toString()));
      if (messages.length > 0) {
        await consumer.ack(
          'points',
          'shop.orders',
          'points-1',
          messages.map((m) => m.receipt),
        );
      }
    }
    assert.equal(got.length, 20);
  });

  it('another producer’s half message can be neither rolled back nor read through check-backs', async () => {
    const producer = new BrokerClient({ servers: url, token: order });
    const { id } = await producer.sendHalf(
      'shop.orders',
      { body: Buffer.from('pending order').toString('base64') },
      'order-producers',
    );
    for (const token of [evil, undefined]) {
      const r = await raw('POST', `/api/v1/mq/transactions/${id}/rollback`, token, { by: 'evil' });
      assert.equal(r.status, token === undefined ? 401 : 403, JSON.stringify(r.json));
    }
    const peek = await raw('POST', '/api/v1/mq/producer-groups/order-producers/checks', evil, {});
    assert.equal(peek.status, 200);
    assert.deepEqual((peek.json as { checks: unknown[] }).checks, []);
    // The producer itself still commits it.
    await producer.endHalf(id, 'commit', 'producer');
  });

  it('a consumer reads only the topics its grants name, by key and by id (the secured-topic read)', async () => {
    const consumer = new BrokerClient({ servers: url, token: points });
    await assert.rejects(
      consumer.receive(
        'points',
        {
          topic: 'shop.payments',
          consumerId: 'p',
          tags: '*',
          startFrom: 'earliest',
          broadcasting: false,
        },
        { max: 1, waitMs: 0 },
      ),
      (err) =>
        isPeakError(err, ErrorCodes.FORBIDDEN) &&
        /consume shop\.payments\/points/.test(err.message),
    );
    const body = Buffer.from('card 4111').toString('base64');
    const sent = await new BrokerClient({
      servers: url,
      token: server.info.adminToken!,
    }).send('shop.payments', [{ body, keys: ['pay-1'] }]);
    const byKey = await raw('GET', '/api/v1/mq/messages?key=pay-1', points);
    assert.deepEqual((byKey.json as { messages: unknown[] }).messages, []);
    const asAdmin = await raw('GET', '/api/v1/mq/messages?key=pay-1', server.info.adminToken!);
    assert.equal((asAdmin.json as { messages: unknown[] }).messages.length, 1);
    // By id: no token is refused; a credential without the topic sees the message's
    // whereabouts but never its body; the admin sees the body.
    const byId = `/api/v1/mq/messages/${sent.ids[0]}`;
    assert.equal((await raw('GET', byId, undefined)).status, 401);
    const outOfScope = await raw('GET', byId, points);
    assert.equal(outOfScope.status, 200);
    assert.ok(!JSON.stringify(outOfScope.json).includes(body), JSON.stringify(outOfScope.json));
    const admins = await raw('GET', byId, server.info.adminToken!);
    assert.ok(JSON.stringify(admins.json).includes(body), 'the admin reads the body');
  });

  it('a provider of app A cannot register service B', async () => {
    const registry = new HttpRegistry({ servers: url, token: inventory });
    await assert.rejects(
      registry.register({
        instanceId: 'inventory-2',
        service: 'shop.order',
        version: '1.0.0',
        group: 'default',
        host: '127.0.0.1',
        port: 7002,
        weight: 100,
        tags: [],
        metadata: {},
      }),
      (err) => isPeakError(err, ErrorCodes.FORBIDDEN) && /register shop\.order/.test(err.message),
    );
    await registry.close();
  });

  it('a captured signed message is refused when replayed, alone or three times in a batch', async () => {
    const admin = new AdminClient({ servers: url, token: server.info.adminToken! });
    const created = await admin.mq.createTopic({ name: 'shop.refunds', queues: 1, secured: true });
    const secret = created.produceSecret!;
    // What the order service sends, as an attacker on the path captures it.
    const captured = toWire('shop.refunds', { body: 'refund 100 to card 4111' }, { secret });
    const send = (messages: unknown[]) =>
      raw('POST', '/api/v1/mq/topics/shop.refunds/messages', order, { messages });
    assert.equal((await send([captured])).status, 200, 'the original gets in');
    const again = await send([captured]);
    assert.equal(again.status, 409);
    assert.equal((again.json as { error: { code: string } }).error.code, ErrorCodes.MQ_REPLAYED);
    const fresh = toWire('shop.refunds', { body: 'refund 1' }, { secret });
    const thrice = await send([fresh, fresh, fresh]);
    assert.equal(thrice.status, 409, 'three copies of one message in one batch');
    // Signed long ago (a capture kept for later): outside the window even with a new nonce.
    const old = { ...toWire('shop.refunds', { body: 'refund 2' }, { secret }) };
    old.signedAt = Date.now() - 3_600_000;
    old.signature = signMessage(secret, {
      topic: 'shop.refunds',
      body: old.body,
      keys: [],
      properties: old.properties ?? {},
      nonce: old.nonce,
      signedAt: old.signedAt,
    });
    assert.equal((await send([old])).status, 409);
    // Without a nonce (the signed form before replay protection): refused as unsigned.
    const bare = { body: captured.body, properties: captured.properties ?? {} };
    const legacy = {
      ...bare,
      signature: signMessage(secret, { topic: 'shop.refunds', ...bare, keys: [] }),
    };
    assert.equal((await send([legacy])).status, 400);
    const stored = await raw(
      'GET',
      '/api/v1/mq/messages?topic=shop.refunds',
      server.info.adminToken!,
    );
    assert.equal((stored.json as { messages: unknown[] }).messages.length, 1, 'only the original');
  });

  it('a grant of one service, run or set of services covers that one only', async () => {
    const call = (service: string, method: string) => ({
      service: `default/${service}:1.0.0`,
      method,
    });
    const report = (service: string) => ({
      app: 'shop',
      instanceId: 'drill-1',
      boot: 'b1',
      service,
      tags: [],
      active: [],
      ended: [],
      at: Date.now(),
    });
    const saga = (service: string) => ({
      steps: [{ name: 'pay', action: call(service, 'pay'), retries: 0 }],
      timeoutMs: 1000,
      wait: false,
    });
    const tcc = (service: string) => ({
      branches: [
        {
          name: 'hold',
          try: call('evil.svc', 'hold'),
          confirm: call('evil.svc', 'take'),
          cancel: call(service, 'release'),
          retries: 0,
        },
      ],
      timeoutMs: 1000,
      wait: false,
    });
    const msg = (service: string) => ({
      topic: 'evil.topic',
      message: { body: 'aGk=' },
      check: call(service, 'placed'),
    });
    const refusals: [string, string, unknown, string][] = [
      ['POST', '/api/v1/drill/reports', report('shop.inventory'), 'drill:shop.inventory'],
      ['POST', '/api/v1/stress/runs/shop-nightly/agents/a1', {}, 'stress:shop-nightly'],
      ['PUT', '/api/v1/stress/runs/shop-nightly/agents/a1/report', {}, 'stress:shop-nightly'],
      ['POST', '/api/v1/txn/sagas', saga('shop.payment'), 'txn:shop.payment'],
      ['POST', '/api/v1/txn/tccs', tcc('shop.payment'), 'txn:shop.payment'],
      ['POST', '/api/v1/txn/msgs', msg('shop.order'), 'txn:shop.order'],
    ];
    for (const [method, route, body, need] of refusals) {
      const r = await raw(method, route, narrow, body);
      assert.equal(r.status, 403, `${method} ${route}: ${JSON.stringify(r.json)}`);
      const error = (r.json as { error: { message: string; details: { need: string } } }).error;
      assert.equal(error.details.need, need);
      assert.match(error.message, new RegExp(need.replace(/[.:]/g, '\\$&')));
    }
    // In scope the same routes take the calls.
    assert.equal(
      (await raw('POST', '/api/v1/drill/reports', narrow, report('evil.svc'))).status,
      200,
    );
    const own = await raw('POST', '/api/v1/stress/runs/evil-run/agents/a1', narrow, {});
    assert.equal(own.status, 404, `no such run, but no refusal: ${JSON.stringify(own.json)}`);
    assert.equal((await raw('POST', '/api/v1/txn/sagas', narrow, saga('evil.svc'))).status, 200);
    assert.equal((await raw('POST', '/api/v1/txn/tccs', narrow, tcc('evil.svc'))).status, 200);
  });

  it('another app’s global transaction can be neither submitted, aborted nor taken over', async () => {
    const thief = (
      await new AdminClient({ servers: url, token: server.info.adminToken! }).apps.create(
        'txn.thief',
        ['txn', 'produce:shop.*'],
      )
    ).credential;
    const check = { service: 'default/shop.order:1.0.0', method: 'placed' };
    const msg = (gid: string) => ({
      gid,
      topic: 'shop.orders',
      message: { body: Buffer.from('order 42').toString('base64') },
      check,
      checkAfterMs: 60_000,
    });
    for (const gid of ['order-42', 'order-43']) {
      const prepared = await raw('POST', '/api/v1/txn/msgs', order, msg(gid));
      assert.equal(prepared.status, 200, JSON.stringify(prepared.json));
    }
    const saga = {
      gid: 'order-saga-1',
      steps: [{ name: 'pay', action: check, retries: 100, retryDelayMs: 60_000 }],
      timeoutMs: 600_000,
      wait: false,
    };
    assert.equal((await raw('POST', '/api/v1/txn/sagas', order, saga)).status, 200);
    const attempts: [string, string, unknown][] = [
      ['POST', '/api/v1/txn/msgs/order-42/submit', {}],
      ['POST', '/api/v1/txn/msgs/order-42/abort', {}],
      ['POST', '/api/v1/txn/msgs', msg('order-42')],
      ['POST', '/api/v1/txn/sagas', { ...saga, wait: true }],
    ];
    for (const [method, route, body] of attempts) {
      const r = await raw(method, route, thief, body);
      assert.equal(r.status, 403, `${method} ${route}: ${JSON.stringify(r.json)}`);
      assert.match(
        (r.json as { error: { message: string } }).error.message,
        /belongs to app 'shop\.order'/,
      );
    }
    // The same prepare over the node's RPC port (the SDK's way) is refused alike.
    await assert.rejects(
      new TxnClient({ servers: url, token: thief }).message(msg('order-42')),
      (err: unknown) =>
        isPeakError(err, ErrorCodes.FORBIDDEN) && /belongs to app 'shop\.order'/.test(err.message),
    );
    const shown = await raw('GET', '/api/v1/txn/globals/order-42', thief);
    assert.equal((shown.json as { status: string; app: string }).status, 'prepared');
    assert.equal((shown.json as { app: string }).app, 'shop.order');
    // Its own app submits it; an operator may abort any app's.
    const submitted = await raw('POST', '/api/v1/txn/msgs/order-42/submit', order, {});
    assert.equal((submitted.json as { status: string }).status, 'succeeded');
    const aborted = await raw(
      'POST',
      '/api/v1/txn/msgs/order-43/abort',
      server.info.adminToken!,
      {},
    );
    assert.equal((aborted.json as { status: string }).status, 'failed');
  });
});
