/**
 * `peak gateway` against every bad input of the issue, as a real process in front of a real
 * provider: unsigned, badly signed, replayed, expired, oversized, malformed JSON, arguments
 * the method's schema refuses, an unknown route, a target that is down or slow, an app over
 * quota, an app not approved, odd header bytes. Each gets a clear error in one JSON shape,
 * the gateway keeps serving, and the provider never runs a refused request.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { rpcRoute, signRequest } from '../src/gateway/index.js';
import { echoService, type GatewayFixture, gatewayFixture } from './gateway-fixture.js';
import { waitFor } from './support/wait.js';

interface Answer {
  status: number;
  headers: Headers;
  body: { error?: { code: string; message: string; details: Record<string, unknown> } } & Record<
    string,
    unknown
  >;
}

describe('peak gateway: bad input', { timeout: 180_000 }, () => {
  let f: GatewayFixture;
  let url: string;

  const call = async (
    method: string,
    path: string,
    init: { body?: string; headers?: Record<string, string> } = {},
  ): Promise<Answer> => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: init.headers ?? {},
      ...(init.body === undefined ? {} : { body: init.body }),
    });
    const text = await res.text();
    return {
      status: res.status,
      headers: res.headers,
      body: text === '' ? {} : (JSON.parse(text) as Answer['body']),
    };
  };
  const signed = (
    method: string,
    path: string,
    body: string,
    over: { timestamp?: number; nonce?: string; secret?: string } = {},
  ) => {
    const headers = { 'content-type': 'application/json' };
    return {
      body,
      headers: {
        ...headers,
        ...signRequest({
          method,
          url: path,
          body,
          headers,
          keyId: f.key.id,
          secret: over.secret ?? f.key.secret,
          ...(over.timestamp === undefined ? {} : { timestamp: over.timestamp }),
          ...(over.nonce === undefined ? {} : { nonce: over.nonce }),
        }),
      },
    };
  };
  const refused = (a: Answer, status: number, code: string, message?: RegExp) => {
    assert.equal(a.status, status, JSON.stringify(a.body));
    assert.equal(a.body.error?.code, code);
    assert.equal(typeof a.body.error?.message, 'string');
    assert.equal(typeof a.body.error?.details, 'object');
    if (message !== undefined) assert.match(a.body.error!.message, message);
  };

  before(async () => {
    f = await gatewayFixture('gw-bad');
    await f.admin.gateway.putRoutes([
      rpcRoute(echoService, 'echo', {
        name: 'echo',
        api: 'echo',
        method: 'POST',
        path: '/echo',
        maxBodyBytes: 1024,
      }),
      rpcRoute(echoService, 'slow', {
        name: 'slow',
        api: 'echo',
        method: 'POST',
        path: '/slow',
        timeoutMs: 300,
      }),
      rpcRoute(echoService, 'echo', {
        name: 'item',
        api: 'echo',
        method: 'GET',
        path: '/items/:n',
        auth: 'key',
        mapping: { n: 'path.n', s: 'query.s' },
      }),
      {
        name: 'down',
        api: 'echo',
        method: 'POST',
        path: '/down',
        target: { kind: 'rpc', service: 'test.nobody', method: 'x' },
        timeoutMs: 500,
      },
      rpcRoute(echoService, 'echo', {
        name: 'metered',
        api: 'metered',
        method: 'POST',
        path: '/metered',
      }),
      rpcRoute(echoService, 'echo', {
        name: 'closed',
        api: 'closed',
        method: 'POST',
        path: '/closed',
      }),
    ]);
    await f.admin.gateway.requestSubscription('partner', 'echo');
    await f.admin.gateway.approve('partner', 'echo');
    await f.admin.gateway.requestSubscription('partner', 'metered');
    await f.admin.gateway.approve('partner', 'metered', { quota: { perDay: 2 } });
    await f.admin.gateway.requestSubscription('partner', 'closed');
    url = await f.startGateway();
  });

  after(async () => {
    await f?.close();
  });

  it('answers a good signed call, with the app as caller and the route deadline', async () => {
    const a = await call(
      'POST',
      '/echo',
      signed('POST', '/echo', JSON.stringify({ n: 1, s: 'hi' })),
    );
    assert.equal(a.status, 200, JSON.stringify(a.body));
    assert.equal(a.body.n, 1);
    assert.equal(a.body.caller, 'partner');
    assert.ok((a.body.timeoutMs as number) > 0 && (a.body.timeoutMs as number) <= 3000);
    assert.match(a.headers.get('x-peak-trace-id') ?? '', /^[0-9a-f]{32}$/);
    const k = await call('GET', '/items/7?s=abc', {
      headers: { 'x-peak-api-key': `${f.key.id}.${f.key.secret}` },
    });
    assert.equal(k.status, 200, JSON.stringify(k.body));
    assert.deepEqual([k.body.n, k.body.s], [7, 'abc']);
  });

  it('refuses every bad input with one JSON shape, and the provider runs none of them', async () => {
    const before = f.calls.echo;
    const good = JSON.stringify({ n: 2, s: 'x' });
    refused(
      await call('POST', '/echo', { body: good, headers: { 'content-type': 'application/json' } }),
      401,
      'PEAK_GATEWAY_UNAUTHENTICATED',
      /x-peak-key/,
    );
    const tampered = signed('POST', '/echo', good);
    refused(
      await call('POST', '/echo', { ...tampered, body: JSON.stringify({ n: 3, s: 'x' }) }),
      401,
      'PEAK_GATEWAY_BAD_CREDENTIAL',
      /signature does not match/,
    );
    refused(
      await call('POST', '/echo', signed('POST', '/echo', good, { secret: 'not-the-secret' })),
      401,
      'PEAK_GATEWAY_BAD_CREDENTIAL',
    );
    refused(
      await call(
        'POST',
        '/echo',
        signed('POST', '/echo', good, { timestamp: Date.now() - 10 * 60_000 }),
      ),
      401,
      'PEAK_GATEWAY_EXPIRED',
      /600 s old/,
    );
    refused(
      await call(
        'POST',
        '/echo',
        signed('POST', '/echo', good, { timestamp: Date.now() + 10 * 60_000 }),
      ),
      401,
      'PEAK_GATEWAY_EXPIRED',
      /in the future/,
    );
    refused(
      await call('POST', '/echo', signed('POST', '/echo', 'x'.repeat(2000))),
      413,
      'PEAK_GATEWAY_TOO_LARGE',
    );
    refused(
      await call('POST', '/echo', signed('POST', '/echo', '{"n": 1,')),
      400,
      'PEAK_GATEWAY_BAD_REQUEST',
      /not valid JSON/,
    );
    refused(
      await call('POST', '/echo', signed('POST', '/echo', JSON.stringify({ n: 'one', s: 'x' }))),
      400,
      'PEAK_GATEWAY_BAD_REQUEST',
      /field n must be integer/,
    );
    refused(
      await call('POST', '/nowhere', signed('POST', '/nowhere', good)),
      404,
      'PEAK_GATEWAY_NO_ROUTE',
    );
    refused(await call('GET', '/echo'), 404, 'PEAK_GATEWAY_NO_ROUTE', /takes POST/);
    refused(
      await call('POST', '/closed', signed('POST', '/closed', good)),
      403,
      'PEAK_GATEWAY_FORBIDDEN',
      /not approved for API 'closed'/,
    );
    refused(
      await call('GET', '/items/7?s=a', { headers: { 'x-peak-api-key': `${f.key.id}.wrong` } }),
      401,
      'PEAK_GATEWAY_BAD_CREDENTIAL',
    );
    refused(
      await call('GET', '/items/x%ZZ', {
        headers: { 'x-peak-api-key': `${f.key.id}.${f.key.secret}` },
      }),
      400,
      'PEAK_GATEWAY_BAD_REQUEST',
      /percent-encoding/,
    );
    assert.equal(f.calls.echo, before, 'the provider ran a refused request');
  });

  it('refuses a replayed request, also after the first one ran', async () => {
    const once = signed('POST', '/echo', JSON.stringify({ n: 5, s: 'once' }));
    const before = f.calls.echo;
    assert.equal((await call('POST', '/echo', once)).status, 200);
    refused(await call('POST', '/echo', once), 401, 'PEAK_GATEWAY_REPLAYED', /used before/);
    assert.equal(f.calls.echo, before + 1);
  });

  it('answers 504 with a clear body when the target is slow, and 502 when it is down', async () => {
    refused(
      await call('POST', '/slow', signed('POST', '/slow', JSON.stringify({ ms: 2000 }))),
      504,
      'PEAK_GATEWAY_TIMEOUT',
      /did not answer within the deadline \(300 ms/,
    );
    refused(
      await call('POST', '/down', signed('POST', '/down', '{}')),
      502,
      'PEAK_GATEWAY_UPSTREAM_UNAVAILABLE',
      /unavailable/,
    );
  });

  it('refuses an app over its quota with 429 and when it resets', async () => {
    const body = JSON.stringify({ n: 1, s: 'q' });
    assert.equal((await call('POST', '/metered', signed('POST', '/metered', body))).status, 200);
    assert.equal((await call('POST', '/metered', signed('POST', '/metered', body))).status, 200);
    const before = f.calls.echo;
    const a = await call('POST', '/metered', signed('POST', '/metered', body));
    refused(a, 429, 'PEAK_GATEWAY_QUOTA_EXCEEDED', /resets at/);
    const resetAt = Date.parse(String(a.body.error!.details.resetAt));
    assert.ok(resetAt > Date.now(), 'the reset is in the future');
    assert.ok(Number(a.headers.get('retry-after')) >= 1);
    assert.equal(f.calls.echo, before);
  });

  it('answers odd header bytes and broken HTTP with a JSON 400, and keeps serving', async () => {
    const raw = (text: string) =>
      new Promise<string>((resolve, reject) => {
        const { port } = new URL(url);
        const s = net.connect(Number(port), '127.0.0.1', () => s.end(text));
        let got = '';
        s.on('data', (d) => {
          got += d.toString('latin1');
        });
        s.on('end', () => resolve(got));
        s.on('error', reject);
      });
    const ctl = await raw(
      'POST /echo HTTP/1.1\r\nhost: x\r\nx-peak-nonce: a\x01b\r\ncontent-length: 0\r\n\r\n',
    );
    assert.match(ctl, /^HTTP\/1\.1 400/);
    assert.match(ctl, /"code":"PEAK_GATEWAY_BAD_REQUEST"/);
    const latin = await raw(
      'POST /echo HTTP/1.1\r\nhost: x\r\nconnection: close\r\nx-peak-key: gk_\xe9\xff\r\nx-peak-signature: s\r\nx-peak-timestamp: 1\r\nx-peak-nonce: nonce-nonce\r\ncontent-length: 0\r\n\r\n',
    );
    assert.match(latin, /^HTTP\/1\.1 40[01]/);
    assert.match(latin, /"error":\{"code":"PEAK_GATEWAY_/);
    const big = await raw(
      `POST /echo HTTP/1.1\r\nhost: x\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n${'400\r\n'}${'y'.repeat(1024)}\r\n400\r\n${'y'.repeat(1024)}\r\n0\r\n\r\n`,
    );
    assert.match(big, /^HTTP\/1\.1 413/);
    const ok = await call(
      'POST',
      '/echo',
      signed('POST', '/echo', JSON.stringify({ n: 9, s: 'after' })),
    );
    assert.equal(ok.status, 200);
  });

  it('applies a route change live: a new route answers, a deleted one is gone', async () => {
    await f.admin.gateway.putRoute(
      rpcRoute(echoService, 'echo', {
        name: 'late',
        api: 'echo',
        method: 'POST',
        path: '/late/:n',
        mapping: { n: 'path.n', s: 'body.s' },
      }),
    );
    await waitFor(
      'the new route at the gateway',
      async () =>
        (await call('POST', '/late/4', signed('POST', '/late/4', JSON.stringify({ s: 'l' }))))
          .status === 200,
    );
    await f.admin.gateway.deleteRoute('late');
    await waitFor(
      'the deleted route gone',
      async () => (await call('POST', '/late/4', signed('POST', '/late/4', '{}'))).status === 404,
    );
  });
});
