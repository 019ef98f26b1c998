/**
 * `peak rpc` against a real control plane and real provider processes: ls, call (and its
 * errors), offline/online taking an instance out of a live consumer's traffic, weight, rm.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlPlaneClient } from '../src/core/index.js';
import { HttpRegistry } from '../src/registry/index.js';
import { definitionKey, RpcClient } from '../src/rpc/index.js';
import { PeakServer } from '../src/server/index.js';
import { type ProviderProcess, spawnProvider, stopProvider } from './rpc-fixture-process.js';
import { stockService } from './rpc-fixture-service.js';
import { runPeak } from './support/peak-process.js';
import { waitFor } from './support/wait.js';

describe('peak rpc', { timeout: 120_000 }, () => {
  let dataDir: string;
  let server: PeakServer;
  let registry: HttpRegistry;
  let client: RpcClient;
  let a: ProviderProcess;
  let b: ProviderProcess;
  const key = definitionKey(stockService);
  const peak = (...args: string[]) =>
    runPeak([...args, '--server', server.info.url, '--data', dataDir]);

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-rpc-cli-'));
    server = await PeakServer.start({ dataDir, port: 0 });
    const env = { PEAK_SERVER: server.info.url, PEAK_CREDENTIAL: server.credential() };
    a = await spawnProvider(env);
    b = await spawnProvider({ ...env, TAGS: 'canary' });
    registry = new HttpRegistry({ servers: [server.info.url], token: server.credential() });
    client = new RpcClient({ registry, warmupMs: 0 });
  });

  after(async () => {
    await client?.close();
    await registry?.close();
    if (a) await stopProvider(a, 'SIGKILL');
    if (b) await stopProvider(b, 'SIGKILL');
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('ls lists services, instances, weights, tags and state', async () => {
    const r = await peak('rpc', 'ls');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /default\/test\.stock:1\.0\.0/);
    assert.match(
      r.stdout,
      new RegExp(`${a.instanceId}.*127\\.0\\.0\\.1:${a.port}\\s+up\\s+w=100\\s+tags=-`),
    );
    assert.match(r.stdout, new RegExp(`${b.instanceId}.*tags=canary`));
    const j = await peak('rpc', 'ls', '--json');
    const parsed = JSON.parse(j.stdout) as { instances: { instanceId: string }[] };
    assert.equal(parsed.instances.length, 2);
  });

  it('call runs one method and prints the result; --tag routes it', async () => {
    const r = await peak('rpc', 'call', 'test.stock.get', '{"sku":"cli"}', '--json');
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { result: { sku: string; pid: number } };
    assert.equal(out.result.sku, 'cli');
    assert.equal(out.result.pid, a.pid, 'untagged calls avoid the canary');
    const gray = await peak(
      'rpc',
      'call',
      'test.stock.get',
      '{"sku":"cli"}',
      '--tag',
      'canary',
      '--json',
    );
    assert.equal((JSON.parse(gray.stdout) as { result: { pid: number } }).result.pid, b.pid);
  });

  it('call --address reaches a provider directly, without the control plane', async () => {
    const r = await runPeak([
      'rpc',
      'call',
      'test.stock.get',
      '{"sku":"direct"}',
      '--address',
      `127.0.0.1:${a.port}`,
      '--json',
      '--server',
      'http://127.0.0.1:1',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { result: { pid: number } }).result.pid, a.pid);
    const bad = await runPeak(['rpc', 'call', 'test.stock.get', '{}', '--address', 'nope']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--address must be host:port/);
  });

  it('call reports bad input with one clear line', async () => {
    const bad = await peak('rpc', 'call', 'test.stock.get', '{"sku":1}');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /sku.*\[PEAK_RPC_BAD_ARGUMENTS\]/);
    const unknown = await peak('rpc', 'call', 'test.stock.nope', '{}');
    assert.match(unknown.stderr, /no method 'nope'.*\[PEAK_RPC_UNKNOWN_METHOD\]/);
    const missing = await peak('rpc', 'call', 'no.such.method', '{}');
    assert.match(missing.stderr, /\[PEAK_RPC_NO_PROVIDER\]/);
    const json = await peak('rpc', 'call', 'test.stock.get', '{nope');
    assert.equal(json.code, 2);
    assert.match(json.stderr, /not JSON/);
  });

  it('offline takes an instance out of a live consumer, online brings it back', async () => {
    const stock = client.service(stockService);
    await stock.get({ sku: 'x' });
    const pids = async () => {
      const s = new Set<number>();
      for (let i = 0; i < 20; i++)
        s.add((await stock.get({ sku: 'x' }, { tags: { route: 'canary' } })).pid);
      return s;
    };
    assert.deepEqual(await pids(), new Set([b.pid]));
    const off = await peak('rpc', 'offline', b.instanceId);
    assert.equal(off.code, 0, off.stderr);
    await waitFor('the consumer dropped the instance', () =>
      client.endpoints(key).every((e) => e.instance.instanceId !== b.instanceId),
    );
    // Canary calls fall back to untagged instances while the canary is offline.
    assert.deepEqual(await pids(), new Set([a.pid]));
    const ls = await peak('rpc', 'ls');
    assert.match(ls.stdout, new RegExp(`${b.instanceId}.*offline`));
    assert.equal((await peak('rpc', 'online', b.instanceId)).code, 0);
    await waitFor('the consumer took the instance back', () =>
      client.endpoints(key).some((e) => e.instance.instanceId === b.instanceId),
    );
    assert.deepEqual(await pids(), new Set([b.pid]));
  });

  it('weight changes reach consumers; weight 0 takes no traffic', async () => {
    assert.equal((await peak('rpc', 'weight', a.instanceId, '0')).code, 0);
    await waitFor('weight 0 applied', () =>
      client.endpoints(key).every((e) => e.instance.instanceId !== a.instanceId),
    );
    assert.equal((await peak('rpc', 'weight', a.instanceId, '250')).code, 0);
    await waitFor('weight 250 pushed', () =>
      client
        .endpoints(key)
        .some((e) => e.instance.instanceId === a.instanceId && e.instance.weight === 250),
    );
    const bad = await peak('rpc', 'weight', a.instanceId, '-1');
    assert.equal(bad.code, 2);
    const noToken = await runPeak([
      'rpc',
      'offline',
      a.instanceId,
      '--server',
      server.info.url,
      '--data',
      '/nonexistent',
    ]);
    assert.match(noToken.stderr, /\[PEAK_UNAUTHENTICATED\]/);
  });

  it('rm removes a registration; one in traffic only with --force; unknown ids are named', async () => {
    // A registration with no process behind it (nothing renews or re-registers it).
    const sdk = new ControlPlaneClient({ servers: [server.info.url], token: server.credential() });
    const register = (instanceId: string) =>
      sdk.post('/api/v1/registry/instances', {
        instanceId,
        service: 'test.gone',
        version: '1.0.0',
        group: 'default',
        host: '127.0.0.1',
        port: 9,
        weight: 100,
        leaseMs: 600_000,
      });
    await register('gone-1');
    const up = await peak('rpc', 'rm', 'gone-1');
    assert.equal(up.code, 1);
    assert.match(
      up.stderr,
      /'gone-1' is up .*peak rpc offline gone-1.*\[PEAK_REGISTRY_INSTANCE_UP\]/,
    );
    assert.equal((await peak('rpc', 'offline', 'gone-1')).code, 0);
    const removed = await peak('rpc', 'rm', 'gone-1', '--json');
    assert.equal(removed.code, 0, removed.stderr);
    assert.deepEqual(JSON.parse(removed.stdout), { instanceId: 'gone-1', removed: 1 });
    assert.doesNotMatch((await peak('rpc', 'ls')).stdout, /gone-1/);
    const again = await peak('rpc', 'rm', 'gone-1');
    assert.match(again.stderr, /'gone-1' is not registered.*\[PEAK_REGISTRY_NOT_FOUND\]/);
    await register('gone-2');
    const forced = await peak('rpc', 'rm', 'gone-2', '--force', '--key', 'default/test.gone:1.0.0');
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stdout, /gone-2: removed \(1 service registration\)/);
    // The live providers are untouched.
    assert.match((await peak('rpc', 'ls')).stdout, new RegExp(a.instanceId));
  });
});
