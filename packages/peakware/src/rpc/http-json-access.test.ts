/**
 * The provider's HTTP/JSON port over real sockets, read by core's HTTP front (the default)
 * and by node:http alone (`httpFront: false`): the same answers either way, requests the
 * front does not take (chunked, over its body limit) served by node:http on the same port,
 * and a call whose caller hung up sees its signal abort.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { waitFor } from '../../test/support/wait.js';
import { ErrorCodes } from '../core/errors.js';
import { RpcServer } from './rpc-server.js';
import { defineService } from './service-definition.js';

const echo = defineService({
  name: 'test.echo',
  methods: {
    echo: { input: z.object({ s: z.string() }), output: z.object({ s: z.string() }) },
    hang: { input: z.object({}), output: z.object({}) },
  },
});

/** One raw HTTP/1.1 exchange on a fresh connection; resolves with what came back before it closed. */
function raw(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.end(request));
    let text = '';
    s.on('data', (d) => {
      text += d.toString('latin1');
    });
    // node:http ends a refused connection by destroying it: 'close' may come without 'end'.
    s.on('end', () => resolve(text));
    s.on('close', () => resolve(text));
    s.on('error', reject);
  });
}

for (const httpFront of [true, false]) {
  describe(`rpc HTTP/JSON port (${httpFront ? "core's HTTP front" : 'node:http alone'})`, () => {
    it('answers calls, errors and the service list the same way', async () => {
      let aborted = 0;
      const server = new RpcServer({ httpPort: 0, httpFront, maxFrameBytes: 64 * 1024 });
      server.addService(echo, {
        echo: ({ s }) => ({ s }),
        hang: (_i, _ctx, call) =>
          new Promise((resolve) => {
            call.signal.addEventListener('abort', () => {
              aborted++;
              resolve({});
            });
          }),
      });
      await server.start();
      const port = server.httpPort!;
      const base = `http://127.0.0.1:${port}`;
      try {
        const ok = await fetch(`${base}/rpc/test.echo/echo`, {
          method: 'POST',
          body: JSON.stringify({ s: 'hi' }),
        });
        assert.equal(ok.status, 200);
        assert.equal(ok.headers.get('content-type'), 'application/json');
        assert.deepEqual(await ok.json(), { result: { s: 'hi' } });

        // Keep-alive: several calls on one connection, pipelined.
        const two = await raw(
          port,
          `POST /rpc/test.echo/echo HTTP/1.1\r\nhost: x\r\ncontent-length: 9\r\n\r\n{"s":"a"}` +
            `POST /rpc/test.echo/echo HTTP/1.1\r\nhost: x\r\ncontent-length: 9\r\nconnection: close\r\n\r\n{"s":"b"}`,
        );
        assert.equal(two.match(/HTTP\/1\.1 200 OK/g)?.length, 2, two);
        assert.ok(two.indexOf('{"result":{"s":"a"}}') < two.indexOf('{"result":{"s":"b"}}'));

        // A chunked body is not the front's: node:http serves it on the same port.
        const chunked = await raw(
          port,
          'POST /rpc/test.echo/echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n9\r\n{"s":"c"}\r\n0\r\n\r\n',
        );
        assert.match(chunked, /^HTTP\/1\.1 200 OK/);
        assert.match(chunked, /\{"result":\{"s":"c"\}\}/);

        // Over the provider's limit: 413, with the limit named.
        const big = await fetch(`${base}/rpc/test.echo/echo`, {
          method: 'POST',
          body: JSON.stringify({ s: 'x'.repeat(100 * 1024) }),
        });
        assert.equal(big.status, 413);
        assert.match(
          ((await big.json()) as { error: { message: string } }).error.message,
          /over the limit of 65536/,
        );

        const notJson = await fetch(`${base}/rpc/test.echo/echo`, { method: 'POST', body: '{' });
        assert.equal(notJson.status, 400);
        assert.equal(
          ((await notJson.json()) as { error: { code: string } }).error.code,
          ErrorCodes.RPC_BAD_ARGUMENTS,
        );
        const unknown = await fetch(`${base}/rpc/test.nope/echo`, { method: 'POST', body: '{}' });
        assert.equal(unknown.status, 404);
        const wrongRoute = await fetch(`${base}/elsewhere`);
        assert.equal(wrongRoute.status, 404);
        const list = (await (await fetch(`${base}/rpc`)).json()) as {
          services: { name: string }[];
        };
        assert.deepEqual(
          list.services.map((s) => s.name),
          ['test.echo'],
        );
        // Malformed request text gets node:http's 400, and the port goes on serving.
        const garbage = await raw(port, 'POST /rpc/test.echo/echo HTTP/1.1\r\nbad header\r\n\r\n');
        assert.match(garbage, /^HTTP\/1\.1 400/);

        // A caller that hangs up: the running call's signal aborts.
        const hung = net.connect(port, '127.0.0.1');
        await new Promise((r) => hung.once('connect', r));
        hung.write('POST /rpc/test.echo/hang HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}');
        await waitFor('the call running', () => server.inFlight === 1);
        hung.destroy();
        await waitFor('the call aborted', () => aborted === 1);
      } finally {
        await server.stop();
      }
    });
  });
}
