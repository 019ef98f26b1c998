import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';
import { waitFor } from '../../test/support/wait.js';
import { currentContext, remainingTime, withContext } from '../core/context.js';
import { ErrorCodes, isPeakError } from '../core/errors.js';
import { InMemoryRegistry } from '../registry/in-memory-registry.js';
import { RpcClient } from './rpc-client.js';
import type { Invocation } from './rpc-filter.js';
import { RpcServer } from './rpc-server.js';
import { defineService } from './service-definition.js';

const inventory = defineService({
  name: 'shop.inventory',
  version: '1.0.0',
  methods: {
    stock: {
      input: z.object({ sku: z.string() }),
      output: z.object({ sku: z.string(), left: z.number() }),
      idempotent: true,
    },
    deduct: {
      input: z.object({ sku: z.string(), qty: z.number().int().positive() }),
      output: z.object({ ok: z.boolean() }),
    },
    slow: {
      input: z.object({ ms: z.number() }),
      output: z.object({ remaining: z.number(), deadline: z.number().optional() }),
      idempotent: true,
    },
    whoami: {
      input: z.object({}),
      output: z.object({
        tags: z.record(z.string(), z.string()),
        caller: z.string().optional(),
        port: z.number(),
      }),
      idempotent: true,
    },
    boom: { input: z.object({}), output: z.null() },
  },
});

