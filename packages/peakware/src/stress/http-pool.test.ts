import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { HttpPool, type HttpResult } from './http-pool.js';

/**
 * A raw TCP server: each request (read up to its blank line) is answered with the next
 * canned reply, written in pieces of `split` bytes so the parser sees answers cut anywhere.
 */
function rawServer() {
  const requests: string[] = [];
  let replies: (string | ((raw: string) => string))[] = [];
  let split = 0;
  let closeAfter = false;
  const server = net.createServer((socket) => {
    let buf = '';
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const len = Number(/content-length: (\d+)/i.exec(buf.slice(0, end))?.[1] ?? 0);
        if (buf.length < end + 4 + len) return;
        const raw = buf.slice(0, end + 4 + len);
        buf = buf.slice(end + 4 + len);
        requests.push(raw);
        const next = replies.shift() ?? 'HTTP/1.1 500 Nothing canned\r\ncontent-length: 0\r\n\r\n';
        const bytes = Buffer.from(typeof next === 'function' ? next(raw) : next, 'latin1');
        const step = split > 0 ? split : bytes.length;
        for (let i = 0; i < bytes.length; i += step) socket.write(bytes.subarray(i, i + step));
        if (closeAfter) socket.end();
      }
    });
    socket.on('error', () => {});
  });
  return {
    server,
    requests,
    answer(
      list: (string | ((raw: string) => string))[],
      opts: { split?: number; close?: boolean } = {},
    ) {
      replies = list;
      split = opts.split ?? 0;
      closeAfter = opts.close ?? false;
      requests.length = 0;
    },
  };
}

describe('HttpPool', () => {
  const raw = rawServer();
  let url: string;
  before(async () => {
    await new Promise<void>((r) => raw.server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(raw.server.address() as net.AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => raw.server.close(() => r())));

  it('reads content-length and chunked answers cut at every byte, on one keep-alive connection', async () => {
    const pool = new HttpPool({ url });
    try {
      raw.answer(
        [
          'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello',
          'HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nx-trailer: y\r\n\r\n',
          // chunked wins over a content-length (RFC 9112 6.3)
          'HTTP/1.1 200 OK\r\ncontent-length: 99\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n',
          'HTTP/1.0 204 No Content\r\ncontent-length: 7\r\n\r\n',
        ],
        { split: 1 },
      );
      const a = await pool.request({ method: 'GET', path: '/a' });
      assert.equal(a.status, 200);
      assert.equal(a.body.toString(), 'hello');
      assert.equal(a.headers['x-a'], '1');
      const b = await pool.request({ method: 'POST', path: '/b', body: 'é!' });
      assert.equal(b.status, 201);
      assert.equal(b.body.toString(), 'abcde');
      const c = await pool.request({ method: 'GET', path: '/c' });
      assert.equal(c.body.toString(), 'z');
      const d = await pool.request({ method: 'GET', path: '/d' });
      assert.equal(d.status, 204);
      assert.equal(d.body.length, 0);
      assert.equal(pool.connections, 1);
      assert.match(
        raw.requests[1]!,
        /^POST \/b HTTP\/1\.1\r\nhost: 127\.0\.0\.1:\d+\r\ncontent-length: 3\r\n\r\n/,
      );
      assert.equal(Buffer.from(raw.requests[1]!, 'latin1').subarray(-3).toString(), 'é!');
    } finally {
      pool.close();
    }
  });

  it('sends a prepared request as serialised once, with a callback', async () => {
    const pool = new HttpPool({ url });
    try {
      raw.answer([
        'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok',
        'HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n',
      ]);
      const req = pool.prepare({
        method: 'PUT',
        path: '/p?q=1',
        headers: { 'x-b': '2' },
        body: 'xyz',
      });
      const send = () =>
        new Promise<HttpResult>((resolve, reject) =>
          pool.send(req, (err, res) => (err === undefined ? resolve(res!) : reject(err))),
        );
      assert.equal((await send()).body.toString(), 'ok');
      assert.equal((await send()).status, 404);
      assert.equal(raw.requests.length, 2);
      assert.equal(raw.requests[0], raw.requests[1]);
      assert.match(
        raw.requests[0]!,
        /^PUT \/p\?q=1 HTTP\/1\.1\r\nhost: [^\r]+\r\nx-b: 2\r\ncontent-length: 3\r\n\r\nxyz$/,
      );
    } finally {
      pool.close();
    }
  });

  it('reads a body to the close when the answer gives no length', async () => {
    const pool = new HttpPool({ url });
    try {
      raw.answer(['HTTP/1.1 200 OK\r\n\r\nuntil the end'], { close: true });
      const r = await pool.request({ method: 'GET', path: '/' });
      assert.equal(r.body.toString(), 'until the end');
    } finally {
      pool.close();
    }
  });

  for (const [what, reply, message] of [
    ['a status line that is not HTTP/1.x', 'HTTP/2 200 OK\r\n\r\n', /not an HTTP\/1\.x answer/],
    [
      'a status without digits',
      'HTTP/1.1 OK\r\ncontent-length: 0\r\n\r\n',
      /not an HTTP\/1\.x answer/,
    ],
    [
      'a bad content-length',
      'HTTP/1.1 200 OK\r\ncontent-length: 12abc\r\n\r\n',
      /bad content-length/,
    ],
    [
      'a negative chunk size',
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n-5\r\nabc\r\n0\r\n\r\n',
      /bad chunk size/,
    ],
    [
      'a chunk size that is not hex',
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n',
      /bad chunk size/,
    ],
    [
      'a chunk longer than its size',
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n',
      /not ended by CRLF/,
    ],
    [
      'bytes after the answer',
      'HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nab',
      /unsolicited bytes/,
    ],
  ] as const)
    it(`fails a request on ${what}, and the next request gets a new connection`, async () => {
      const pool = new HttpPool({ url });
      try {
        raw.answer([reply, 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok']);
        const first = pool.request({ method: 'GET', path: '/' });
        if (what === 'bytes after the answer') {
          // the answer itself is whole; the extra byte (same write) breaks its connection
          assert.equal((await first).status, 200);
        } else await assert.rejects(first, message);
        const again = await pool.request({ method: 'GET', path: '/' });
        assert.equal(again.body.toString(), 'ok');
        assert.equal(pool.connections, 1);
      } finally {
        pool.close();
      }
    });

  it('fails a head that never ends instead of buffering it without bound', async () => {
    const pool = new HttpPool({ url });
    try {
      raw.answer([`HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(70_000)}`]);
      await assert.rejects(pool.request({ method: 'GET', path: '/' }), /head longer than/);
    } finally {
      pool.close();
    }
  });
});
