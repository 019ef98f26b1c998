import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { waitFor } from '../../test/support/wait.js';
import { ErrorCodes, isPeakError } from '../core/errors.js';
import { RpcConnection } from './rpc-connection.js';
import { RpcServer } from './rpc-server.js';
import { defineService } from './service-definition.js';

const svc = defineService({
  name: 'conn.test',
  methods: {
    wait: { input: z.object({ ms: z.number() }), output: z.number(), idempotent: true },
  },
});

async function startServer(port = 0, maxFrameBytes?: number): Promise<RpcServer> {
  const server = new RpcServer({ port, quietMs: 10, ...(maxFrameBytes ? { maxFrameBytes } : {}) });
  server.addService(svc, {
    wait: async ({ ms }) => {
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