describe('rpc client and server over real sockets', () => {
  const registry = new InMemoryRegistry();
  const servers: RpcServer[] = [];
  const deducted: string[] = [];
  const seen: Invocation[] = [];
  let client: RpcClient;

  before(async () => {
    for (const tags of [[], ['canary']]) {
      const server = new RpcServer({
        registry,
        tags,
        filters: [
          async (inv, next) => {
            seen.push(inv);
            return next();
          },
        ],
      });
      server.addService(inventory, {
        stock: ({ sku }) => ({ sku, left: 7 }),
        deduct: ({ sku }) => {
          deducted.push(sku);
          return { ok: true };
        },
        slow: async ({ ms }) => {
          await new Promise((r) => setTimeout(r, ms));
          const deadline = currentContext()?.deadline;
          return { remaining: remainingTime(), ...(deadline === undefined ? {} : { deadline }) };
        },
        whoami: (_input, ctx) => ({
          tags: { ...ctx.tags },
          ...(ctx.callerApp ? { caller: ctx.callerApp } : {}),
          port: server.port,
        }),
        boom: () => {
          throw new Error('kaput');
        },
      });
      await server.start();
      servers.push(server);
    }
    client = new RpcClient({ registry, app: 'test-app', warmupMs: 0 });
  });

  after(async () => {
    await client.close();
    for (const s of servers) await s.stop();
  });

  it('calls a typed method and validates both ways', async () => {
    const inv = client.service(inventory);
    assert.deepEqual(await inv.stock({ sku: 'a' }), { sku: 'a', left: 7 });
    await assert.rejects(
      inv.deduct({ sku: 'a', qty: -1 }),
      (err) => isPeakError(err, ErrorCodes.RPC_BAD_ARGUMENTS) && /qty/.test(err.message),
    );
    await assert.rejects(
      inv.boom({}),
      (err) => isPeakError(err, ErrorCodes.RPC_REMOTE) && /kaput/.test(err.message),
    );
  });

  it('failsafe resolves undefined on failure, and its types say so', async () => {
    const safe = client.service(inventory, { cluster: 'failsafe' });
    const r: null | undefined = await safe.boom({});
    assert.equal(r, undefined);
    const ok = await safe.stock({ sku: 'f' });
    assert.equal(ok?.left, 7);
  });

  it('carries the caller and routes by tag: untagged calls avoid canary, canary calls stick to it', async () => {
    const inv = client.service(inventory);
    const plain = await inv.whoami({});
    assert.equal(plain.caller, 'test-app');
    assert.equal(plain.port, servers[0]!.port);
    for (let i = 0; i < 10; i++) assert.equal((await inv.whoami({})).port, servers[0]!.port);
    const gray = await withContext({ tags: { route: 'canary' } }, () => inv.whoami({}));
    assert.equal(gray.port, servers[1]!.port);
    assert.equal(gray.tags.route, 'canary');
  });

  it('condition rules loaded at runtime put matching calls on the canary', async () => {
    const inv = client.service(inventory);
    client.setRules([
      { service: 'shop.inventory', when: 'sku == "vip" || userId % 100 < 10', tag: 'canary' },
    ]);
    try {
      assert.equal((await inv.whoami({})).port, servers[0]!.port);
      const r = await inv.stock({ sku: 'vip' });
      assert.equal(r.left, 7);
      const last = seen.at(-1);
      assert.equal(last?.context.tags.route, 'canary');
    } finally {
      client.setRules([]);
    }
  });

  it('turns the client timeout into a deadline the provider sees', async () => {
    const inv = client.service(inventory);
    const before = Date.now();
    const r = await inv.slow({ ms: 5 }, { timeoutMs: 1000 });
    const after = Date.now();
    // The deadline travels as time left (whole ms), so the provider's is the caller's, moved
    // later by at most the time in transit or earlier by 1 ms of rounding: it lies between
    // the earliest and the latest deadline the call could have had.
    assert.ok(
      r.deadline !== undefined && r.deadline >= before + 1000 - 1 && r.deadline <= after + 1000,
      `provider deadline ${r.deadline}, call made in [${before}, ${after}] with 1000 ms`,
    );
    assert.ok(r.remaining <= 1000, `remaining ${r.remaining}`);
    await assert.rejects(inv.slow({ ms: 300 }, { timeoutMs: 50 }), (err) =>
      isPeakError(err, ErrorCodes.RPC_TIMEOUT),
    );
  });

  it('never starts work whose deadline passed (checked by the side effect)', async () => {
    const inv = client.service(inventory);
    const before = deducted.length;
    const ctx = await withContext({ timeoutMs: 20 }, async () => {
      await new Promise((r) => setTimeout(r, 40));
      return currentContext();
    });
    await assert.rejects(
      withContext({ deadline: ctx?.deadline ?? 0 }, () => inv.deduct({ sku: 'late', qty: 1 })),
      (err) => isPeakError(err, ErrorCodes.DEADLINE_EXCEEDED),
    );
    // Sent with an already-expired deadline straight over the wire: refused by the provider.
    const raw = await servers[0]!
      .invoke('shop.inventory:1.0.0', 'deduct', { 'peak-timeout': '0' }, { sku: 'late', qty: 1 })
      .catch((e) => e);
    assert.ok(isPeakError(raw, ErrorCodes.DEADLINE_EXCEEDED));
    assert.equal(deducted.length, before);
    assert.ok(!deducted.includes('late'));
  });

  it('answers unknown services and methods with typed errors', async () => {
    await assert.rejects(servers[0]!.invoke('nope:1.0.0', 'x', {}, {}), (err) =>
      isPeakError(err, ErrorCodes.RPC_UNKNOWN_SERVICE),
    );
    await assert.rejects(client.call('default/shop.inventory:1.0.0', 'nope', {}), (err) =>
      isPeakError(err, ErrorCodes.RPC_UNKNOWN_METHOD),
    );
  });

  it('survives random bytes and oversized frames on the socket, serving everyone else', async () => {
    const port = servers[0]!.port;
    for (const payload of [
      Buffer.from([0, 0, 0, 5, 1, 2, 3, 4, 5]),
      Buffer.from([0xff, 0xff, 0xff, 0xff, 1]),
      Buffer.from([0, 0, 0, 0]),
    ]) {
      const sock = net.connect(port, '127.0.0.1');
      await new Promise((r) => sock.once('connect', r));
      sock.write(payload);
      await new Promise((r) => {
        sock.once('data', r);
        sock.once('close', r);
        setTimeout(r, 1000).unref();
      });
      sock.destroy();
    }
    assert.deepEqual(await client.service(inventory).stock({ sku: 'b' }), { sku: 'b', left: 7 });
  });

  it('serves HTTP/JSON through the same lifecycle', async () => {
    const server = new RpcServer({ httpPort: 0 });
    server.addService(inventory, {
      stock: ({ sku }) => ({ sku, left: 3 }),
      deduct: () => ({ ok: true }),
      slow: () => ({ remaining: remainingTime() }),
      whoami: (_i, ctx) => ({ tags: { ...ctx.tags }, port: 0 }),
      boom: () => null,
    });
    await server.start();
    try {
      const base = `http://127.0.0.1:${server.httpPort}`;
      const ok = await fetch(`${base}/rpc/shop.inventory/stock`, {
        method: 'POST',
        body: JSON.stringify({ sku: 'z' }),
      });
      assert.equal(ok.status, 200);
      assert.deepEqual(await ok.json(), { result: { sku: 'z', left: 3 } });
      const bad = await fetch(`${base}/rpc/shop.inventory/stock`, {
        method: 'POST',
        body: '{"sku":1}',
      });
      assert.equal(bad.status, 400);
      assert.equal(
        ((await bad.json()) as { error: { code: string } }).error.code,
        ErrorCodes.RPC_BAD_ARGUMENTS,
      );
      const late = await fetch(`${base}/rpc/shop.inventory/deduct`, {
        method: 'POST',
        headers: { 'peak-timeout': '0' },
        body: '{"sku":"a","qty":1}',
      });
      assert.equal(late.status, 504);
      const tagged = await fetch(`${base}/rpc/shop.inventory/whoami`, {
        method: 'POST',
        headers: { 'peak-tags': 'route=canary' },
        body: '{}',
      });
      assert.deepEqual(((await tagged.json()) as { result: { tags: unknown } }).result.tags, {
        route: 'canary',
      });
    } finally {
      await server.stop();
    }
  });
});

