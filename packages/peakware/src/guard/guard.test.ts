import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { FakeClock } from '../../test/support/fake-clock.js';
import { waitFor } from '../../test/support/wait.js';
import { isPeakError } from '../core/errors.js';
import { sparseHistogramProblem, sparseQuantile } from '../core/latency-histogram.js';
import { BlockError } from './block-error.js';
import { Guard, type MetricSnapshot } from './guard.js';
import { guardHttpHandler } from './http-guard.js';
import { InMemoryRuleSource } from './rule-source.js';
import type { GuardRules } from './rule-types.js';

describe('Guard', () => {
  it('refuses an invalid rule set with the path of each problem; the rules in force stay', () => {
    const guard = new Guard({ rules: { flow: [{ resource: 'a', count: 1 }] } });
    const bad = {
      flow: [
        { resource: 'a', count: 100 },
        { resource: 'b', count: -1 },
      ],
      degrade: [{ resource: 'c', strategy: 'error-ratio', threshold: 2 }],
    } as unknown as GuardRules;
    assert.throws(
      () => guard.loadRules(bad),
      (err: unknown) => {
        assert.ok(isPeakError(err, 'PEAK_GUARD_INVALID_RULES'));
        assert.equal(err.details.path, 'flow[1].count');
        const paths = (err.details.problems as { path: string }[]).map((p) => p.path);
        assert.deepEqual(paths, [
          'flow[1].count',
          'degrade[0].threshold',
          'degrade[0].recoveryTimeoutMs',
        ]);
        assert.match(err.message, /flow\[1\]\.count must be >= 0/);
        return true;
      },
    );
    guard.entry('a').exit();
    assert.throws(() => guard.entry('a'), BlockError);
    assert.equal(guard.rules().flow[0]?.count, 1);
  });

  it('refuses unknown fields, bad kinds and cluster rules sharing a flowId', () => {
    const guard = new Guard();
    const cases: [unknown, string][] = [
      [{ flow: [{ resource: 'a', count: 1, cout: 2 }] }, 'flow[0].cout'],
      [{ flows: [] }, 'rules.flows'],
      [{ flow: {} }, 'flow'],
      [{ flow: [{ resource: 'a', count: 1, strategy: 'relate' }] }, 'flow[0].refResource'],
      [
        { flow: [{ resource: 'a', count: 1, grade: 'concurrency', behavior: 'warm-up' }] },
        'flow[0].behavior',
      ],
      [{ system: [{}] }, 'system[0]'],
      [
        { authority: [{ resource: 'a', strategy: 'allow', origins: [''] }] },
        'authority[0].origins[0]',
      ],
      [
        {
          flow: [
            { resource: 'a', count: 1, cluster: { flowId: 'f' } },
            { resource: 'b', count: 1, cluster: { flowId: 'f' } },
          ],
        },
        'flow[1].cluster.flowId',
      ],
    ];
    for (const [rules, path] of cases) {
      assert.throws(
        () => guard.loadRules(rules as GuardRules),
        (err: unknown) => isPeakError(err, 'PEAK_GUARD_INVALID_RULES') && err.details.path === path,
        path,
      );
    }
  });

  it('takes rules from a rule source and keeps the last good set when a bad one arrives', () => {
    const source = new InMemoryRuleSource({ flow: [{ resource: 's', count: 1 }] });
    const guard = new Guard();
    const rejected: Error[] = [];
    guard.on('rulesRejected', (err) => rejected.push(err));
    guard.useRuleSource(source);
    guard.entry('s').exit();
    assert.throws(() => guard.entry('s'), BlockError);
    source.set({ flow: [{ resource: 's', count: 'many' as unknown as number }] });
    assert.equal(rejected.length, 1);
    assert.equal(guard.rules().flow[0]?.count, 1);
    source.set({});
    for (let i = 0; i < 5; i++) guard.entry('s').exit();
    guard.close();
  });

  it('authority allows or denies by origin', () => {
    const guard = new Guard({
      rules: {
        authority: [
          { resource: 'admin', strategy: 'allow', origins: ['ops'] },
          { resource: 'pub', strategy: 'deny', origins: ['crawler'] },
        ],
      },
    });
    guard.entry('admin', { origin: 'ops' }).exit();
    assert.throws(
      () => guard.entry('admin', { origin: 'shop' }),
      (e: BlockError) => e.kind === 'authority',
    );
    guard.entry('pub', { origin: 'shop' }).exit();
    assert.throws(
      () => guard.entry('pub', { origin: 'crawler' }),
      (e: BlockError) => e.kind === 'authority',
    );
  });

  it('emits per-second metric snapshots', async () => {
    const clock = new FakeClock();
    const guard = new Guard({
      clock: clock.read,
      metricsIntervalMs: 20,
      rules: { flow: [{ resource: 'm', count: 3 }] },
    });
    const got: MetricSnapshot[][] = [];
    guard.on('metrics', (s) => got.push(s));
    const second = clock.advance(1000);
    for (let i = 0; i < 5; i++) {
      try {
        const e = guard.entry('m');
        if (i === 0) e.exit(new Error('x'));
        else e.exit();
      } catch {
        // blocked
      }
    }
    await sleep(60);
    assert.equal(got.length, 0, 'nothing is shipped while the second is still running');
    clock.advance(1000);
    await waitFor('the metrics event', () => got.some((s) => s.some((m) => m.resource === 'm')));
    const m = got.flat().find((s) => s.resource === 'm');
    assert.ok(m !== undefined, 'no metrics for m');
    assert.deepEqual(
      {
        second: m.second,
        pass: m.pass,
        block: m.block,
        success: m.success,
        error: m.error,
        concurrency: m.concurrency,
      },
      { second, pass: 3, block: 2, success: 2, error: 1, concurrency: 0 },
    );
    guard.close();
  });

  it("ships each second's RT histogram, so percentiles can be merged downstream", async () => {
    const clock = new FakeClock();
    const guard = new Guard({ clock: clock.read, metricsIntervalMs: 20 });
    const got: MetricSnapshot[][] = [];
    guard.on('metrics', (s) => got.push(s));
    const second = clock.advance(1000);
    // 9 calls of 2 ms and one of 80 ms, all ending inside the same second.
    for (const rt of [2, 2, 2, 2, 2, 2, 2, 2, 2, 80]) {
      const e = guard.entry('h');
      clock.advance(rt);
      e.exit();
    }
    clock.advance(1000);
    await waitFor('the metrics event', () => got.some((s) => s.some((m) => m.resource === 'h')));
    const m = got.flat().find((s) => s.resource === 'h')!;
    assert.equal(m.second, second);
    assert.ok(m.rtHist !== undefined, 'the second carries its histogram');
    assert.equal(sparseHistogramProblem(m.rtHist), undefined);
    assert.equal(
      m.rtHist.filter((_, k) => k % 2 === 1).reduce((a, b) => a + b, 0),
      10,
      'every completed call is in it',
    );
    assert.ok(
      Math.abs(sparseQuantile(m.rtHist, 0.5) - 2) < 0.2,
      `p50 ${sparseQuantile(m.rtHist, 0.5)}`,
    );
    assert.ok(
      Math.abs(sparseQuantile(m.rtHist, 0.99) - 80) < 6,
      `p99 ${sparseQuantile(m.rtHist, 0.99)}`,
    );
    guard.close();
  });
});

