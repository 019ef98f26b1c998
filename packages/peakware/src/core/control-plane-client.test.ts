import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { ControlPlaneClient, serversOf } from './control-plane-client.js';
import { isPeakError, type PeakError } from './errors.js';
import type { SseEvent } from './sse-reader.js';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;

/** A real HTTP server on loopback that records what it was asked. */
class TestServer {
  readonly hits: { method: string; url: string; auth: string | undefined; body: string }[] = [];
  #server: http.Server | undefined;
  port = 0;

  constructor(public handler: Handler) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(port = 0): Promise<this> {
    this.#server = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => {
        body += c;
      });
      req.on('end', () => {
        this.hits.push({
          method: req.method ?? '',
          url: req.url ?? '',
          auth: req.headers.authorization,
          body,
        });
        this.handler(req, res, body);
      });
    });
    await new Promise<void>((resolve) => this.#server!.listen(port, '127.0.0.1', resolve));
    this.port = (this.#server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    if (s === undefined) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

const servers: TestServer[] = [];
async function serve(handler: Handler): Promise<TestServer> {
  const s = await new TestServer(handler).start();
  servers.push(s);
  return s;
}
after(async () => {
  for (const s of servers) await s.stop();
});

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** A port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const s = await new TestServer(() => undefined).start();
  const port = s.port;
  await s.stop();
  return port;
}

function recordingSleep() {
  const waits: number[] = [];
  return {
    waits,
    sleep: async (ms: number) => {
      waits.push(ms);
    },
  };
}

const noJitter = { initialMs: 100, maxMs: 1000, jitter: 'none' } as const;

describe('control-plane client: failover', () => {
  it('fails over from a stopped node to a live one, then sticks to it', async () => {
    const live = await serve((_req, res) => json(res, 200, { node: 'b' }));
    const stopped = `http://127.0.0.1:${await closedPort()}`;
    const { sleep, waits } = recordingSleep();
    const client = new ControlPlaneClient({ servers: [stopped, live.url], sleep });
    assert.deepEqual(await client.get('/api/v1/info'), { node: 'b' });
    assert.equal(client.server, live.url);
    assert.deepEqual(waits, [], 'going to an untried node does not wait');
    // A non-idempotent POST goes straight to the node in use: the stopped one is remembered.
    assert.deepEqual(await client.post('/api/v1/things', { a: 1 }), { node: 'b' });
    assert.equal(live.hits.length, 2);
    assert.equal(live.hits[1]!.body, '{"a":1}');
  });

  it('moves on on a 5xx, and comes back to the first node when the second fails', async () => {
    let aDown = false;
    let bDown = false;
    const a = await serve((_req, res) =>
      aDown
        ? json(res, 503, { error: { code: 'PEAK_SERVER_BUSY', message: 'busy' } })
        : json(res, 200, { node: 'a' }),
    );
    const b = await serve((_req, res) => (bDown ? res.destroy() : json(res, 200, { node: 'b' })));
    let now = 0;
    const client = new ControlPlaneClient({
      servers: [a.url, b.url],
      sleep: async () => undefined,
      now: () => now,
      failoverCooldownMs: 1000,
    });
    assert.deepEqual(await client.get('/x'), { node: 'a' });
    aDown = true;
    assert.deepEqual(await client.get('/x'), { node: 'b' });
    aDown = false;
    assert.deepEqual(await client.get('/x'), { node: 'b' }, 'sticks to b');
    bDown = true;
    now += 2000;
    assert.deepEqual(await client.get('/x'), { node: 'a' }, 'b broke: back to a');
    assert.equal(client.server, a.url);
  });

  it('names every node it tried when none answers', async () => {
    const p1 = `http://127.0.0.1:${await closedPort()}`;
    const p2 = `http://127.0.0.1:${await closedPort()}`;
    const client = new ControlPlaneClient({
      servers: [p1, p2],
      sleep: async () => undefined,
      serverName: 'peak server',
      unreachableHint: 'is it running?',
    });
    await assert.rejects(client.get('/x'), (err: PeakError) => {
      assert.equal(err.code, 'PEAK_SERVER_UNREACHABLE');
      assert.equal(
        err.message,
        `cannot reach peak server at ${p1}, ${p2} (ECONNREFUSED); is it running?`,
      );
      return true;
    });
  });
});

describe('control-plane client: retries', () => {
  it('retries a 503 with exponential backoff through the injected sleep', async () => {
    let calls = 0;
    const s = await serve((_req, res) => {
      calls++;
      if (calls < 3) json(res, 503, { error: { code: 'PEAK_SERVER_BUSY', message: 'busy' } });
      else json(res, 200, { ok: true });
    });
    const { sleep, waits } = recordingSleep();
    const client = new ControlPlaneClient({ servers: s.url, sleep, backoff: noJitter });
    assert.deepEqual(await client.get('/x'), { ok: true });
    assert.equal(calls, 3);
    assert.deepEqual(waits, [100, 200]);
  });

  it('retries ECONNREFUSED until the node is up (a non-idempotent POST too: it never arrived)', async () => {
    const port = await closedPort();
    const late = new TestServer((_req, res) => json(res, 200, { created: true }));
    servers.push(late);
    const waits: number[] = [];
    const client = new ControlPlaneClient({
      servers: `http://127.0.0.1:${port}`,
      backoff: noJitter,
      sleep: async (ms) => {
        waits.push(ms);
        if (waits.length === 2) await late.start(port);
      },
    });
    assert.deepEqual(await client.post('/api/v1/mq/topics', { name: 't' }), { created: true });
    assert.deepEqual(waits, [100, 200]);
    assert.equal(late.hits.length, 1, 'the POST arrived once');
  });

  it('does not retry a non-idempotent POST after a 5xx (it may have run)', async () => {
    const s = await serve((_req, res) =>
      json(res, 500, { error: { code: 'PEAK_INTERNAL', message: 'the broker hiccuped' } }),
    );
    const { sleep, waits } = recordingSleep();
    const client = new ControlPlaneClient({ servers: s.url, sleep });
    await assert.rejects(client.post('/api/v1/mq/topics/t/messages', { messages: [] }), {
      code: 'PEAK_INTERNAL',
      message: 'the broker hiccuped',
    });
    assert.equal(s.hits.length, 1);
    assert.deepEqual(waits, []);
  });

  it('retries a POST after a 5xx when the caller says so; retry: false tries once', async () => {
    let calls = 0;
    const s = await serve((_req, res) => {
      calls++;
      if (calls === 1) json(res, 502, {});
      else json(res, 200, { ids: ['1'] });
    });
    const client = new ControlPlaneClient({ servers: s.url, sleep: async () => undefined });
    assert.deepEqual(await client.post('/send', {}, { retry: true }), { ids: ['1'] });
    calls = 0;
    await assert.rejects(client.get('/x', { retry: false }), { code: 'PEAK_INTERNAL' });
    assert.equal(calls, 1);
  });

  it('does not retry a 4xx', async () => {
    const s = await serve((_req, res) => json(res, 404, {}));
    const client = new ControlPlaneClient({ servers: s.url, sleep: async () => undefined });
    await assert.rejects(client.get('/nothing'), { code: 'PEAK_INTERNAL' });
    assert.equal(s.hits.length, 1);
  });

  it('gives up after its retries and throws the last answer', async () => {
    const s = await serve((_req, res) =>
      json(res, 503, { error: { code: 'PEAK_DB_UNREACHABLE', message: 'db down' } }),
    );
    const { sleep, waits } = recordingSleep();
    const client = new ControlPlaneClient({ servers: s.url, sleep, retries: 3, backoff: noJitter });
    await assert.rejects(client.put('/x', { v: 1 }), { code: 'PEAK_DB_UNREACHABLE' });
    assert.equal(s.hits.length, 4);
    assert.deepEqual(waits, [100, 200, 400]);
  });
});

describe('control-plane client: errors, auth, options', () => {
  it("turns the server's error body into a PeakError with its code, message and details", async () => {
    const s = await serve((_req, res) =>
      json(res, 409, {
        error: {
          code: 'PEAK_CONFIG_CONFLICT',
          message: 'shop/db/pool is at version 3, not 2',
          details: { current: 3 },
        },
      }),
    );
    const client = new ControlPlaneClient({ servers: s.url });
    await assert.rejects(client.put('/api/v1/config/items/shop/db/pool', {}), (err) => {
      assert.ok(isPeakError(err, 'PEAK_CONFIG_CONFLICT'));
      assert.equal(err.message, 'shop/db/pool is at version 3, not 2');
      assert.deepEqual(err.details, { current: 3, status: 409 });
      return true;
    });
  });

  it('a body that is not an error object becomes PEAK_INTERNAL naming the call', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(502);
      res.end('<html>bad gateway</html>');
    });
    const client = new ControlPlaneClient({ servers: s.url, retries: 0 });
    await assert.rejects(client.get('/api/v1/nodes', { query: { a: 1 } }), (err) => {
      assert.ok(isPeakError(err, 'PEAK_INTERNAL'));
      assert.equal(err.message, 'GET /api/v1/nodes answered HTTP 502');
      assert.equal(err.details.body, '<html>bad gateway</html>');
      return true;
    });
  });

  it('sends a bearer token read per request, and the query', async () => {
    const s = await serve((_req, res) => json(res, 200, {}));
    let n = 0;
    const client = new ControlPlaneClient({ servers: s.url, token: async () => `t${++n}` });
    await client.get('/a', { query: { app: 'shop', tag: ['x', 'y'], none: undefined } });
    await client.delete('/b');
    assert.deepEqual(
      s.hits.map((h) => [h.url, h.auth]),
      [
        ['/a?app=shop&tag=x&tag=y', 'Bearer t1'],
        ['/b', 'Bearer t2'],
      ],
    );
  });

  it('returns an accepted non-2xx body instead of throwing', async () => {
    const s = await serve((_req, res) => json(res, 503, { status: 'not-ready', reason: 'x' }));
    const client = new ControlPlaneClient({ servers: s.url });
    assert.deepEqual(await client.get('/ready', { acceptStatus: [503], retry: false }), {
      status: 'not-ready',
      reason: 'x',
    });
  });

  it('a try that outlives timeoutMs fails as unreachable (ETIMEDOUT)', async () => {
    const s = await serve(() => undefined);
    const client = new ControlPlaneClient({ servers: s.url, timeoutMs: 50, retries: 0 });
    await assert.rejects(client.get('/slow'), /\(ETIMEDOUT\)/);
  });

  it('an abort rejects with its reason, without retrying', async () => {
    const s = await serve(() => undefined);
    const client = new ControlPlaneClient({ servers: s.url });
    const abort = new AbortController();
    const p = client.get('/hang', { signal: abort.signal });
    setTimeout(() => abort.abort(new Error('closing')), 20);
    await assert.rejects(p, /closing/);
    assert.equal(s.hits.length, 1);
  });
});

