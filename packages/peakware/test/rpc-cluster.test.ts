/**
 * The service framework across real processes and sockets: provider child processes
 * registered with a real peak server, a consumer in this process discovering them by SSE
 * push. Covers the "Done when": kill -9 under load, rolling restart with graceful
 * stop, control plane stopped, registry push latency (two control-plane nodes agreeing
 * through LISTEN/NOTIFY), local snapshot across a consumer restart.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ErrorCodes, isPeakError } from '../src/core/errors.js';
import { HttpRegistry, type ServiceInstance } from '../src/registry/index.js';
import { definitionKey, RpcClient } from '../src/rpc/index.js';
import { PeakServer } from '../src/server/index.js';
import { type ProviderProcess, spawnProvider, stopProvider } from './rpc-fixture-process.js';
import { stockService } from './rpc-fixture-service.js';
import { useLocalCredential } from './support/credentials.js';
import { waitFor } from './support/wait.js';

interface LoadResult {
  ok: { get: number; deduct: number };
  failed: { get: unknown[]; deduct: unknown[] };
  deductOk: string[];
}

/** Runs `workers` loops of alternating get/deduct calls until stopped. */
function startLoad(client: RpcClient, workers: number, tag: string) {
  const stock = client.service(stockService);
  const result: LoadResult = {
    ok: { get: 0, deduct: 0 },
    failed: { get: [], deduct: [] },
    deductOk: [],
  };
  let running = true;
  const loops = Array.from({ length: workers }, async (_, w) => {
    for (let n = 0; running && n < 100_000; n++) {
      if (n % 2 === 0) {
        try {
          await stock.get({ sku: 'a', ms: 3 });
          result.ok.get++;
        } catch (err) {
          result.failed.get.push(err);
        }
      } else {
        const id = `${tag}-${w}-${n}`;
        try {
          await stock.deduct({ id, ms: 3 });
          result.ok.deduct++;
          result.deductOk.push(id);
        } catch (err) {
          result.failed.deduct.push(err);
        }
      }
    }
  });
  return {
    result,
    async stop(): Promise<LoadResult> {
      running = false;
      await Promise.all(loops);
      return result;
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

describe('rpc across processes with a real control plane', { timeout: 180_000 }, () => {
  let dataDir: string;
  let scratch: string;
  let server: PeakServer;
  let server2: PeakServer | undefined;
  let registry: HttpRegistry;
  let client: RpcClient;
  const providers: ProviderProcess[] = [];
  const key = definitionKey(stockService);
  let snapshotFile: string;

  const env = (name: string) => ({
    PEAK_SERVER: server.info.url,
    LEDGER: path.join(scratch, `${name}.ledger`),
    LEASE_MS: '3000',
  });
  /** Every provider's ledger of executed deducts, joined. */
  const allLedgers = async () => {
    const files = (await readdir(scratch)).filter((f) => f.endsWith('.ledger'));
    const texts = await Promise.all(files.map((f) => readFile(path.join(scratch, f), 'utf8')));
    return texts.join('\n');
  };
  const seen = (p: ProviderProcess) =>
    client.endpoints(key).some((e) => e.instance.port === p.port && e.available);

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-rpc-'));
    scratch = await mkdtemp(path.join(os.tmpdir(), 'peak-rpc-scratch-'));
    server = await PeakServer.start({ dataDir, port: 0 });
    useLocalCredential(server);
    snapshotFile = path.join(scratch, 'registry-snapshot.json');
    registry = new HttpRegistry({ servers: [server.info.url], snapshotFile });
    client = new RpcClient({
      registry,
      app: 'rpc-test',
      warmupMs: 0,
      retries: 2,
      retryBudget: { ratio: 0.5, minPerSecond: 100 },
    });
  });

  after(async () => {
    await client?.close();
    await registry?.close();
    for (const p of providers) await stopProvider(p, 'SIGKILL');
    await server2?.stop();
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
    await rm(scratch, { recursive: true, force: true });
  });

  it('kill -9 of one of two instances under load: no failed idempotent call, no silent double', async (t) => {
    const a = await spawnProvider(env('a'));
    const b = await spawnProvider(env('b'));
    providers.push(a, b);
    const stock = client.service(stockService);
    await stock.get({ sku: 'warm' });
    await waitFor('both instances discovered', () => seen(a) && seen(b));
    const load = startLoad(client, 16, 'kill');
    // Progress-based, not time-based: a loaded machine slows the calls, not the checks.
    await waitFor('load under way', () => load.result.ok.get >= 50, 20_000);
    a.child.kill('SIGKILL');
    const atKill = load.result.ok.get + load.result.ok.deduct;
    await waitFor(
      'calls after the kill',
      () => load.result.ok.get + load.result.ok.deduct >= atKill + 200,
      20_000,
    );
    const r = await load.stop();
    t.diagnostic(
      `kill -9: ${r.ok.get} gets ok, 0 failed; ${r.ok.deduct} deducts ok, ${r.failed.deduct.length} failed fast (in flight on the dead connection)`,
    );
    assert.ok(r.ok.get > 50 && r.ok.deduct > 50, `load ran: ${JSON.stringify(r.ok)}`);
    assert.equal(
      r.failed.get.length,
      0,
      `idempotent failures: ${r.failed.get.map(String).join('; ')}`,
    );
    for (const err of r.failed.deduct) {
      assert.ok(isPeakError(err, ErrorCodes.RPC_CONNECTION_LOST), String(err));
      assert.match(err.message, /not idempotent.*not retried/);
    }
    const executed = [
      ...(await readFile(path.join(scratch, 'a.ledger'), 'utf8')).split('\n'),
      ...(await readFile(path.join(scratch, 'b.ledger'), 'utf8')).split('\n'),
    ].filter((l) => l.startsWith('kill-'));
    assert.equal(new Set(executed).size, executed.length, 'no deduct ran twice');
    const ran = new Set(executed);
    for (const id of r.deductOk) assert.ok(ran.has(id), `${id} succeeded but never ran`);
  });

  it('rolling restart with graceful stop under load: zero failed calls', async (t) => {
    const b = providers[1]!;
    const c = await spawnProvider(env('c'));
    providers.push(c);
    await waitFor('c discovered', () => seen(c));
    const load = startLoad(client, 16, 'roll');
    await waitFor(
      'load under way',
      () => load.result.ok.get >= 50 && load.result.ok.deduct >= 50,
      20_000,
    );
    for (const old of [b, c]) {
      const fresh = await spawnProvider(env(`fresh-${old.port}`));
      providers.push(fresh);
      await waitFor('the new instance discovered', () => seen(fresh));
      assert.equal(await stopProvider(old, 'SIGTERM'), 0, 'graceful stop exits 0');
      await sleep(300);
    }
    const r = await load.stop();
    t.diagnostic(`rolling restart: ${r.ok.get} gets and ${r.ok.deduct} deducts ok`);
    assert.ok(r.ok.get > 50 && r.ok.deduct > 50, `load ran: ${JSON.stringify(r.ok)}`);
    assert.deepEqual(
      [...r.failed.get, ...r.failed.deduct].map(String),
      [],
      'no call failed during the rolling restart',
    );
  });

  it('pushes registry changes quickly, across two control-plane nodes', async (t) => {
    const info = server.info.postgres;
    assert.equal(info.mode, 'embedded');
    if (info.mode !== 'embedded') return;
    const password = (await readFile(path.join(dataDir, 'postgres-password'), 'utf8')).trim();
    const dir2 = await mkdtemp(path.join(os.tmpdir(), 'peak-rpc-node2-'));
    server2 = await PeakServer.start({
      dataDir: dir2,
      port: 0,
      postgresUrl: `postgres://peak:${encodeURIComponent(password)}@${info.host}:${info.port}/postgres`,
    });
    const producer = new HttpRegistry({ servers: [server.info.url] });
    const consumer = new HttpRegistry({ servers: [server2.info.url] });
    try {
      const handle = await producer.register({
        instanceId: 'latency-probe',
        service: 'test.latency',
        version: '1.0.0',
        group: 'default',
        host: '127.0.0.1',
        port: 9,
        weight: 1,
        tags: [],
        metadata: {},
      });
      let latest: readonly ServiceInstance[] = [];
      let changedAt = 0;
      consumer.subscribe('default/test.latency:1.0.0', (list) => {
        latest = list;
        changedAt = performance.now();
      });
      await waitFor('the first snapshot via node 2', () => latest.length === 1);
      const samples: number[] = [];
      for (let i = 2; i < 62; i++) {
        const sent = performance.now();
        await handle.update({ weight: i });
        await waitFor(`weight ${i} pushed`, () => latest[0]?.weight === i, 5000);
        samples.push(changedAt - sent);
      }
      await handle.deregister();
      await waitFor('deregistration pushed', () => latest.length === 0, 5000);
      t.diagnostic(
        `registry push (write on node 1 → SSE from node 2), ${samples.length} changes: p50 ${quantile(samples, 0.5).toFixed(1)} ms, p99 ${quantile(samples, 0.99).toFixed(1)} ms, max ${Math.max(...samples).toFixed(1)} ms`,
      );
    } finally {
      await producer.close();
      await consumer.close();
      await server2.stop();
      server2 = undefined;
      await rm(dir2, { recursive: true, force: true });
    }
  });

  it('deadlines and route tags cross process hops: late work is never started downstream', async () => {
    const plain = await spawnProvider(env('chain-plain'));
    const canary = await spawnProvider({ ...env('chain-canary'), TAGS: 'canary' });
    providers.push(plain, canary);
    await waitFor('chain providers discovered', () => seen(plain) && seen(canary));
    const stock = client.service(stockService);
    // The canary tag set at the edge sticks through the hop: both hops land on the canary.
    const gray = await stock.relay({ id: 'tag', ms: 0, op: 'get' }, { tags: { route: 'canary' } });
    assert.deepEqual(gray, { pid: canary.pid, downstreamPid: canary.pid });
    const normal = await stock.relay({ id: 'tag', ms: 0, op: 'get' });
    assert.notEqual(normal.downstreamPid, canary.pid);
    // The edge gives up after 100 ms; the relay keeps working for 300 ms, then would deduct.
    await assert.rejects(
      stock.relay({ id: 'late-1', ms: 300, op: 'deduct' }, { timeoutMs: 100 }),
      (err) => isPeakError(err, ErrorCodes.RPC_TIMEOUT),
    );
    await sleep(600);
    assert.ok(!(await allLedgers()).includes('late-1'), 'the downstream deduct never ran');
    // With time left, the same chain runs.
    await stock.relay({ id: 'ok-1', ms: 0, op: 'deduct' }, { timeoutMs: 2000 });
    assert.ok((await allLedgers()).includes('ok-1'), 'a chain with time left runs downstream');
  });

  it('keeps calling on the last known list with the control plane stopped, and across a consumer restart', async () => {
    const stock = client.service(stockService);
    await stock.get({ sku: 'before' });
    await sleep(200); // let the snapshot file be written
    await server.stop();
    for (let i = 0; i < 50; i++) assert.equal((await stock.get({ sku: `down-${i}` })).left, 42);
    const saved = JSON.parse(await readFile(snapshotFile, 'utf8')) as {
      services: Record<string, unknown[]>;
    };
    assert.ok((saved.services[key]?.length ?? 0) >= 1, 'the snapshot file holds the list');
    // A consumer restarted while the control plane is down starts from the snapshot file.
    const registry2 = new HttpRegistry({ servers: [server.info.url], snapshotFile });
    const client2 = new RpcClient({ registry: registry2, warmupMs: 0 });
    try {
      const r = await client2.service(stockService).get({ sku: 'restarted' });
      assert.equal(r.left, 42);
    } finally {
      await client2.close();
      await registry2.close();
    }
  });
});
