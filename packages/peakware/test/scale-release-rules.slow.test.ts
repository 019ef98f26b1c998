/**
 * Releases by rule across real processes (issue 19): a supervised service (two v1
 * instances), a consumer that applies the app's routing rules (`bindRoutingRules`), and
 * the control plane's release runner (every 300 ms). A header rule sends only the marked
 * calls to v2; a user-hash step at 20 % sends a stable set of users (the same user twice
 * on the same version, exactly the users whose FNV-1a hash is below 20 mod 100) and about
 * that share; a v2 that errors is rolled back and the rule removed; a healthy one is
 * promoted, the rule and the tag gone. No timing is asserted: the waits are bounds for a
 * loaded machine. About 45 s: a slow test.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { bindRoutingRules, ConfigClient } from '../src/config/index.js';
import { HttpRegistry } from '../src/registry/index.js';
import { hashKey } from '../src/rpc/condition-expression.js';
import { RpcClient, type ServiceClient } from '../src/rpc/index.js';
import type { ReleaseView } from '../src/scale/server/index.js';
import { echoService } from './scale-fixture-service.js';
import { APP, type ScaleStack, SERVICE, startScaleStack } from './scale-fixture-stack.js';
import { waitFor } from './support/wait.js';

describe('releases by rule', { timeout: 300_000 }, () => {
  let stack: ScaleStack;
  let registry: HttpRegistry;
  let config: ConfigClient;
  let client: RpcClient;
  let unbind: () => void;
  let echo: ServiceClient<typeof echoService>;

  const release = () => stack.admin.scale.release(APP, SERVICE);
  /** The rules of the app's routing-rules item the consumer binds. */
  const rules = async (): Promise<{ name?: string; when: string; tag: string }[]> =>
    JSON.parse(config.entry('governance/rpc-routes')?.value ?? '[]');
  /** The version that answers a call of user `n`, marked with x-gray or not. */
  const versionOf = async (n: number, marked = false) =>
    (await echo.echo({ n }, marked ? { tags: { 'x-gray': '1' } } : {})).version;
  const stepped = async () => {
    const r = await release();
    return r.phase === 'step' && r.state === 'running';
  };
  const abort = async () => {
    await stack.admin.scale.releaseAction(APP, SERVICE, 'abort', { reason: 'test done' });
    await waitFor('the gray group stopped', async () =>
      (await stack.instances()).every((i) => i.version === 'v1'),
    );
  };

  before(async () => {
    stack = await startScaleStack({ instances: 2, server: { scale: { intervalMs: 300 } } });
    await stack.supervise();
    registry = new HttpRegistry({ servers: stack.server.info.url });
    client = new RpcClient({ registry, app: 'scaletest-caller', warmupMs: 0 });
    config = new ConfigClient({ servers: stack.server.info.url, app: APP });
    await config.start();
    unbind = bindRoutingRules(config, client);
    echo = client.service(echoService);
    await waitFor('two v1 instances serving', async () => {
      const reg = (await stack.admin.registry.instances()).filter((i) => i.service === SERVICE);
      return reg.length === 2 && (await stack.instances('running')).length === 2;
    });
  });

  after(async () => {
    unbind?.();
    await config?.close();
    await client?.close();
    await registry?.close();
    await stack?.stop();
  });

  it('refuses a bad rule naming the field', async () => {
    await assert.rejects(
      stack.admin.scale.startRelease({
        app: APP,
        service: SERVICE,
        version: 'v2',
        command: stack.command(),
        rule: { userHash: 'buyer-id' },
      }),
      { code: 'PEAK_SCALE_INVALID', message: /rule\.userHash/ },
    );
  });

  it('a header rule sends only the marked calls to v2', async () => {
    await stack.admin.scale.startRelease({
      app: APP,
      service: SERVICE,
      version: 'v2',
      command: stack.command(),
      rule: { header: 'x-gray', value: '1' },
      stepHoldMs: 600_000,
    });
    await waitFor('the rule step', stepped, 60_000);
    await waitFor('marked calls on v2', async () => (await versionOf(1, true)) === 'v2');
    const marked = new Set<string>();
    const plain = new Set<string>();
    for (let n = 0; n < 100; n++) {
      marked.add(await versionOf(n, true));
      plain.add(await versionOf(n));
    }
    assert.deepEqual([...marked], ['v2']);
    assert.deepEqual([...plain], ['v1']);
    const r = await release();
    assert.match(r.events.at(-1)?.message ?? '', /the calls with x-gray = 1 \(header rule\)/);
    assert.deepEqual(
      (await rules()).map((x) => x.tag),
      [`release-${r.id}`],
    );
    await abort();
    await waitFor('the rule removed', async () => (await rules()).length === 0);
    assert.equal(await versionOf(1, true), 'v1');
  });

  it('a user-hash step at 20 % sends a stable set of users, about that share', async () => {
    await stack.admin.scale.startRelease({
      app: APP,
      service: SERVICE,
      version: 'v2',
      command: stack.command(),
      rule: { userHash: 'n' },
      steps: [20, 100],
      stepHoldMs: 600_000,
    });
    await waitFor('the 20 % step', stepped, 60_000);
    const expected = (n: number) => (hashKey(n) % 100 < 20 ? 'v2' : 'v1');
    const first = Array.from({ length: 400 }, (_, n) => n).find((n) => expected(n) === 'v2')!;
    await waitFor('users on v2', async () => (await versionOf(first)) === 'v2');
    let onV2 = 0;
    for (let n = 0; n < 400; n++) {
      const v = await versionOf(n);
      assert.equal(v, expected(n), `user ${n}`);
      assert.equal(await versionOf(n), v, `user ${n} again`);
      if (v === 'v2') onV2++;
    }
    assert.ok(onV2 >= 50 && onV2 <= 110, `${onV2} of 400 users on v2 at 20 %`);
    const r = await release();
    assert.equal(r.weight, 20);
    assert.deepEqual(
      (await rules()).map((x) => x.when),
      ['hash(n) % 100 < 20'],
    );
    await abort();
    await waitFor('the rule removed', async () => (await rules()).length === 0);
  });

  it('rolls back a v2 that errors, and removes the rule', async () => {
    await stack.admin.scale.startRelease({
      app: APP,
      service: SERVICE,
      version: 'v2-bad',
      command: stack.command('--fail'),
      rule: { userHash: 'n' },
      steps: [50, 100],
      stepHoldMs: 1500,
      minSamples: 20,
    });
    let r: ReleaseView | undefined;
    let failed = 0;
    let ok = 0;
    for (let n = 0; n < 100_000; n++) {
      try {
        await versionOf(n);
        ok++;
      } catch {
        failed++;
      }
      if (n % 50 === 0) {
        r = await release();
        if (r.state !== 'running') break;
      }
    }
    assert.equal(r?.state, 'rolled-back', r?.outcome ?? '');
    assert.match(
      r?.outcome ?? '',
      /step 1 \(50% of users, hash\(n\) % 100 < 50\): error rate 100%/,
    );
    assert.ok(failed > 0 && ok > 0, `${failed} failed, ${ok} ok`);
    await waitFor('the rule removed', async () => (await rules()).length === 0);
    await waitFor('the gray group stopped', async () =>
      (await stack.instances()).every((i) => i.version === 'v1'),
    );
    for (let n = 0; n < 50; n++) assert.equal(await versionOf(n), 'v1');
  });

  it('promotes a healthy v2 by header rule: the rule goes, its tag goes, v2 takes all', async () => {
    await stack.admin.scale.startRelease({
      app: APP,
      service: SERVICE,
      version: 'v2',
      command: stack.command(),
      rule: { header: 'x-gray', value: '1' },
      stepHoldMs: 1000,
      minSamples: 20,
      p99Tolerance: 1,
      p99SlackMs: 200,
    });
    let r: ReleaseView | undefined;
    const seen = new Map<string, number>();
    for (let n = 0; n < 100_000; n++) {
      const v = await versionOf(n, n % 2 === 0);
      seen.set(v, (seen.get(v) ?? 0) + 1);
      if (n % 50 === 0) {
        r = await release();
        if (r.state !== 'running') break;
      }
    }
    assert.equal(r?.state, 'promoted', r?.outcome ?? '');
    assert.ok((seen.get('v2') ?? 0) > 0);
    await waitFor('the rule removed', async () => (await rules()).length === 0);
    await waitFor('two v2 instances and no v1 left', async () => {
      const all = await stack.instances();
      return all.length === 2 && all.every((i) => i.version === 'v2' && i.state === 'running');
    });
    const reg = (await stack.admin.registry.instances()).filter((i) => i.service === SERVICE);
    assert.ok(
      reg.every((i) => i.tags.length === 0),
      `no instance keeps the release tag: ${JSON.stringify(reg.map((i) => [i.instanceId, i.tags]))}`,
    );
    for (let n = 0; n < 50; n++) assert.equal(await versionOf(n, n % 2 === 0), 'v2');
  });
});
