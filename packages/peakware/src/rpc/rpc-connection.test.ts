import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { waitFor } from '../../test/support/wait.js';
import { ErrorCodes, isPeakError } from '../core/errors.js';
import { encodeFrame, type Frame, FrameDecoder } from './frame-codec.js';
import { RpcConnection } from './rpc-connection.js';
import { RpcServer } from './rpc-server.js';
import { defineService } from './service-definition.js';

const svc = defineService({
  name: 'conn.test',
  methods: {
    wait: { input: z.object({ ms: z.number() }), output: z.number(), idempotent: true },
  },
});

/** Calls the test server's `wait` has started (in any test). */
let started = 0;

async function startServer(port = 0, maxFrameBytes?: number): Promise<RpcServer> {
  const server = new RpcServer({ port, quietMs: 10, ...(maxFrameBytes ? { maxFrameBytes } : {}) });
  server.addService(svc, {
    wait: async ({ ms }) => {
      started++;
      await new Promise((r) => setTimeout(r, ms));
      return ms;
    },
  });
  await server.start();
  return server;
}

describe('rpc connection', () => {
  it('multiplexes many calls on one connection, answers matched by id', async () => {
    const server = await startServer();
    const conn = new RpcConnection('127.0.0.1', server.port);
    try {
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          conn.call(svc.id, 'wait', {}, { ms: (i * 7) % 20 }, 5000),
        ),
      );
      assert.deepEqual(
        results,
        Array.from({ length: 200 }, (_, i) => (i * 7) % 20),
      );
    } finally {
      conn.close();
      await server.stop();
    }
  });

  it('closes its side once a draining provider has answered its last call', async () => {
    const server = await startServer();
    const conn = new RpcConnection('127.0.0.1', server.port);
    try {
      const before = started;
      const inFlight = conn.call(svc.id, 'wait', {}, { ms: 200 }, 5000);
      // The call running on the provider, not just sent: a stop before it arrived answers
      // it "not run" (once in CI).
      await waitFor('the call running', () => conn.state === 'open' && started > before);
      const stopped = server.stop();
      await waitFor('the GOAWAY', () => conn.draining);
      assert.equal(conn.state, 'open', 'kept open while its call is in flight');
      assert.equal(await inFlight, 200, 'the call in flight was answered');
      await waitFor('the consumer closed the drained connection', () => conn.state !== 'open');
      await stopped;
    } finally {
      conn.close();
    }
  });

  it('answers a request that reaches a stopping provider after its last call "not run"', async () => {
    let ran = 0;
    const server = new RpcServer({ port: 0, quietMs: 10 });
    server.addService(svc, {
      wait: async ({ ms }) => {
        ran++;
        return ms;
      },
    });
    await server.start();
    // A raw consumer that, like one starved of CPU, sends after the GOAWAY instead of closing.
    const socket = net.connect(server.port, '127.0.0.1');
    const frames: Frame[] = [];
    const decoder = new FrameDecoder();
    socket.on('data', (chunk: Buffer) =>
      decoder.push(
        chunk,
        (f) => frames.push(f),
        () => undefined,
      ),
    );
    socket.on('error', () => undefined);
    await new Promise((r) => socket.once('connect', r));
    try {
      const stopped = server.stop();
      await waitFor('the GOAWAY', () => frames.some((f) => f.type === 6));
      // Past the quiet period (10 ms, checked every 10 ms): the provider has ended its drain.
      await new Promise((r) => setTimeout(r, 200));
      socket.write(
        encodeFrame({
          type: 1,
          id: 7,
          service: svc.id,
          method: 'wait',
          headers: {},
          args: { ms: 1 },
        }),
      );
      await waitFor('an answer to the late request', () => frames.some((f) => f.type === 3));
      const answer = frames.find((f) => f.type === 3) as Extract<Frame, { type: 3 }>;
      assert.equal(answer.id, 7);
      assert.equal(answer.error.code, ErrorCodes.RPC_SHUTTING_DOWN);
      assert.equal(
        answer.error.details?.sent,
        false,
        'marked not run: a failover consumer retries it',
      );
      assert.equal(ran, 0, 'the handler did not run');
      await stopped;
    } finally {
      socket.destroy();
    }
  });

  it('bounds pending calls: over the limit a call is refused at once, not queued', async () => {
    const server = await startServer();
    const conn = new RpcConnection('127.0.0.1', server.port, { maxPending: 2 });
    try {
      const slow = [
        conn.call(svc.id, 'wait', {}, { ms: 100 }, 5000),
        conn.call(svc.id, 'wait', {}, { ms: 100 }, 5000),
      ];
      await assert.rejects(
        conn.call(svc.id, 'wait', {}, { ms: 1 }, 5000),
        (err) => isPeakError(err, ErrorCodes.RPC_OVERLOADED) && err.details.sent === false,
      );
      await Promise.all(slow);
    } finally {
      conn.close();
      await server.stop();
    }
  });

  it('refuses an oversized call at the sender; the provider closes a connection that sends one', async () => {
    const server = await startServer(0, 1024);
    const conn = new RpcConnection('127.0.0.1', server.port, { maxFrameBytes: 512 });
    const big = new RpcConnection('127.0.0.1', server.port);
    try {
      await assert.rejects(
        conn.call(svc.id, 'wait', {}, { ms: 1, pad: 'x'.repeat(1000) }, 1000),
        (err) => isPeakError(err, ErrorCodes.RPC_FRAME_TOO_LARGE),
      );
      await assert.rejects(
        big.call(svc.id, 'wait', {}, { ms: 1, pad: 'x'.repeat(5000) }, 2000),
        (err) =>
          isPeakError(err, ErrorCodes.RPC_CONNECTION_LOST) &&
          /PEAK_RPC_FRAME_TOO_LARGE/.test(err.message),
      );
      assert.equal(
        await conn.call(svc.id, 'wait', {}, { ms: 1 }, 1000),
        1,
        'others are still served',
      );
    } finally {
      conn.close();
      big.close();
      await server.stop();
    }
  });

  it('reconnects with backoff after the provider comes back on the same port', async () => {
    const first = await startServer();
    const port = first.port;
    const conn = new RpcConnection('127.0.0.1', port, { backoffMs: 20, maxBackoffMs: 100 });
    try {
      assert.equal(await conn.call(svc.id, 'wait', {}, { ms: 1 }, 1000), 1);
      await first.stop();
      await waitFor('backoff', () => conn.state === 'backoff');
      await assert.rejects(conn.call(svc.id, 'wait', {}, { ms: 1 }, 1000), (err) =>
        isPeakError(err, ErrorCodes.RPC_UNAVAILABLE),
      );
      const second = await startServer(port);
      try {
        await waitFor('reconnected', () => conn.state === 'open');
        assert.equal(await conn.call(svc.id, 'wait', {}, { ms: 2 }, 1000), 2);
      } finally {
        conn.close();
        await second.stop();
      }
    } finally {
      conn.close();
    }
  });

  it('drops a peer that stops answering heartbeats', async () => {
    const sockets: net.Socket[] = [];
    const mute = net.createServer((s) => sockets.push(s)); // accepts, never answers
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
    const port = (mute.address() as net.AddressInfo).port;
    const conn = new RpcConnection('127.0.0.1', port, { heartbeatMs: 30, backoffMs: 5000 });
    try {
      const pending = conn.call(svc.id, 'wait', {}, { ms: 1 }, 10_000);
      await assert.rejects(pending, (err) => isPeakError(err, ErrorCodes.RPC_CONNECTION_LOST));
      assert.equal(conn.state, 'backoff');
    } finally {
      conn.close();
      for (const s of sockets) s.destroy();
      await new Promise((r) => mute.close(r));
    }
  });
});
