import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type FrontRequest, type FrontResponse, HttpFront } from './http-front.js';

/** Who answered: the front's handler or node:http's. */
type Served = { by: 'front' | 'node'; method: string; url: string; body: string; host: string };

describe('HttpFront', () => {
  const served: Served[] = [];
  let front: HttpFront;
  let port = 0;
  /** A handler may ask to hand its request over (to prove node:http serves it whole). */
  let handOverPaths = new Set<string>();

  const answer = (
    s: Served,
    res: { writeHead: FrontResponse['writeHead']; end(t: string): void },
  ) => {
    const text = JSON.stringify(s);
    res.writeHead(200, ['content-type', 'application/json']);
    res.end(text);
  };

  before(async () => {
    const fallback = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const s: Served = {
          by: 'node',
          method: req.method ?? '',
          url: req.url ?? '',
          body: Buffer.concat(chunks).toString(),
          host: String(req.headers.host),
        };
        served.push(s);
        answer(s, res);
      });
    });
    fallback.on('clientError', (_err, socket) => {
      socket.end(
        'HTTP/1.1 400 Bad Request\r\ncontent-length: 11\r\nconnection: close\r\n\r\nbad request',
      );
    });
    front = new HttpFront({
      fallback,
      handle: (req: FrontRequest, res: FrontResponse) => {
        if (handOverPaths.has(req.url)) return req.handOver();
        if (req.url === '/over-later') return void setTimeout(() => req.handOver(), 80);
        const s: Served = {
          by: 'front',
          method: req.method,
          url: req.url,
          body: req.body.toString(),
          host: String(req.headers.host),
        };
        served.push(s);
        if (req.url === '/slow') setTimeout(() => answer(s, res), 50);
        else answer(s, res);
      },
      keepAliveTimeoutMs: 5_000,
      requestTimeoutMs: 300,
      maxBodyBytes: 1024,
    });
    await new Promise<void>((r) => front.server.listen(0, '127.0.0.1', r));
    port = (front.server.address() as AddressInfo).port;
  });
  after(() => front.close());

  /** Sends `parts` over one raw connection (each its own write, `gapMs` apart) and reads until it ends or `settleMs` passes quietly. */
  async function raw(parts: string[], gapMs = 0, settleMs = 150): Promise<string> {
    const s = net.connect(port, '127.0.0.1');
    s.setNoDelay(true);
    await new Promise((r) => s.once('connect', r));
    let out = '';
    s.on('data', (d) => {
      out += d.toString('latin1');
    });
    const ended = new Promise<void>((r) => s.once('close', () => r()));
    for (const p of parts) {
      s.write(p);
      if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
    }
    await Promise.race([ended, new Promise((r) => setTimeout(r, settleMs))]);
    s.destroy();
    return out;
  }

  /** The answers' JSON bodies, in order. */
  const bodies = (text: string): Served[] =>
    [...text.matchAll(/\{"by":[^}]*\}/g)].map((m) => JSON.parse(m[0]) as Served);

  const post = (path: string, body: string, extra = '') =>
    `POST ${path} HTTP/1.1\r\nhost: a.test\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

  it('serves plain keep-alive requests itself, one connection, with the headers node:http would send', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const got: { status: number; headers: http.IncomingHttpHeaders; body: Served }[] = [];
    for (const body of ['one', 'two']) {
      got.push(
        await new Promise((resolve, reject) => {
          const r = http.request(
            {
              port,
              method: 'POST',
              path: `/p?q=${body}`,
              agent,
              headers: { 'content-type': 'text/plain' },
            },
            (res) => {
              let t = '';
              res.on('data', (c) => (t += c));
              res.on('end', () =>
                resolve({
                  status: res.statusCode ?? 0,
                  headers: res.headers,
                  body: JSON.parse(t) as Served,
                }),
              );
            },
          );
          r.on('error', reject);
          r.end(body);
        }),
      );
    }
    agent.destroy();
    assert.deepEqual(
      got.map((g) => [g.status, g.body.by, g.body.url, g.body.body]),
      [
        [200, 'front', '/p?q=one', 'one'],
        [200, 'front', '/p?q=two', 'two'],
      ],
    );
    const h = got[0]!.headers;
    assert.equal(h['content-type'], 'application/json');
    assert.equal(h.connection, 'keep-alive');
    assert.equal(h['keep-alive'], 'timeout=5');
    assert.equal(Number(h['content-length']), Buffer.byteLength(JSON.stringify(got[0]!.body)));
    assert.match(String(h.date), /GMT$/);
  });

  it('answers pipelined requests in order, a slow one first', async () => {
    const out = await raw([post('/slow', 'a') + post('/fast', 'b') + post('/fast', 'c')], 0, 400);
    assert.deepEqual(
      bodies(out).map((b) => [b.by, b.url, b.body]),
      [
        ['front', '/slow', 'a'],
        ['front', '/fast', 'b'],
        ['front', '/fast', 'c'],
      ],
    );
  });

  it('waits for a body that arrives after its head', async () => {
    const whole = post('/late-body', 'hello body');
    const cut = whole.indexOf('hello');
    const out = await raw([whole.slice(0, cut), whole.slice(cut)], 60);
    assert.deepEqual(
      bodies(out).map((b) => [b.by, b.body]),
      [['front', 'hello body']],
    );
  });

  it('answers 408 and closes when the body does not come', async () => {
    const out = await raw([post('/never', 'x'.repeat(50)).slice(0, -20)], 0, 1_000);
    assert.match(out, /^HTTP\/1\.1 408 Request Timeout\r\n/);
    assert.match(out, /connection: close/);
    assert.match(out, /content-length it announces|content-length announces/);
  });

  it('hands to node:http, with every unanswered byte, what it does not serve', async () => {
    const cases: [string, string[], string][] = [
      [
        'a chunked body',
        [
          'POST /chunked HTTP/1.1\r\nhost: a.test\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
        ],
        'hello',
      ],
      [
        'a head split across writes',
        [post('/split', 'abc').slice(0, 20), post('/split', 'abc').slice(20)],
        'abc',
      ],
      ['expect: 100-continue', [post('/expect', 'ex', 'expect: 100-continue\r\n')], 'ex'],
      ['HTTP/1.0', ['GET /old HTTP/1.0\r\nhost: a.test\r\n\r\n'], ''],
      ['HEAD', ['HEAD /head HTTP/1.1\r\nhost: a.test\r\n\r\n'], ''],
      ["a body over the front's limit", [post('/big', 'x'.repeat(2000))], 'x'.repeat(2000)],
      ['an absolute-form target', ['GET http://a.test/abs HTTP/1.1\r\nhost: a.test\r\n\r\n'], ''],
      ['the handler hands it over', [post('/over', 'mine')], 'mine'],
    ];
    handOverPaths = new Set(['/over']);
    for (const [what, parts, body] of cases) {
      const before = served.length;
      const out = await raw(parts, parts.length > 1 ? 40 : 0);
      assert.match(out, /^HTTP\/1\.1 (100 Continue\r\n\r\nHTTP\/1\.1 )?200 OK/, what);
      const s = served.slice(before);
      assert.equal(s.length, 1, `${what}: served once`);
      assert.equal(s[0]!.by, 'node', what);
      assert.equal(s[0]!.body, body, what);
    }
    handOverPaths = new Set();
  });

  it('keeps serving a handed-over connection through node:http, pipelined requests included', async () => {
    const before = served.length;
    const out = await raw([
      `POST /c1 HTTP/1.1\r\nhost: a.test\r\ntransfer-encoding: chunked\r\n\r\n1\r\nA\r\n0\r\n\r\n${post('/c2', 'B')}`,
    ]);
    assert.deepEqual(
      bodies(out).map((b) => [b.by, b.url, b.body]),
      [
        ['node', '/c1', 'A'],
        ['node', '/c2', 'B'],
      ],
    );
    assert.equal(served.length - before, 2);
  });

  it('hands a request over later with the bytes that arrived meanwhile', async () => {
    const before = served.length;
    const out = await raw([post('/over-later', 'L1'), post('/after', 'L2')], 30, 400);
    assert.deepEqual(
      bodies(out).map((b) => [b.by, b.url, b.body]),
      [
        ['node', '/over-later', 'L1'],
        ['node', '/after', 'L2'],
      ],
    );
    assert.equal(served.length - before, 2);
  });

  it('lets node:http refuse malformed requests: bad header text, duplicate lengths, no host, smuggling', async () => {
    const bad = [
      'POST /x HTTP/1.1\r\nhost: a.test\r\nx-bad: a\u0001b\r\ncontent-length: 0\r\n\r\n',
      'POST /x HTTP/1.1\r\nhost: a.test\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab',
      'POST /x HTTP/1.1\r\ncontent-length: 0\r\n\r\n',
      'POST /x HTTP/1.1\r\nhost: a.test\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n',
      'POST /x HTTP/1.1\r\nhost: a.test\r\n content-length: 1\r\n\r\n',
      'GARBAGE\r\n\r\n',
    ];
    const before = served.length;
    for (const b of bad) {
      const out = await raw([b]);
      assert.match(out, /^HTTP\/1\.1 400 /, JSON.stringify(b));
    }
    assert.equal(served.length, before, 'none of them reached a handler');
  });

  it('closes after answering a request that asks for it', async () => {
    const out = await raw(
      [post('/bye', 'z', 'connection: close\r\n') + post('/never-read', 'y')],
      0,
      1_000,
    );
    assert.match(out, /connection: close\r\n/);
    assert.deepEqual(
      bodies(out).map((b) => b.url),
      ['/bye'],
    );
  });

  it('answers a client that ends its side right after its requests, then ends', async () => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (d) => (out += d));
    const closed = new Promise((r) => s.once('close', r));
    s.end(post('/half', 'h1') + post('/slow', 'h2'));
    await closed;
    assert.deepEqual(
      bodies(out).map((b) => [b.by, b.url, b.body]),
      [
        ['front', '/half', 'h1'],
        ['front', '/slow', 'h2'],
      ],
    );
  });

  it('refuses a header that would split the answer, as node:http does', async () => {
    const got: unknown[] = [];
    const f = new HttpFront({
      fallback: http.createServer(),
      handle: (_req, res) => {
        try {
          res.writeHead(200, ['x-evil', 'a\r\nset-cookie: b']);
        } catch (err) {
          got.push(err);
        }
        assert.equal(res.headersSent, false);
        res.writeHead(500, ['content-type', 'text/plain']);
        res.end('refused');
      },
      keepAliveTimeoutMs: 1_000,
      requestTimeoutMs: 1_000,
      maxBodyBytes: 1024,
    });
    await new Promise<void>((r) => f.server.listen(0, '127.0.0.1', r));
    const p = (f.server.address() as AddressInfo).port;
    const res = await fetch(`http://127.0.0.1:${p}/x`);
    assert.equal(res.status, 500);
    assert.equal(await res.text(), 'refused');
    assert.equal(res.headers.get('set-cookie'), null);
    assert.ok(got[0] instanceof TypeError);
    await f.close();
  });

  it('closes idle connections at close() and lets one in flight answer first', async () => {
    const f = new HttpFront({
      fallback: http.createServer(),
      handle: (_req, res) => setTimeout(() => res.end('done'), 100),
      keepAliveTimeoutMs: 10_000,
      requestTimeoutMs: 1_000,
      maxBodyBytes: 1024,
    });
    await new Promise<void>((r) => f.server.listen(0, '127.0.0.1', r));
    const p = (f.server.address() as AddressInfo).port;
    const idle = net.connect(p, '127.0.0.1');
    const idleClosed = new Promise((r) => idle.once('close', r));
    const busy = net.connect(p, '127.0.0.1');
    let answer = '';
    busy.on('data', (d) => (answer += d));
    const busyClosed = new Promise((r) => busy.once('close', r));
    await new Promise((r) => busy.once('connect', r));
    busy.write('GET /x HTTP/1.1\r\nhost: a\r\n\r\n');
    await new Promise((r) => setTimeout(r, 30));
    await f.close();
    await idleClosed;
    await busyClosed;
    assert.match(answer, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(answer, /connection: close\r\n/);
    assert.match(answer, /\r\n\r\ndone$/);
  });

  it('closes handed-over connections at close() too: an idle one at once, a busy one after its answer', {
    timeout: 5_000,
  }, async () => {
    const f = new HttpFront({
      fallback: http.createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
        req.resume();
        req.on('end', () =>
          setTimeout(() => res.end(`node ${req.url}`), req.url === '/slow' ? 200 : 0),
        );
      }),
      handle: (_req, res) => res.end('front'),
      keepAliveTimeoutMs: 30_000,
      requestTimeoutMs: 1_000,
      maxBodyBytes: 1024,
    });
    await new Promise<void>((r) => f.server.listen(0, '127.0.0.1', r));
    const p = (f.server.address() as AddressInfo).port;
    const chunked = (path: string) =>
      `POST ${path} HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n`;
    const open = (path: string) => {
      const s = net.connect(p, '127.0.0.1');
      let out = '';
      s.on('data', (d) => (out += d));
      s.write(chunked(path));
      return { closed: new Promise((r) => s.once('close', r)), out: () => out };
    };
    const idle = open('/quick');
    await new Promise((r) => setTimeout(r, 100)); // answered: node's, idle, kept alive
    const busy = open('/slow');
    await new Promise((r) => setTimeout(r, 50));
    assert.match(idle.out(), /\r\n\r\n(\w+\r\n)?node \/quick/);
    await f.close(); // keep-alive is 30 s: this test's 5 s timeout fails if either waits for it
    await idle.closed;
    await busy.closed;
    assert.match(busy.out(), /node \/slow/);
  });
});
