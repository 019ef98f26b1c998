/**
 * Governance through config, against a real control plane: an RPC routing-rule change
 * published to the config center moves live traffic between real provider processes
 * without a restart; guard rules follow a config item through `ConfigRuleSource`; rule
 * sets that fail validation are refused at publish time with the path of the error, and
 * the rules in force stay.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bindRoutingRules, ConfigClient, ConfigRuleSource } from '../src/config/index.js';
import { BlockError, Guard } from '../src/guard/index.js';
import { HttpRegistry } from '../src/registry/index.js';
import { definitionKey, RpcClient } from '../src/rpc/index.js';
import { PeakServer } from '../src/server/index.js';
import { type ProviderProcess, spawnProvider, stopProvider } from './rpc-fixture-process.js';
import { stockService } from './rpc-fixture-service.js';
import { useLocalCredential } from './support/credentials.js';
import { recordingLogger } from './support/recording-logger.js';
import { waitFor } from './support/wait.js';

describe('governance through config', { timeout: 120_000 }, () => {
  let dataDir: string;
  let server: PeakServer;
  let token: string;
  let registry: HttpRegistry;
  let rpc: RpcClient;
  let config: ConfigClient;
  const providers: ProviderProcess[] = [];
  // What the consumer's SDK logged (connections, registry lists), for a failure's message.
  const log = recordingLogger();

  const publish = async (key: string, body: Record<string, unknown>) => {
    const res = await fetch(`${server.info.url}/api/v1/config/items/gov/governance/${key}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    return {
      status: res.status,
      json: (await res.json()) as {
        version?: number;
        error?: { code: string; details: { path?: string } };
      },
    };
  };

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-config-gov-'));
    server = await PeakServer.start({ dataDir, port: 0 });
    useLocalCredential(server);
    token = (await readFile(server.info.adminTokenFile, 'utf8')).trim();
    registry = new HttpRegistry({ servers: [server.info.url], logger: log });
    rpc = new RpcClient({ registry, app: 'gov-test', warmupMs: 0, logger: log });
    config = new ConfigClient({ servers: [server.info.url], app: 'gov' });
  });

  after(async () => {
    await config?.close();
    await rpc?.close();
    await registry?.close();
    for (const p of providers) await stopProvider(p, 'SIGKILL');
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('a routing-rule change moves live RPC traffic without restarts', async () => {
    const schema = { $peak: 'rpc-routes' };
    assert.equal((await publish('rpc-routes', { value: '[]', schema })).status, 200);
    assert.equal(await config.start(), 'server');
    const unbind = bindRoutingRules(config, rpc);
    const plain = await spawnProvider({ PEAK_SERVER: server.info.url });
    const canary = await spawnProvider({ PEAK_SERVER: server.info.url, TAGS: 'canary' });
    providers.push(plain, canary);
    const key = definitionKey(stockService);
    const seen = (p: ProviderProcess) =>
      rpc.endpoints(key).some((e) => e.instance.port === p.port && e.available);
    const stock = rpc.service(stockService);
    await stock.get({ sku: 'warm' }); // subscribes to the service's instance list
    await waitFor('both providers discovered', () => seen(plain) && seen(canary));

    // Live traffic: a loop of calls that runs across the rule change.
    const vipPids: number[] = [];
    let running = true;
    let failures = 0;
    const loop = (async () => {
      while (running) {
        try {
          vipPids.push((await stock.get({ sku: 'vip' })).pid);
        } catch {
          failures++;
        }
      }
    })();
    try {
      await waitFor('vip calls flowing to the plain provider', () => vipPids.length >= 20);
      assert.ok(vipPids.every((p) => p === plain.pid));

      const rules = [{ name: 'vip-to-canary', when: 'sku == "vip"', tag: 'canary' }];
      const r = await publish('rpc-routes', { value: JSON.stringify(rules), comment: 'vip' });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      const mark = vipPids.length;
      await waitFor('vip calls moved to the canary', () => vipPids.at(-1) === canary.pid);
      const after = vipPids.slice(vipPids.findIndex((p, i) => i >= mark && p === canary.pid));
      await waitFor('more calls after the move', () => vipPids.length >= mark + after.length + 20);
      // On failure: the calls since the change as runs of one provider, what the consumer
      // knows of each endpoint now, and what its SDK logged.
      const runs = (pids: number[]) =>
        pids
          .reduce<[string, number][]>((acc, p) => {
            const name = p === canary.pid ? 'canary' : p === plain.pid ? 'plain' : String(p);
            const last = acc.at(-1);
            if (last?.[0] === name) last[1]++;
            else acc.push([name, 1]);
            return acc;
          }, [])
          .map(([name, n]) => `${name}×${n}`)
          .join(' ');
      const state = () =>
        JSON.stringify(
          rpc.endpoints(key).map((e) => ({
            port: e.instance.port,
            tags: e.instance.tags,
            status: e.instance.status,
            available: e.available,
            unresponsive: e.connection.unresponsive,
          })),
        );
      assert.ok(
        vipPids.slice(vipPids.length - 20).every((p) => p === canary.pid),
        `once moved, vip calls stay on the canary; calls since the change: ${runs(vipPids.slice(mark))}; endpoints now: ${state()}; SDK log:\n${log.lines.join('\n')}`,
      );
      assert.equal((await stock.get({ sku: 'plain' })).pid, plain.pid, 'other calls stay');

      // A rule set that does not compile is refused with its path; traffic stays moved.
      const bad = await publish('rpc-routes', {
        value: JSON.stringify([{ when: 'sku == ', tag: 'canary' }]),
      });
      assert.equal(bad.status, 400);
      assert.equal(bad.json.error?.code, 'PEAK_CONFIG_INVALID');
      assert.equal(bad.json.error?.details.path, '$[0].when');
      assert.equal((await stock.get({ sku: 'vip' })).pid, canary.pid);
      assert.equal(failures, 0, 'no call failed across the change');
    } finally {
      running = false;
      await loop;
      unbind();
    }
  });

  it('load-balancer weights published as config reach every consumer through the registry', async () => {
    const [plain, canary] = providers;
    assert.ok(plain !== undefined && canary !== undefined, 'runs after the routing test');
    const key = definitionKey(stockService);
    const weightOf = (p: ProviderProcess) =>
      rpc.endpoints(key).find((e) => e.instance.port === p.port)?.instance.weight;
    const weights = { [plain.instanceId]: 7, [canary.instanceId]: 3 };
    const r = await publish('lb-weights', {
      value: JSON.stringify(weights),
      schema: { $peak: 'lb-weights' },
    });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    await waitFor('weights pushed', () => weightOf(plain) === 7 && weightOf(canary) === 3);
    const bad = await publish('lb-weights', { value: JSON.stringify({ [plain.instanceId]: -1 }) });
    assert.equal(bad.json.error?.details.path, `$.${plain.instanceId}`);
    assert.equal(weightOf(plain), 7);
  });

  it('guard rules follow a config item; a bad rule set is refused and the rules in force stay', async () => {
    const schema = { $peak: 'guard-rules' };
    const one = { flow: [{ resource: 'checkout', count: 1 }] };
    assert.equal(
      (await publish('guard-rules', { value: JSON.stringify(one), schema })).status,
      200,
    );
    await waitFor(
      'guard rules item pushed',
      () => config.entry('governance/guard-rules') !== undefined,
    );
    const guard = new Guard();
    try {
      guard.useRuleSource(new ConfigRuleSource(config));
      assert.equal(guard.rawRules().flow?.[0]?.count, 1);

      const bad = await publish('guard-rules', {
        value: JSON.stringify({ flow: [{ resource: 'checkout', count: -1 }] }),
      });
      assert.equal(bad.status, 400);
      assert.equal(bad.json.error?.details.path, '$.flow[0].count');

      const many = { flow: [{ resource: 'checkout', count: 1000 }] };
      assert.equal((await publish('guard-rules', { value: JSON.stringify(many) })).status, 200);
      await waitFor('new rules in force', () => guard.rawRules().flow?.[0]?.count === 1000);
      for (let i = 0; i < 5; i++) guard.entry('checkout').exit();

      const none = { flow: [{ resource: 'checkout', count: 0 }] };
      assert.equal((await publish('guard-rules', { value: JSON.stringify(none) })).status, 200);
      await waitFor('count 0 in force', () => guard.rawRules().flow?.[0]?.count === 0);
      assert.throws(() => guard.entry('checkout'), BlockError);
    } finally {
      guard.close();
    }
  });
});