describe('control-plane client: streams', () => {
  it('reads SSE events split across writes, multi-line data included', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': hello\n\nevent: snap');
      setTimeout(() => res.write('shot\ndata: {"a":\ndata: 1}\n'), 10);
      setTimeout(() => res.end('\nevent: entry\ndata: {"b":2}\n\n'), 20);
    });
    const client = new ControlPlaneClient({ servers: s.url });
    const got: SseEvent[] = [];
    await client.events('/watch', (e) => got.push(e), { query: { app: 'shop' } });
    assert.deepEqual(got, [
      { event: 'snapshot', data: '{"a":\n1}' },
      { event: 'entry', data: '{"b":2}' },
    ]);
    assert.equal(s.hits[0]!.url, '/watch?app=shop');
  });

  it('a refused stream throws the server error', async () => {
    const s = await serve((_req, res) =>
      json(res, 400, { error: { code: 'PEAK_INVALID_ARGUMENT', message: 'bad key' } }),
    );
    const client = new ControlPlaneClient({ servers: s.url });
    await assert.rejects(
      client.events('/watch', () => undefined),
      {
        code: 'PEAK_INVALID_ARGUMENT',
        message: 'bad key',
      },
    );
  });

  it('a silent stream fails after idleMs', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': open\n\n');
    });
    const client = new ControlPlaneClient({ servers: s.url });
    await assert.rejects(
      client.events('/watch', () => undefined, { idleMs: 50 }),
      /ETIMEDOUT/,
    );
  });

  it('subscribe reconnects to the other node when a stream ends, and stops at close', async () => {
    const a = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end('data: from-a\n\n');
    });
    const b = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: from-b\n\n');
    });
    const client = new ControlPlaneClient({ servers: [a.url, b.url] });
    const got: string[] = [];
    let gotB: () => void = () => undefined;
    const seenB = new Promise<void>((resolve) => {
      gotB = resolve;
    });
    const waits: number[] = [];
    let q = 0;
    const sub = client.subscribe(
      '/watch',
      (e) => {
        got.push(e.data);
        if (e.data === 'from-b') gotB();
      },
      {
        query: () => ({ n: ++q }),
        sleep: async (ms) => {
          waits.push(ms);
        },
      },
    );
    await seenB;
    sub.close();
    await sub.done;
    assert.deepEqual(got, ['from-a', 'from-b']);
    assert.equal(a.hits[0]!.url, '/watch?n=1');
    assert.equal(b.hits[0]!.url, '/watch?n=2', 'the query is read again at each connect');
    assert.equal(waits.length, 1);
  });

  it('reads NDJSON lines from a POSTed stream, and refusals as PeakErrors', async () => {
    const s = await serve((req, res, body) => {
      if (req.url === '/refuse') {
        json(res, 404, { error: { code: 'PEAK_MQ_UNKNOWN_TOPIC', message: 'no topic t' } });
        return;
      }
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write(`{"echo":${body}}\n\n{"i":`);
      setTimeout(() => res.end('2}\n'), 10);
    });
    const client = new ControlPlaneClient({ servers: s.url });
    const lines: string[] = [];
    for await (const l of client.lines('POST', '/stream', { body: { x: 1 } })) lines.push(l);
    assert.deepEqual(lines, ['{"echo":{"x":1}}', '{"i":2}']);
    await assert.rejects(
      async () => {
        for await (const _ of client.lines('POST', '/refuse', { body: {} })) void _;
      },
      { code: 'PEAK_MQ_UNKNOWN_TOPIC', message: 'no topic t' },
    );
  });
});

describe('control-plane client: the servers option of SDK clients', () => {
  it('takes servers, still takes the deprecated server alias, and names the owner when neither is given', () => {
    assert.deepEqual(serversOf({ servers: ['http://a:1', 'http://b:2'] }, 'Producer'), [
      'http://a:1',
      'http://b:2',
    ]);
    // The deprecated alias itself: users may still pass it until 1.0.
    assert.equal(serversOf({ server: 'http://a:1' }, 'Producer'), 'http://a:1');
    assert.equal(
      serversOf({ servers: 'http://b:2', server: 'http://a:1' }, 'Producer'),
      'http://b:2',
    );
    assert.throws(
      () => serversOf({}, 'Producer'),
      (err: PeakError) =>
        err.code === 'PEAK_USAGE' &&
        /^Producer: give the control plane as servers/.test(err.message),
    );
  });
});
