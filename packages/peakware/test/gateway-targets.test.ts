/**
 * `peak gateway` as a real process: an HTTP upstream over registered instances (balanced,
 * health-checked, a stopped one taken out), an MQ topic target, CORS, IP deny lists, key
 * rotation with overlap and revocation, the OpenAPI document of one app, and serving through
 * a control-plane outage (and a restart during it, from the snapshot files).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { rpcRoute } from '../src/gateway/index.js';
import type { RegistrationHandle } from '../src/registry/index.js';
import { PeakServer } from '../src/server/index.js';
import { echoService, type GatewayFixture, gatewayFixture } from './gateway-fixture.js';
import { waitFor } from './support/wait.js';

interface Upstream {
  server: http.Server;
  port: number;
  hits: number;
  /** The last request's headers. */
  seen: http.IncomingHttpHeaders;
}

async function upstream(): Promise<Upstream> {
  const u: Upstream = { server: http.createServer(), port: 0, hits: 0, seen: {} };
  u.server.on('request', (req, res) => {
    if (req.url === '/health') {
      res.end('ok');
      return;
    }
    u.hits++;
    u.seen = req.headers;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ port: u.port, path: req.url }));
  });
  await new Promise<void>((r) => u.server.listen(0, '127.0.0.1', r));
  u.port = (u.server.address() as AddressInfo).port;
  return u;
}

