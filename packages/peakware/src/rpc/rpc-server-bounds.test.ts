import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';
import { waitFor } from '../../test/support/wait.js';
import { InMemoryRegistry } from '../registry/in-memory-registry.js';
import { FrameDecoder } from './frame-codec.js';
import { RpcClient } from './rpc-client.js';
import { RpcServer } from './rpc-server.js';
import { defineService } from './service-definition.js';

const echo = defineService({
  name: 'bounds.echo',
  version: '1.0.0',
  methods: { echo: { input: z.object({ s: z.string() }), output: z.string(), idempotent: true } },
});

/** A raw socket that announces a frame of `announced` bytes and sends `sent` of them. */
async function halfFrame(port: number, announced: number, sent: number) {
  const socket = net.connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const head = Buffer.alloc(4);
  head.writeUInt32BE(announced);
  socket.write(Buffer.concat([head, Buffer.alloc(sent, 7)]));
  const errors: string[] = [];
  const decoder = new FrameDecoder();
  socket.on('data', (chunk) =>
    decoder.push(
      chunk,
      (f) => {
        if (f.type === 3) errors.push(f.error.code);
      },
      () => undefined,
    ),
  );
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { socket, errors, closed };
}

describe('rpc server: bounded input from unauthenticated, incomplete frames', () => {
  const registry = new InMemoryRegistry();
  let server: RpcServer;
  let port: number;

  before(async () => {
    server = new RpcServer({
      registry,
      maxPartialBytes: 1024 * 1024,
      frameTimeoutMs: 300,
    }).addService(echo, { echo: ({ s }) => s });
    ({ port } = await server.start());
  });

  after(() => server.stop());

  it('closes the connections whose half-sent frames would pass the budget, and keeps serving', async () => {
    // Eight connections each hold 300 KiB of a 4 MiB frame: only three fit in 1 MiB.
    const senders: Awaited<ReturnType<typeof halfFrame>>[] = [];
    for (let i = 0; i < 8; i++) {
      senders.push(await halfFrame(port, 4 * 1024 * 1024, 300 * 1024));
    }
    await waitFor('the server has read what fits', () => server.partialBytes >= 3 * 300 * 1024);
    await waitFor(
      'the connections over budget are closed',
      () => senders.filter((s) => s.socket.destroyed || s.errors.length > 0).length >= 5,
    );
    assert.ok(server.partialBytes <= 1024 * 1024, `held ${server.partialBytes} bytes`);
    const told = senders.flatMap((s) => s.errors);
    assert.ok(told.includes('PEAK_RPC_OVERLOADED'), `told ${told.join(', ')}`);

    // A well-behaved consumer still gets answers.
    const client = new RpcClient({ registry, app: 'bounds' });
    try {
      assert.equal(
        await client.service(echo).echo({ s: 'still up' }, { timeoutMs: 2000 }),
        'still up',
      );
    } finally {
      await client.close();
    }
    for (const s of senders) s.socket.destroy();
    await Promise.all(senders.map((s) => s.closed));
    await waitFor('closed connections give their bytes back', () => server.partialBytes === 0);
  });

  it('closes a slow sender whose frame stays incomplete past frameTimeoutMs', async () => {
    const slow = await halfFrame(port, 1000, 10);
    await slow.closed;
    assert.deepEqual(slow.errors, ['PEAK_RPC_OVERLOADED']);
    assert.equal(server.partialBytes, 0);
  });
});
