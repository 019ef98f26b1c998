/**
 * Dead providers are left alone at once, without waiting for the registry: two provider
 * processes stay listed (an in-process registry that never drops them, like a lease that
 * has not run out) while a consumer calls them under load. One is killed with SIGKILL: its
 * connection is never offered to the balancer again, reconnects in the background
 * included. One is stopped with SIGSTOP (its socket stays open, nothing answers): the probe
 * marks it unresponsive and calls stop going there; after SIGCONT it is picked again.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ErrorCodes, isPeakError } from '../src/core/errors.js';
import { InMemoryRegistry, type RegistrationHandle } from '../src/registry/index.js';
import {
  createLoadBalancer,
  definitionKey,
  type LoadBalancer,
  RpcClient,
} from '../src/rpc/index.js';
import { type ProviderProcess, spawnProvider, stopProvider } from './rpc-fixture-process.js';
import { stockService } from './rpc-fixture-service.js';
import { waitFor } from './support/wait.js';

/** Round-robin that counts the picks of each port. */
function countingBalancer(): { balancer: LoadBalancer; picks: Map<number, number> } {
  const inner = createLoadBalancer('round-robin');
  const picks = new Map<number, number>();
  return {
    picks,
    balancer: {
      select(candidates, invocation) {
        const e = inner.select(candidates, invocation);
        picks.set(e.instance.port, (picks.get(e.instance.port) ?? 0) + 1);
        return e;
      },
    },
  };
}

