/**
 * Issue 21's partial-frame flood against a real provider process: 48 connections each
 * announce an 8 MiB frame and send 6 MiB of it, then stay open (288 MiB offered; before the
 * bounds this took a provider from 73 to 459 MB RSS). The provider's resident memory
 * (/proc/<pid>/status VmRSS, and its peak VmHWM) must grow less than the bound the rpc
 * README states (maxPartialBytes + 96 MiB), every flooding connection must be closed as
 * documented (at once over the budget, or after frameTimeoutMs), and a normal call must
 * still be answered.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { InMemoryRegistry } from '../src/registry/index.js';
import { FrameDecoder } from '../src/rpc/frame-codec.js';
import { RpcClient, SERVER_DEFAULTS } from '../src/rpc/index.js';
import { spawnProvider, stopProvider } from './rpc-fixture-process.js';
import { stockService } from './rpc-fixture-service.js';
import { memoryOf, mib } from './support/process-memory.js';
import { waitFor } from './support/wait.js';

const MiB = 1024 * 1024;
/** The rpc README's bound on RSS growth from incomplete frames. */
const RSS_GROWTH_BOUND = SERVER_DEFAULTS.maxPartialBytes + 96 * MiB;

/** A connection that announced an 8 MiB frame and sent 6 MiB of it; collects error frames. */
async function halfFrame(port: number, body: Buffer) {
  const socket = net.connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.on('error', () => undefined);
  const told: string[] = [];
  const decoder = new FrameDecoder();
  socket.on('data', (chunk: Buffer) =>
    decoder.push(
      chunk,
      (f) => {
        if (f.type === 3) told.push(f.error.message);
      },
      () => undefined,
    ),
  );
  const head = Buffer.alloc(4);
  head.writeUInt32BE(8 * MiB);
  socket.write(head);
  socket.write(body);
  return { socket, told };
}

describe('rpc provider: a flood of half-sent frames does not pin its memory', {
  timeout: 120_000,
}, () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('48 half-sent 8 MiB frames: RSS under the bound, every connection closed, calls answered', async (t) => {
    // frameTimeoutMs 4 s instead of 10 s: the frames that fit the budget are closed sooner.
    const provider = await spawnProvider({ FRAME_TIMEOUT_MS: '4000' });
    cleanups.push(async () => void (await stopProvider(provider, 'SIGKILL')));
    // The provider runs without a control plane: the test lists it for its own client.
    const registry = new InMemoryRegistry();
    await registry.register({
      instanceId: provider.instanceId,
      service: stockService.name,
      version: stockService.version,
      group: 'default',
      host: '127.0.0.1',
      port: provider.port,
      weight: 100,
      tags: [],
      metadata: {},
    });
    const client = new RpcClient({ registry, app: 'flood-test', warmupMs: 0 });
    cleanups.push(() => client.close());
    const stock = client.service(stockService);
    const call = () => stock.get({ sku: 'a' }, { timeoutMs: 5000 });
    assert.equal((await call()).left, 42);
    const before = await memoryOf(provider.pid);

    // One 6 MiB body written on every connection (no copy per connection in this process).
    const body = Buffer.alloc(6 * MiB, 0x20);
    const floods = await Promise.all(
      Array.from({ length: 48 }, () => halfFrame(provider.port, body)),
    );
    await waitFor(
      () =>
        `the provider to close every flooding connection (${floods.filter((f) => f.socket.destroyed).length} of 48 closed)`,
      () => floods.every((f) => f.socket.destroyed),
      60_000,
    );
    const after = await memoryOf(provider.pid);
    const overBudget = floods.filter((f) => f.told.some((m) => m.includes('maxPartialBytes')));
    const timedOut = floods.filter((f) => f.told.some((m) => m.includes('frameTimeoutMs')));
    t.diagnostic(
      `provider RSS ${mib(before.rss)} → ${mib(after.rss)} (peak ${mib(after.peak)}, bound +${mib(RSS_GROWTH_BOUND)}); ${overBudget.length} closed over budget, ${timedOut.length} timed out`,
    );
    assert.ok(overBudget.length > 0, 'no connection was closed for the budget (maxPartialBytes)');
    assert.ok(timedOut.length > 0, 'no connection was closed for frameTimeoutMs');
    assert.ok(
      after.peak - before.rss < RSS_GROWTH_BOUND,
      `peak RSS grew ${mib(after.peak - before.rss)}, over the bound ${mib(RSS_GROWTH_BOUND)}`,
    );
    assert.equal((await call()).left, 42);
  });
});