describe('provider overload is retried elsewhere', () => {
  const slow = defineService({
    name: 'shop.slow',
    methods: {
      pay: { input: z.object({ id: z.string() }), output: z.object({ port: z.number() }) },
    },
  });

  it('a call refused for maxInFlight runs on another instance, even when not idempotent', async () => {
    const registry = new InMemoryRegistry();
    const ran: string[] = [];
    // Each call holds its instance until the test opens the gate, so "busy" is a state the
    // test sees (the calls ran), not a guess about how soon they arrive on a loaded machine.
    let open = () => {};
    let gate = Promise.resolve();
    const closeGate = () => {
      gate = new Promise<void>((resolve) => {
        open = resolve;
      });
    };
    const servers = [
      new RpcServer({ registry, maxInFlight: 1 }),
      new RpcServer({ registry, maxInFlight: 1 }),
    ];
    for (const server of servers) {
      server.addService(slow, {
        pay: async ({ id }) => {
          ran.push(id);
          await gate;
          return { port: server.port };
        },
      });
      await server.start();
    }
    const client = new RpcClient({ registry, warmupMs: 0, loadBalancer: 'random' });
    try {
      const pay = client.service(slow);
      closeGate();
      const both = Promise.all([pay.pay({ id: 'a' }), pay.pay({ id: 'b' })]);
      await waitFor('a and b running', () => ran.includes('a') && ran.includes('b'));
      open();
      const results = await both;
      assert.deepEqual(new Set(results.map((r) => r.port)), new Set(servers.map((s) => s.port)));
      assert.deepEqual([...ran].sort(), ['a', 'b'], 'each ran exactly once');
      // Both instances busy: a third call is refused everywhere, clearly, and never ran.
      closeGate();
      const busy = Promise.all([pay.pay({ id: 'c' }), pay.pay({ id: 'd' })]);
      await waitFor('c and d running', () => ran.includes('c') && ran.includes('d'));
      await assert.rejects(pay.pay({ id: 'e' }), (err) =>
        isPeakError(err, ErrorCodes.RPC_OVERLOADED),
      );
      open();
      await busy;
      assert.ok(!ran.includes('e'));
    } finally {
      open();
      await client.close();
      for (const s of servers) await s.stop();
    }
  });
});
