/**
 * Cluster flow control against a real `peak server` process: two guards share one QPS
 * budget through the token server; when the server is gone, or does not answer in time,
 * each falls back to its local rule. Also: metrics and rules reported to the server and
 * read back with `peak guard stats` / `peak guard rules`.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BlockError,
  Guard,
  GuardReporter,
  type GuardRules,
  HttpTokenClient,
} from '../src/guard/index.js';
import { overload } from './support/guard-overload.js';
import {
  killGroup,
  type PeakProcess,
  postgresPidsFor,
  runPeak,
  spawnPeak,
} from './support/peak-process.js';

const rules: GuardRules = {
  flow: [{ resource: 'buy', count: 100, cluster: { flowId: 'shop-buy', thresholdType: 'global' } }],
};

describe('guard cluster flow control (real peak server process)', { timeout: 120_000 }, () => {
  let dataDir: string;
  let server: PeakProcess;
  let url: string;
  const guards: Guard[] = [];

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-guard-'));
    server = spawnPeak([
      'server',
      '--data',
      dataDir,
      '--port',
      '0',
      '--json',
      '--log-level',
      'warn',
    ]);
    url = String((await server.waitFor('ready')).url);
  });

  after(async () => {
    for (const g of guards) g.close();
    killGroup(server.child);
    for (const pid of await postgresPidsFor(dataDir)) process.kill(pid, 'SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  });

  it('two instances share one global budget of N per second', async () => {
    const clients = ['a', 'b'].map(
      // A generous timeout: a freshly started server on a busy shared machine can be slow to
      // answer its first requests; the fallback tests below use a short one.
      (id) =>
        new HttpTokenClient({ server: url, namespace: 'shop', clientId: id, timeoutMs: 2000 }),
    );
    for (const client of clients) guards.push(new Guard({ rules, clusterClient: client }));
    // Warm up: each client's first batch comes back before the measured seconds.
    const until = Date.now() + 10_000;
    while (clients.some((c) => c.counters.answered === 0) && Date.now() < until) {
      for (const g of guards) {
        try {
          g.entry('buy').exit();
        } catch (err) {
          assert.ok(err instanceof BlockError);
        }
      }
      await sleep(50);
    }
    assert.ok(
      clients.every((c) => c.counters.answered > 0),
      'the token server never answered',
    );
    const [a, b] = guards as [Guard, Guard];
    const perSecond = await overload([a, b], 'buy', 500, 3);
    // Each alone would admit 100/s by its local rule; together they never go over the shared
    // budget. The floor is loose: on a loaded machine a token round trip can take tens of
    // ms, and a second may end with part of its budget still in flight (under-admission is
    // the safe direction; over-admission is the bug this test exists for).
    for (let s = 0; s < 3; s++) {
      const total = perSecond[0]![s]! + perSecond[1]![s]!;
      assert.ok(
        total >= 60 && total <= 108,
        `second ${s}: a ${perSecond[0]![s]}, b ${perSecond[1]![s]} (total ${total})`,
      );
      assert.ok(
        perSecond[0]![s]! > 10 && perSecond[1]![s]! > 10,
        `both instances get tokens: ${JSON.stringify(perSecond)}`,
      );
    }
  });

  it('metrics and rules reach the control plane and `peak guard` reads them', async () => {
    const guard = guards[0]!;
    const reporter = new GuardReporter(guard, {
      server: url,
      app: 'shop',
      instance: 'a',
      intervalMs: 200,
    });
    reporter.start();
    await overload([guard], 'buy', 200, 2);
    await sleep(1200);
    await reporter.stop();
    const stats = await runPeak([
      'guard',
      'stats',
      'buy',
      '--server',
      url,
      '--app',
      'shop',
      '--json',
    ]);
    assert.equal(stats.code, 0, stats.stderr);
    const rows = JSON.parse(stats.stdout).rows as {
      pass: number;
      block: number;
      instances: number;
    }[];
    assert.ok(
      rows.some((r) => r.pass > 0 && r.block > 0),
      stats.stdout,
    );
    const human = await runPeak(['guard', 'stats', 'buy', '--server', url]);
    assert.match(human.stdout, /pass +block +success/);
    const listed = await runPeak(['guard', 'rules', '--server', url, '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const instances = JSON.parse(listed.stdout).instances as { app: string; rules: GuardRules }[];
    assert.equal(instances[0]?.app, 'shop');
    assert.equal(instances[0]?.rules.flow?.[0]?.cluster?.flowId, 'shop-buy');
    const budgets = await runPeak(['guard', 'cluster', '--server', url, '--json']);
    assert.equal(budgets.code, 0, budgets.stderr);
    const listedBudgets = JSON.parse(budgets.stdout).budgets as {
      flowId: string;
      clients: number;
    }[];
    // Listed; `clients` counts only the last 5 s, and this test can take longer than that.
    assert.equal(typeof listedBudgets.find((b) => b.flowId === 'shop-buy')?.clients, 'number');
    const bad = await runPeak(['guard', 'stats', '--server', url]);
    assert.notEqual(bad.code, 0);
  });

  it('the token server refuses malformed requests without falling over', async () => {
    const res = await fetch(new URL('/api/v1/guard/cluster/token', url), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        namespace: 'shop',
        flowId: 'x',
        clientId: 'c',
        count: -5,
        acquire: 'lots',
      }),
    });
    assert.equal(res.status, 400);
    const ok = await fetch(new URL('/health', url));
    assert.equal(ok.status, 200);
  });

  it('falls back to the local rule when the token server does not answer in time', async () => {
    // A socket that accepts and never answers: the client must give up after its timeout.
    const sockets: net.Socket[] = [];
    const blackHole = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => blackHole.listen(0, '127.0.0.1', r));
    const port = (blackHole.address() as net.AddressInfo).port;
    const client = new HttpTokenClient({
      server: `http://127.0.0.1:${port}`,
      namespace: 'shop',
      timeoutMs: 100,
    });
    const guard = new Guard({ rules, clusterClient: client });
    guards.push(guard);
    try {
      const [perSecond] = (await overload([guard], 'buy', 1000, 2)) as [number[]];
      for (const n of perSecond)
        assert.ok(n >= 95 && n <= 105, `local fallback admitted ${perSecond.join(', ')}`);
      assert.ok(
        client.counters.failed >= 1 && client.counters.answered === 0,
        JSON.stringify(client.counters),
      );
    } finally {
      for (const s of sockets) s.destroy();
      blackHole.close();
    }
  });

  it('falls back to the local rule when the server is down', async () => {
    server.child.kill('SIGTERM');
    await server.exited;
    const client = new HttpTokenClient({ server: url, namespace: 'shop', timeoutMs: 100 });
    const guard = new Guard({ rules, clusterClient: client });
    guards.push(guard);
    const [perSecond] = (await overload([guard], 'buy', 1000, 2)) as [number[]];
    for (const n of perSecond)
      assert.ok(n >= 95 && n <= 105, `local fallback admitted ${perSecond.join(', ')}`);
    assert.ok(client.counters.failed >= 1, JSON.stringify(client.counters));
  });
});
