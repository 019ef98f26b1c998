/**
 * The guard's cluster token server across several control-plane nodes: node A runs the
 * embedded PostgreSQL and only forwards (`guard: { tokenServer: false }`); nodes B and C are
 * `peak server` processes on A's PostgreSQL, both willing to lead. Three guards, each
 * talking to a different node, share one budget of 100/s: per second they admit at most
 * 100 together (each alone would admit 100 by its local rule). After the leading node is
 * killed with SIGKILL, the other node takes over and the guards still talking to live
 * nodes again share one budget.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { BlockError, Guard, type GuardRules, HttpTokenClient } from '../src/guard/index.js';
import { PeakServer } from '../src/server/index.js';
import { bearer, useLocalCredential } from './support/credentials.js';
import { overload } from './support/guard-overload.js';
import { killGroup, type PeakProcess, spawnPeak } from './support/peak-process.js';
import { waitFor } from './support/wait.js';

const BUDGET = 100;
const rules: GuardRules = {
  flow: [
    { resource: 'buy', count: BUDGET, cluster: { flowId: 'nodes-buy', thresholdType: 'global' } },
  ],
};

interface Cluster {
  nodeId: string;
  leading: boolean;
  leaderNodeId: string | null;
}

const cluster = async (url: string): Promise<Cluster | undefined> => {
  try {
    const res = await fetch(`${url}/api/v1/guard/cluster`, {
      headers: bearer(),
      signal: AbortSignal.timeout(5000),
    });
    return res.ok ? ((await res.json()) as Cluster) : undefined;
  } catch {
    return undefined;
  }
};

describe('guard cluster budgets across control-plane nodes', { timeout: 240_000 }, () => {
  let a: PeakServer;
  const dirs: string[] = [];
  const nodes: { name: string; proc: PeakProcess; url: string }[] = [];
  const guards: Guard[] = [];
  const clients = new Map<Guard, HttpTokenClient>();

  const tmp = async (prefix: string) => {
    const d = await mkdtemp(path.join(os.tmpdir(), prefix));
    dirs.push(d);
    return d;
  };
  const leaders = async () => {
    const out = [];
    for (const n of nodes) if ((await cluster(n.url))?.leading === true) out.push(n);
    return out;
  };
  /** A guard drawing on the budget through `url`; waits until its first batch came back. */
  const guardOn = async (url: string, id: string) => {
    const client = new HttpTokenClient({
      servers: url,
      namespace: 'nodes',
      clientId: id,
      timeoutMs: 2000,
    });
    const guard = new Guard({ rules, clusterClient: client });
    guards.push(guard);
    clients.set(guard, client);
    await waitFor(
      `guard ${id} gets tokens through ${url}`,
      async () => {
        try {
          guard.entry('buy').exit();
        } catch (err) {
          assert.ok(err instanceof BlockError);
        }
        await sleep(50);
        return client.counters.answered > 0;
      },
      20_000,
    );
    return guard;
  };
  /** Each second, the guards together admit at most the budget; every guard draws on it. */
  const assertShared = (perSecond: number[][], what: string) => {
    for (let s = 0; s < perSecond[0]!.length; s++) {
      const each = perSecond.map((g) => g[s]!);
      const total = each.reduce((x, y) => x + y, 0);
      // Over-admission is the bug. Each client may spend, besides its share, what is left of
      // a batch from the second before and one batch borrowed ahead (2 + 2 tokens here).
      // No floor per second: how much of a second's budget arrives in time depends on token
      // round trips, i.e. on the machine's load (under-admission is the safe side).
      assert.ok(
        total <= BUDGET + 4 * each.length,
        `${what}, second ${s}: ${each.join(' + ')} = ${total}`,
      );
    }
    const sums = perSecond.map((g) => g.reduce((x, y) => x + y, 0));
    assert.ok(
      sums.every((n) => n > 0),
      `${what}: every guard draws on the budget: ${JSON.stringify(perSecond)}`,
    );
  };

  /**
   * Overloads `gs` for `seconds` and asserts the shared budget. A token request that outlasts
   * its 2 s timeout (a loaded host) puts that client on its local rule for a while, by design,
   * and local rules together admit more than the budget: such a window measures the fallback,
   * not the shared budget, so it is measured again (five windows at most).
   */
  const assertSharedUnder = async (gs: Guard[], seconds: number, what: string) => {
    const fallbacks = () => gs.reduce((n, g) => n + (clients.get(g)?.counters.fallback ?? 0), 0);
    for (let window = 1; ; window++) {
      const before = fallbacks();
      const perSecond = await overload(gs, 'buy', 300, seconds);
      const fell = fallbacks() - before;
      if (fell === 0 || window === 5) {
        assertShared(perSecond, `${what} (window ${window}, ${fell} fallbacks)`);
        return;
      }
      await sleep(1500);
    }
  };

  before(async () => {
    a = await PeakServer.start({
      dataDir: await tmp('peak-gnodes-a-'),
      port: 0,
      guard: { tokenServer: false },
    });
    useLocalCredential(a);
    for (const name of ['b', 'c']) {
      const proc = spawnPeak([
        'server',
        '--postgres',
        a.postgresUrl(),
        '--data',
        await tmp(`peak-gnodes-${name}-`),
        '--port',
        '0',
        '--json',
        '--log-level',
        'warn',
      ]);
      const ready = await proc.waitFor('ready', 60_000);
      nodes.push({ name, proc, url: String(ready.url) });
    }
  });

  after(async () => {
    for (const g of guards) g.close();
    for (const n of nodes) {
      killGroup(n.proc.child);
      await n.proc.exited;
    }
    await a?.stop();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('one budget through any node; another node leads after a kill -9', async () => {
    await waitFor('exactly one leading node', async () => (await leaders()).length === 1, 20_000);
    const [leader] = await leaders();
    assert.ok(leader !== undefined);
    const viewFromA = await cluster(a.info.url);
    assert.equal(viewFromA?.leading, false, 'node A was told not to lead');
    assert.equal(viewFromA?.leaderNodeId, (await cluster(leader.url))?.nodeId);

    const urls = [a.info.url, nodes[0]!.url, nodes[1]!.url];
    const [ga, gb, gc] = [
      await guardOn(urls[0]!, 'via-a'),
      await guardOn(urls[1]!, 'via-b'),
      await guardOn(urls[2]!, 'via-c'),
    ] as [Guard, Guard, Guard];
    await assertSharedUnder([ga, gb, gc], 3, 'three nodes');

    killGroup(leader.proc.child, 'SIGKILL');
    await leader.proc.exited;
    nodes.splice(nodes.indexOf(leader), 1);
    const other = nodes[0]!;
    await waitFor(
      `node ${other.name} takes over`,
      async () => (await cluster(other.url))?.leading === true,
      30_000,
    );
    // The guards on A and on the surviving node share one budget again (the guard of the
    // dead node uses its local rule, as any client of an unreachable control plane does).
    const survivor = other.name === 'b' ? gb : gc;
    await waitFor(
      'A forwards to the new leader',
      async () => (await cluster(a.info.url))?.leaderNodeId === (await cluster(other.url))?.nodeId,
      15_000,
    );
    // Let both clients get past their fallback window before measuring.
    await sleep(1500);
    await assertSharedUnder([ga, survivor], 2, 'after the takeover');
  });
});
