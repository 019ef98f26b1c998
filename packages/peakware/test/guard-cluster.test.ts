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
import { bearer, useDataFolderCredential } from './support/credentials.js';
import { FakeClock } from './support/fake-clock.js';
import { overload, overloadOnClock } from './support/guard-overload.js';
import {
  killGroup,
  type PeakProcess,
  postgresPidsFor,
  runPeak,
  spawnPeak,
} from './support/peak-process.js';
import { waitFor } from './support/wait.js';

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
    await useDataFolderCredential(dataDir);
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
        new HttpTokenClient({ servers: url, namespace: 'shop', clientId: id, timeoutMs: 2000 }),
    );
    for (const client of clients) guards.push(new Guard({ rules, clusterClient: client }));
    // Warm up: each client's first batch comes back before the measured seconds.
    await waitFor('the token server to answer both clients', () => {
      for (const g of guards) {
        try {
          g.entry('buy').exit();
        } catch (err) {
          assert.ok(err instanceof BlockError);
        }
      }
      return clients.every((c) => c.counters.answered > 0);
    });
    const [a, b] = guards as [Guard, Guard];
    const perSecond = await overload([a, b], 'buy', 500, 3);
    // Each alone would admit 100/s by its local rule; together they never go over the shared
    // budget (plus what the two may borrow ahead of a batch in flight, 2 tokens each, and
    // a batch straddling the second's end). Over-admission is the bug this test exists for.
    // There is no floor per second: how much of a second's budget arrives in time depends
    // on token round trips, i.e. on the machine's load (under-admission is the safe side).
    for (let s = 0; s < 3; s++) {
      const total = perSecond[0]![s]! + perSecond[1]![s]!;
      assert.ok(
        total <= 108,
        `second ${s}: a ${perSecond[0]![s]}, b ${perSecond[1]![s]} (total ${total})`,
      );
    }
    const sum = (xs: number[]) => xs.reduce((n, x) => n + x, 0);
    assert.ok(
      sum(perSecond[0]!) > 0 && sum(perSecond[1]!) > 0,
      `both instances draw from the budget: ${JSON.stringify(perSecond)}`,
    );
  });

  it('metrics and rules reach the control plane and `peak guard` reads them', async () => {
    const guard = guards[0]!;
    const reporter = new GuardReporter(guard, {
      servers: url,
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
      headers: { 'content-type': 'application/json', ...bearer() },
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
      servers: `http://127.0.0.1:${port}`,
      namespace: 'shop',
      timeoutMs: 100,
      retryAfterMs: 60_000,
    });
    try {
      await assertLocalFallback(client);
      assert.equal(client.counters.answered, 0, JSON.stringify(client.counters));
    } finally {
      for (const s of sockets) s.destroy();
      blackHole.close();
    }
  });

  it('falls back to the local rule when the server is down', async () => {
    server.child.kill('SIGTERM');
    await server.exited;
    const client = new HttpTokenClient({
      servers: url,
      namespace: 'shop',
      timeoutMs: 100,
      retryAfterMs: 60_000,
    });
    await assertLocalFallback(client);
  });

  /**
   * With `client`'s token server failing, a guard with the cluster rule enforces the local
   * rule (100/s) instead: exactly 100 a second under 10x overload, on a fake clock. The
   * client's fallback window (retryAfterMs, real time) outlasts the test.
   */
  async function assertLocalFallback(client: HttpTokenClient): Promise<void> {
    const clock = new FakeClock();
    const guard = new Guard({ rules, clusterClient: client, clock: clock.read });
    guards.push(guard);
    guard.entry('buy').exit(); // starts the first token request (and borrows for this call)
    await waitFor('the token request to fail', () => client.counters.failed >= 1);
    clock.advance(1000);
    assert.deepEqual(overloadOnClock(guard, clock, 'buy', 1000, 2), [100, 100]);
    assert.equal(
      client.counters.fallback,
      2000,
      'every call asked the client, which said fallback',
    );
  }
});