/** `workers` loops of idempotent gets until stopped, counting results by error code. */
function startLoad(client: RpcClient, balancer: LoadBalancer, workers: number) {
  // A generous timeout: on a loaded machine a slow answer is not what these tests are about.
  const stock = client.service(stockService, { loadBalancer: balancer, timeoutMs: 3000 });
  const r = { ok: 0, failed: new Map<string, number>() };
  let running = true;
  const loops = Array.from({ length: workers }, async () => {
    for (let n = 0; running && n < 200_000; n++) {
      try {
        await stock.get({ sku: 'a', ms: 1 });
        r.ok++;
      } catch (err) {
        const code = isPeakError(err) ? err.code : String(err);
        r.failed.set(code, (r.failed.get(code) ?? 0) + 1);
      }
    }
  });
  return {
    r,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

async function twoProviders(registry: InMemoryRegistry, providers: ProviderProcess[]) {
  const started = [await spawnProvider({}), await spawnProvider({})];
  providers.push(...started);
  const handles: RegistrationHandle[] = [];
  for (const p of started) {
    handles.push(
      await registry.register({
        instanceId: p.instanceId,
        service: stockService.name,
        version: stockService.version,
        group: 'default',
        host: '127.0.0.1',
        port: p.port,
        weight: 100,
        tags: [],
        metadata: {},
      }),
    );
  }
  return started as [ProviderProcess, ProviderProcess];
}

describe('rpc: dead and stopped providers are left alone at once', { timeout: 120_000 }, () => {
  const providers: ProviderProcess[] = [];
  const key = definitionKey(stockService);

  after(async () => {
    for (const p of providers) {
      try {
        p.child.kill('SIGCONT');
      } catch {
        // gone
      }
      await stopProvider(p, 'SIGKILL');
    }
  });

  it('kill -9: the closed connection is not offered again, reconnects included', async (t) => {
    const registry = new InMemoryRegistry();
    const [a, b] = await twoProviders(registry, providers);
    const client = new RpcClient({ registry, app: 'dead-test', warmupMs: 0 });
    const { balancer, picks } = countingBalancer();
    const load = startLoad(client, balancer, 8);
    try {
      await waitFor('both providers called', () => (picks.get(a.port) ?? 0) > 50);
      const endpointA = client.endpoints(key).find((e) => e.instance.port === a.port)!;
      // Each state of A's connection after the kill, and those in which it was offered.
      const states: string[] = [];
      const offered: string[] = [];
      endpointA.connection.onStateChange = (state) => {
        states.push(state);
        if (endpointA.available) offered.push(state);
      };
      a.child.kill('SIGKILL');
      await waitFor('A seen closed', () => states.includes('backoff'));
      const picksAtClose = picks.get(a.port) ?? 0;
      const okAtClose = load.r.ok;
      // Several reconnect attempts (100, 200, 400, 800 ms backoff) while calls go on.
      await waitFor(
        'reconnect attempts',
        () => states.filter((s) => s === 'connecting').length >= 3,
      );
      await waitFor('calls after the kill', () => load.r.ok >= okAtClose + 300);
      await load.stop();
      const later = (picks.get(a.port) ?? 0) - picksAtClose;
      t.diagnostic(
        `kill -9: states of A ${states.join(',')}; picks of A after its close ${later}; ok ${load.r.ok}, failed ${JSON.stringify([...load.r.failed])}`,
      );
      assert.deepEqual(offered, [], 'A was offered to the balancer after its connection closed');
      assert.equal(later, 0, 'A was picked after its connection closed');
      assert.ok(b.port > 0);
      const failed = [...load.r.failed].filter(([code]) => code !== ErrorCodes.RPC_CONNECTION_LOST);
      assert.deepEqual(
        failed,
        [],
        `only calls in flight at the kill may fail: ${JSON.stringify(failed)}`,
      );
    } finally {
      await load.stop();
      await client.close();
      await registry.close();
    }
  });

  it('SIGSTOP: a provider that stops answering is probed and skipped, and picked again after SIGCONT', async (t) => {
    const registry = new InMemoryRegistry();
    const [a] = await twoProviders(registry, providers);
    const client = new RpcClient({
      registry,
      app: 'stop-test',
      warmupMs: 0,
      connection: { probeMs: 500, heartbeatMs: 1000 },
    });
    const { balancer, picks } = countingBalancer();
    const load = startLoad(client, balancer, 8);
    try {
      await waitFor('both providers called', () => (picks.get(a.port) ?? 0) > 50);
      const endpointA = client.endpoints(key).find((e) => e.instance.port === a.port)!;
      a.child.kill('SIGSTOP');
      await waitFor('A marked unresponsive', () => endpointA.connection.unresponsive, 30_000);
      const picksAtMark = picks.get(a.port) ?? 0;
      const timeoutsAtMark = load.r.failed.get(ErrorCodes.RPC_TIMEOUT) ?? 0;
      const okAtMark = load.r.ok;
      await waitFor('calls while A is stopped', () => load.r.ok >= okAtMark + 500);
      const picksWhileStopped = (picks.get(a.port) ?? 0) - picksAtMark;
      const timeoutsWhileStopped =
        (load.r.failed.get(ErrorCodes.RPC_TIMEOUT) ?? 0) - timeoutsAtMark;
      a.child.kill('SIGCONT');
      await waitFor('A answers again', () => !endpointA.connection.unresponsive, 30_000);
      const picksAtResume = picks.get(a.port) ?? 0;
      await waitFor('A picked again', () => (picks.get(a.port) ?? 0) > picksAtResume + 50);
      await load.stop();
      t.diagnostic(
        `SIGSTOP: ${timeoutsAtMark} calls timed out before A was marked (8 workers, 3 s each), ${picksWhileStopped} picks and ${timeoutsWhileStopped} timeouts after; ok ${load.r.ok}, failed ${JSON.stringify([...load.r.failed])}`,
      );
      assert.equal(picksWhileStopped, 0, 'A was picked while marked unresponsive');
      assert.ok(
        timeoutsWhileStopped <= 8,
        `${timeoutsWhileStopped} calls timed out after A was marked: more than the 8 in flight`,
      );
      const failed = [...load.r.failed].filter(([code]) => code !== ErrorCodes.RPC_TIMEOUT);
      assert.deepEqual(
        failed,
        [],
        `only calls sent to A before it was marked may fail: ${JSON.stringify(failed)}`,
      );
    } finally {
      await load.stop();
      await client.close();
      await registry.close();
    }
  });
});