describe('peak gateway: targets, CORS, IP lists, keys, OpenAPI, outage', {
  timeout: 240_000,
}, () => {
  let f: GatewayFixture;
  let url: string;
  let ups: Upstream[];
  let handles: RegistrationHandle[];
  const apiKey = () => ({ 'x-peak-api-key': `${f.key.id}.${f.key.secret}` });

  before(async () => {
    f = await gatewayFixture('gw-targets');
    ups = [await upstream(), await upstream()];
    handles = await Promise.all(
      ups.map((u, i) =>
        f.registry.register({
          instanceId: `web-${i}`,
          service: 'test.web',
          version: '1.0.0',
          group: 'default',
          host: '127.0.0.1',
          port: u.port,
          weight: 100,
          tags: [],
          metadata: {},
        }),
      ),
    );
    await f.admin.mq.createTopic({ name: 'test.gw-events', queues: 2 });
    await f.admin.gateway.putRoutes([
      {
        name: 'web',
        api: 'web',
        method: 'GET',
        path: '/web/*rest',
        auth: 'key',
        target: {
          kind: 'http',
          service: 'test.web',
          stripPrefix: '/web',
          prefix: '/v1',
          healthIntervalMs: 200,
        },
      },
      {
        name: 'events',
        api: 'web',
        method: 'POST',
        path: '/events',
        auth: 'key',
        target: { kind: 'mq', topic: 'test.gw-events', key: 'header.x-order-id', tag: 'created' },
      },
      rpcRoute(echoService, 'echo', {
        name: 'browser',
        api: 'echo',
        method: 'POST',
        path: '/browser',
        auth: 'none',
        cors: { origins: ['https://shop.example'], maxAgeSec: 60 },
      }),
      rpcRoute(echoService, 'echo', {
        name: 'walled',
        api: 'echo',
        method: 'POST',
        path: '/walled',
        auth: 'none',
        ipDeny: ['127.0.0.0/8'],
      }),
      rpcRoute(echoService, 'echo', {
        name: 'echo',
        api: 'echo',
        method: 'POST',
        path: '/echo',
        auth: 'key',
      }),
      rpcRoute(echoService, 'echo', {
        name: 'hidden',
        api: 'hidden',
        method: 'POST',
        path: '/hidden',
        auth: 'key',
      }),
    ]);
    for (const api of ['web', 'echo']) {
      await f.admin.gateway.requestSubscription('partner', api);
      await f.admin.gateway.approve('partner', api);
    }
    url = await f.startGateway();
  });

  after(async () => {
    for (const h of handles ?? []) await h.deregister().catch(() => undefined);
    for (const u of ups ?? []) u.server.close();
    await f?.close();
  });

  it('balances an HTTP route over registered instances and takes a stopped one out', async () => {
    for (let i = 0; i < 10; i++) {
      const res = await fetch(`${url}/web/items/7?x=1`, { headers: apiKey() });
      const body = (await res.json()) as { path: string };
      assert.equal(res.status, 200);
      assert.equal(body.path, '/v1/items/7?x=1');
    }
    assert.ok(
      ups[0]!.hits > 0 && ups[1]!.hits > 0,
      `both instances served: ${ups.map((u) => u.hits)}`,
    );
    const seen = ups[1]!.seen;
    assert.equal(seen['x-peak-api-key'], undefined, 'the credential is not forwarded');
    assert.equal(seen['peak-caller'], 'partner');
    assert.match(String(seen.traceparent), /^00-[0-9a-f]{32}-/);
    ups[0]!.server.close();
    ups[0]!.server.closeAllConnections();
    // A probe or a failed connection takes it out; then every call reaches the other one.
    await waitFor('the stopped instance out of traffic', async () => {
      const answers = await Promise.all(
        Array.from({ length: 4 }, () =>
          fetch(`${url}/web/a`, { headers: apiKey() }).then((r) => r.status),
        ),
      );
      return answers.every((s) => s === 200);
    });
  });

  it('answers 504 when an HTTP upstream is slow and 502 when it is down; a refused call never reaches it', async () => {
    let hits = 0;
    const slow = http.createServer((req, res) => {
      if (req.url === '/health') return void res.end('ok');
      hits++;
      setTimeout(() => res.end('{}'), 3000).unref();
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    try {
      const slowUrl = `http://127.0.0.1:${(slow.address() as AddressInfo).port}`;
      await f.admin.gateway.putRoutes([
        {
          name: 'slow-web',
          api: 'web',
          method: 'GET',
          path: '/slow-web',
          auth: 'key',
          timeoutMs: 300,
          target: { kind: 'http', urls: [slowUrl] },
        },
        {
          name: 'dead-web',
          api: 'web',
          method: 'GET',
          path: '/dead-web',
          auth: 'key',
          target: { kind: 'http', urls: [`http://127.0.0.1:${deadPort}`] },
        },
      ]);
      const get = async (path: string, headers: Record<string, string> = apiKey()) => {
        const res = await fetch(`${url}${path}`, { headers });
        return {
          status: res.status,
          body: (await res.json()) as { error?: { code: string; message: string } },
        };
      };
      await waitFor(
        'the new HTTP routes at the gateway',
        async () => (await get('/dead-web')).status !== 404,
      );
      const refused = await get('/slow-web', {});
      assert.equal(refused.status, 401);
      assert.equal(hits, 0, 'the upstream saw a refused request');
      const late = await get('/slow-web');
      assert.equal(late.status, 504, JSON.stringify(late.body));
      assert.equal(late.body.error?.code, 'PEAK_GATEWAY_TIMEOUT');
      assert.match(late.body.error!.message, /route 'slow-web' did not answer within \d+ ms/);
      const down = await get('/dead-web');
      assert.equal(down.status, 502, JSON.stringify(down.body));
      assert.equal(down.body.error?.code, 'PEAK_GATEWAY_UPSTREAM_UNAVAILABLE');
    } finally {
      slow.closeAllConnections();
      slow.close();
    }
  });

  it('turns a POST into a message on an MQ topic, keyed from a header', async () => {
    const res = await fetch(`${url}/events`, {
      method: 'POST',
      headers: { ...apiKey(), 'x-order-id': 'o-42', 'content-type': 'application/json' },
      body: JSON.stringify({ order: 42 }),
    });
    const sent = (await res.json()) as { id: string; topic: string };
    assert.equal(res.status, 202, JSON.stringify(sent));
    assert.equal(sent.topic, 'test.gw-events');
    const m = await f.admin.mq.message(sent.id);
    assert.equal(m.found, true);
    assert.deepEqual(m.message?.keys, ['o-42']);
    assert.equal(m.message?.tag, 'created');
  });

  it('answers a CORS preflight from an allowed origin and refuses another', async () => {
    const ok = await fetch(`${url}/browser`, {
      method: 'OPTIONS',
      headers: { origin: 'https://shop.example', 'access-control-request-method': 'POST' },
    });
    assert.equal(ok.status, 204);
    assert.equal(ok.headers.get('access-control-allow-origin'), 'https://shop.example');
    assert.equal(ok.headers.get('access-control-allow-methods'), 'POST');
    assert.equal(ok.headers.get('access-control-max-age'), '60');
    const no = await fetch(`${url}/browser`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    assert.equal(no.status, 403);
    const call = await fetch(`${url}/browser`, {
      method: 'POST',
      headers: { origin: 'https://shop.example', 'content-type': 'application/json' },
      body: JSON.stringify({ n: 1, s: 'b' }),
    });
    assert.equal(call.status, 200);
    assert.equal(call.headers.get('access-control-allow-origin'), 'https://shop.example');
  });

  it('refuses an address on the deny list before the target sees it', async () => {
    const before = f.calls.echo;
    const res = await fetch(`${url}/walled`, {
      method: 'POST',
      body: JSON.stringify({ n: 1, s: 'w' }),
    });
    const body = (await res.json()) as { error: { code: string } };
    assert.equal(res.status, 403);
    assert.equal(body.error.code, 'PEAK_GATEWAY_FORBIDDEN');
    assert.equal(f.calls.echo, before);
  });

  it('serves the OpenAPI document of what one app may call', async () => {
    const res = await fetch(`${url}/_peak/openapi.json`, { headers: apiKey() });
    const doc = (await res.json()) as {
      openapi: string;
      paths: Record<
        string,
        Record<
          string,
          {
            requestBody?: {
              content: Record<string, { schema: { properties?: Record<string, unknown> } }>;
            };
          }
        >
      >;
    };
    assert.equal(res.status, 200);
    assert.equal(doc.openapi, '3.1.0');
    assert.ok(doc.paths['/echo']?.post !== undefined);
    assert.ok(doc.paths['/web/{rest}']?.get !== undefined);
    assert.equal(
      doc.paths['/hidden'],
      undefined,
      'an API the app is not approved for is not in its document',
    );
    assert.deepEqual(
      Object.keys(
        doc.paths['/echo']!.post!.requestBody!.content['application/json']!.schema.properties ?? {},
      ).sort(),
      ['n', 's'],
    );
    assert.equal((await fetch(`${url}/_peak/openapi.json`)).status, 401);
  });

  it('rotates a key with overlap: both work, then only the new one; a revoked key stops at once', async () => {
    const old = f.key;
    const fresh = await f.admin.gateway.rotateKey('partner', 4);
    const echo = (k: { id: string; secret: string }) =>
      fetch(`${url}/echo`, {
        method: 'POST',
        headers: { 'x-peak-api-key': `${k.id}.${k.secret}`, 'content-type': 'application/json' },
        body: JSON.stringify({ n: 1, s: 'k' }),
      }).then(async (r) => ({
        status: r.status,
        body: (await r.json()) as { error?: { message: string } },
      }));
    await waitFor('the new key at the gateway', async () => (await echo(fresh)).status === 200);
    assert.equal((await echo(old)).status, 200, 'the old key works during the overlap');
    await waitFor('the old key expired', async () => {
      const r = await echo(old);
      return r.status === 401 && /expired/.test(r.body.error?.message ?? '');
    });
    await f.admin.gateway.revokeKey(fresh.id);
    await waitFor('the revoked key refused', async () => (await echo(fresh)).status === 401);
    f.key = await f.admin.gateway.createKey('partner');
    await waitFor('the next key at the gateway', async () => (await echo(f.key)).status === 200);
  });

  it('takes fault drills: an http fault on a route and an rpc-client fault on its target, stopped again', async () => {
    const call = () =>
      fetch(`${url}/public-echo`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"n":1,"s":"x"}',
      });
    await f.admin.gateway.putRoute(
      rpcRoute(echoService, 'echo', {
        name: 'public-echo',
        api: 'echo',
        method: 'POST',
        path: '/public-echo',
        auth: 'none',
      }),
    );
    await waitFor('the route served', async () => (await call()).status === 200);
    // The gateway's drill agent reports to the control plane under the gateway's config app.
    await waitFor('the gateway in drill status', async () =>
      (await f.admin.drill.status('gateway')).instances.some(
        (i) => i.live && i.tags.includes('gateway'),
      ),
    );
    const before = f.calls.echo;
    await f.admin.drill.inject('gateway', [
      {
        kind: 'error',
        point: 'http',
        code: 'PEAK_SERVER_BUSY',
        match: { method: 'POST', route: '/public-echo' },
        durationMs: 60_000,
        drill: 'gw-http',
      },
    ]);
    let refused: Response | undefined;
    await waitFor('the http fault at the gateway', async () => {
      refused = await call();
      return refused.status === 503;
    });
    const body = (await refused!.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'PEAK_SERVER_BUSY');
    const during = f.calls.echo;
    await call();
    assert.equal(f.calls.echo, during, 'a request refused by the fault never reaches the target');
    await f.admin.drill.stop('gateway', { drill: 'gw-http' });
    await waitFor('the route back', async () => (await call()).status === 200);
    assert.ok(f.calls.echo > before);

    // rpc-client: the gateway's call to the RPC target fails, as a caller's would.
    await f.admin.drill.inject('gateway', [
      {
        kind: 'error',
        point: 'rpc-client',
        code: 'PEAK_SERVER_BUSY',
        match: { service: echoService.name },
        durationMs: 60_000,
        drill: 'gw-rpc',
      },
    ]);
    await waitFor('the rpc-client fault at the gateway', async () => {
      const r = await call();
      if (r.status === 200) return false;
      const e = (await r.json()) as { error: { code: string } };
      return e.error.code === 'PEAK_SERVER_BUSY';
    });
    await f.admin.drill.stop('gateway', { drill: 'gw-rpc' });
    await waitFor('the route back again', async () => (await call()).status === 200);
  });

  it('keeps serving while the control plane is down, and starts from its snapshot then', async () => {
    const echo = (base: string) =>
      fetch(`${base}/echo`, {
        method: 'POST',
        headers: { ...apiKey(), 'content-type': 'application/json' },
        body: JSON.stringify({ n: 3, s: 'outage' }),
      }).then((r) => r.status);
    // Let the gateway write its snapshot files (at most once a second).
    await new Promise((r) => setTimeout(r, 1500));
    const port = Number(new URL(f.server.info.url).port);
    await f.server.stop();
    assert.equal(await echo(url), 200, 'the running gateway serves from memory');
    // A restart during the outage reads its last state from the snapshot files.
    const restarted = await f.restartGateway(0);
    assert.equal(await echo(restarted), 200, 'the restarted gateway serves from its snapshot');
    // The control plane comes back on the same port; the gateways follow it again.
    f.server = await PeakServer.start({ dataDir: f.dataDir, port });
    await f.admin.gateway.putRoute(
      rpcRoute(echoService, 'echo', {
        name: 'again',
        api: 'echo',
        method: 'POST',
        path: '/again',
        auth: 'key',
      }),
    );
    await waitFor('the change after the outage at the gateway', async () => {
      const r = await fetch(`${restarted}/again`, {
        method: 'POST',
        headers: { ...apiKey(), 'content-type': 'application/json' },
        body: JSON.stringify({ n: 1, s: 'a' }),
      });
      return r.status === 200;
    });
  });
});
