/**
 * Empty- and shrunken-push protection: the only control-plane node (`peak server` as its own
 * process on a PostgreSQL that stays up) is killed with SIGKILL while a consumer calls three
 * providers, stays down past the providers' lease, and comes back before the providers have
 * registered again: its first answer to the consumer's reconnected watch stream is an empty
 * list, and after the first provider re-registers a list of one of three. The consumer must
 * keep calling all its last known providers (0 PEAK_RPC_NO_PROVIDER, the three still
 * answering) until enough re-register, and then follow the live list again.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlPlaneClient } from '../src/core/control-plane-client.js';
import { isPeakError } from '../src/core/errors.js';
import { HttpRegistry, type InstanceRegistration } from '../src/registry/index.js';
import { definitionKey, RpcClient } from '../src/rpc/index.js';
import { type ProviderProcess, spawnProvider, stopProvider } from './rpc-fixture-process.js';
import { stockService } from './rpc-fixture-service.js';
import { useDataFolderCredential } from './support/credentials.js';
import { killGroup, type PeakProcess, spawnPeak } from './support/peak-process.js';
import { type PostgresCluster, startPostgresCluster } from './support/postgres-cluster.js';
import { waitFor } from './support/wait.js';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Longest a watch stream waits between reconnects (ControlPlaneClient.subscribe's cap). */
const RECONNECT_CAP_MS = 5000;

describe('registry: a control-plane restart does not wipe the consumers’ lists', {
  timeout: 180_000,
}, () => {
  let pg: PostgresCluster;
  let dataDir: string;
  let port: number;
  let node: PeakProcess | undefined;
  const providers: ProviderProcess[] = [];

  const startNode = async (): Promise<PeakProcess> => {
    const p = spawnPeak([
      'server',
      '--postgres',
      pg.url(0),
      '--data',
      dataDir,
      '--port',
      String(port),
      '--json',
      '--log-level',
      'warn',
    ]);
    await p.waitFor('ready', 60_000);
    return p;
  };

  before(async () => {
    pg = await startPostgresCluster(1);
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-registry-restart-'));
    port = await freePort();
  });

  after(async () => {
    if (node !== undefined) {
      killGroup(node.child);
      await node.exited;
    }
    for (const p of providers) await stopProvider(p, 'SIGKILL');
    await pg?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('keeps calling the last known providers after an empty list from a restarted node', async (t) => {
    node = await startNode();
    // The node's local app credential (every SDK grant) for the registries and the reads below.
    await useDataFolderCredential(dataDir);
    const url = `http://127.0.0.1:${port}`;
    // The providers serve without a registry of their own: the test registers them, so it
    // decides when they re-register after the restart (after the consumer has reconnected).
    for (let i = 0; i < 3; i++) providers.push(await spawnProvider({}));
    const key = definitionKey(stockService);
    const registration = (p: ProviderProcess): InstanceRegistration => ({
      instanceId: p.instanceId,
      service: stockService.name,
      version: stockService.version,
      group: 'default',
      host: '127.0.0.1',
      port: p.port,
      weight: 100,
      tags: [],
      metadata: {},
    });
    const leaseMs = 1000;
    const first = new HttpRegistry({ servers: url, leaseMs });
    for (const p of providers) await first.register(registration(p));

    // The consumer runs with its defaults.
    const consumerRegistry = new HttpRegistry({ servers: url });
    const client = new RpcClient({ registry: consumerRegistry, app: 'restart-test', warmupMs: 0 });
    const stock = client.service(stockService);
    let ok = 0;
    /** Which providers (pids) answered, since the test last cleared it. */
    const answered = new Set<number>();
    const failures: unknown[] = [];
    let running = true;
    const loops = Array.from({ length: 4 }, async () => {
      for (let n = 0; running && n < 200_000; n++) {
        try {
          answered.add((await stock.get({ sku: 'a', ms: 2 })).pid);
          ok++;
        } catch (err) {
          failures.push(err);
          await sleep(5);
        }
      }
    });
    const lists: number[] = [];
    const watch = consumerRegistry.subscribe(key, (list) => lists.push(list.length));
    try {
      await waitFor('the three providers listed', () => lists.at(-1) === 3);
      await waitFor('calls under way', () => ok >= 100);

      // The providers lose the control plane too: nothing renews their leases.
      await first.close();
      killGroup(node.child, 'SIGKILL');
      await node.exited;
      await sleep(leaseMs + 500);
      node = await startNode();
      const admin = new ControlPlaneClient({ servers: url });
      await waitFor('the restarted node lists no instance (leases ran out)', async () => {
        const r = await admin.get<{ instances: unknown[] }>('/api/v1/registry/instances', {
          query: { key },
        });
        return r.instances.length === 0;
      });
      // Long enough for the consumer's watch stream to have reconnected and been answered.
      await sleep(RECONNECT_CAP_MS + 1000);
      const atGap = ok;
      await waitFor('calls while the node lists nobody', () => ok >= atGap + 100);

      const again = new HttpRegistry({ servers: url, leaseMs: 3000 });
      const handles = [await again.register(registration(providers[0]!))];
      await waitFor('the restarted node lists the first provider again', async () => {
        const r = await admin.get<{ instances: unknown[] }>('/api/v1/registry/instances', {
          query: { key },
        });
        return r.instances.length === 1;
      });
      // One of three listed (under the protect threshold): the known ones keep serving.
      answered.clear();
      await waitFor(
        () => `every known provider answering with one of three listed (${answered.size})`,
        () => answered.size === 3,
      );
      for (const p of providers.slice(1)) handles.push(await again.register(registration(p)));
      const atReregister = ok;
      await waitFor('calls after the providers re-registered', () => ok >= atReregister + 100);
      running = false;
      await Promise.all(loops);
      const noProvider = failures.filter((e) => isPeakError(e, 'PEAK_RPC_NO_PROVIDER')).length;
      t.diagnostic(
        `restart: ${ok} calls ok, ${failures.length} failed (${noProvider} PEAK_RPC_NO_PROVIDER); lists seen: ${lists.join(',')}`,
      );
      assert.equal(noProvider, 0, `PEAK_RPC_NO_PROVIDER after the restart: ${noProvider}`);
      assert.deepEqual(failures.map(String), [], 'no call failed');
      assert.ok(
        !lists.includes(0) && !lists.includes(1),
        `the consumer was handed an empty or shrunken list: ${lists.join(',')}`,
      );

      // Changes on a live stream are the truth, a shrunken list included; an empty one is
      // held while its providers still answer (empty protection: leases run out on a
      // loaded control plane too) and taken once they are gone.
      await handles[2]!.deregister();
      await handles[1]!.deregister();
      await waitFor('one provider left', () => lists.at(-1) === 1, 10_000);
      await handles[0]!.deregister();
      await sleep(2000); // the push arrives in milliseconds; the probe runs every second
      assert.equal(lists.at(-1), 1, 'an empty list is held while the provider still answers');
      await stopProvider(providers[0]!, 'SIGTERM');
      await waitFor('no provider left once it stopped', () => lists.at(-1) === 0, 10_000);
      await again.close();
    } finally {
      running = false;
      watch.close();
      await Promise.all(loops);
      await client.close();
      await consumerRegistry.close();
    }
  });
});