describe('guardHttpHandler', () => {
  it('answers 429 with a JSON error when blocked and counts 5xx as errors', async () => {
    const guard = new Guard({
      clock: new FakeClock().read, // time stands still: the 20 requests share one second
      rules: {
        flow: [{ resource: 'GET /orders', count: 5 }],
        authority: [{ resource: 'GET /admin', strategy: 'allow', origins: ['ops'] }],
      },
    });
    const server = http.createServer(
      guardHttpHandler(
        guard,
        async (req, res) => {
          if (req.url?.startsWith('/boom')) throw new Error('handler failed');
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end('ok');
        },
        {
          route: (req) => {
            if (req.method === 'PATCH') throw new Error('no route for PATCH');
            return (req.url ?? '/').split('?')[0]!;
          },
        },
      ),
    );
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          fetch(`${base}/orders?page=${i}`).then(async (r) => ({
            status: r.status,
            body: await r.text(),
          })),
        ),
      );
      assert.equal(answers.filter((a) => a.status === 200).length, 5, '5 per second');
      const blocked = answers.filter((a) => a.status === 429);
      assert.equal(blocked.length, 15);
      const error = JSON.parse(blocked[0]!.body).error;
      assert.equal(error.code, 'PEAK_GUARD_BLOCKED');
      assert.equal(error.details.kind, 'flow');
      assert.equal(error.details.resource, 'GET /orders');

      const denied = await fetch(`${base}/admin`, { headers: { 'peak-caller': 'shop' } });
      assert.equal(denied.status, 403);
      assert.equal(
        (await fetch(`${base}/admin`, { headers: { 'peak-caller': 'ops' } })).status,
        200,
      );

      const weird = await fetch(`${base}/orders`, { method: 'PATCH' });
      assert.equal(weird.status, 500);
      assert.match(JSON.parse(await weird.text()).error.message, /could not classify/);
      const boom = await fetch(`${base}/boom`);
      assert.equal(boom.status, 500);
      await sleep(20);
      assert.equal(guard.stats('GET /boom')?.errorQps, 1);
      assert.equal(guard.stats('GET /orders')?.concurrency, 0);
    } finally {
      server.close();
      server.closeAllConnections();
      guard.close();
    }
  });
});
