import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { renderHtmlReport } from './html-report.js';
import { constantRate, rateSteps, virtualUsers } from './load-model.js';
import { defineScenario, httpStep, rendezvous, think } from './scenario.js';
import { STRESS_RUN_BAGGAGE, startRun } from './stress-run.js';

/** An echo server that can be told to stall every answer until a time. */
function echoServer() {
  const seen: {
    stress: string | undefined;
    baggage: string | undefined;
    traceparent: string | undefined;
    body: string;
  }[] = [];
  let stallUntil = 0;
  let stallAfter = Number.POSITIVE_INFINITY;
  let stallMs = 0;
  let slowMs = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      seen.push({
        stress: req.headers['peak-stress'] as string | undefined,
        baggage: req.headers.baggage as string | undefined,
        traceparent: req.headers.traceparent as string | undefined,
        body,
      });
      if (seen.length === stallAfter) stallUntil = Date.now() + stallMs;
      const wait = Math.max(slowMs, stallUntil - Date.now());
      const answer = () => {
        res.writeHead(req.url === '/missing' ? 404 : 200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ n: seen.length, echo: body }));
      };
      if (wait > 0) setTimeout(answer, wait);
      else answer();
    });
  });
  return {
    server,
    seen,
    stall(after: number, ms: number) {
      stallAfter = after;
      stallMs = ms;
    },
    slow(ms: number) {
      slowMs = ms;
    },
  };
}

describe('stress generator', { timeout: 60_000 }, () => {
  let echo: ReturnType<typeof echoServer>;
  let target: string;

  before(async () => {
    echo = echoServer();
    await new Promise<void>((r) => echo.server.listen(0, '127.0.0.1', r));
    target = `http://127.0.0.1:${(echo.server.address() as AddressInfo).port}`;
  });
  after(() => {
    echo.server.closeAllConnections();
    echo.server.close();
  });

  it('sends exactly rate × duration iterations with the stress context, data rows and checks', async () => {
    echo.seen.length = 0;
    const scenario = defineScenario({
      name: 'orders',
      target,
      load: constantRate(50, 1),
      data: [{ sku: 'A' }, { sku: 'B' }],
      steps: [
        httpStep({
          name: 'buy',
          path: '/buy',
          json: (it) => ({ sku: it.row.sku, i: it.index }),
          check: (res, it) => {
            if (res.headers['content-type'] !== 'application/json') return 'no content-type';
            it.vars.n = (res.json() as { n: number }).n;
            return (res.json() as { echo: string }).echo.includes(String(it.row.sku));
          },
        }),
        httpStep({ name: 'missing', path: '/missing', expect: 404 }),
      ],
    });
    const run = startRun(scenario, { runId: 'run-1' });
    const report = await run.done;
    assert.equal(report.totals.iterations, 50);
    assert.equal(report.totals.completed, 50);
    assert.equal(report.totals.ok, 100);
    assert.equal(report.totals.errors, 0);
    assert.equal(report.stopReason, 'completed');
    assert.deepEqual(
      report.steps.map((s) => [s.name, s.ok]),
      [
        ['buy', 50],
        ['missing', 50],
      ],
    );
    assert.equal(echo.seen.length, 100);
    assert.ok(echo.seen.every((s) => s.stress === '1'));
    assert.ok(echo.seen.every((s) => s.baggage?.includes(`${STRESS_RUN_BAGGAGE}=run-1`)));
    // Each iteration is a trace of its own: its two steps share one, no two iterations do.
    const traces = new Set(echo.seen.map((s) => s.traceparent?.split('-')[1]));
    assert.equal(traces.size, 50, [...traces].slice(0, 3).join(', '));
    const skus = echo.seen.filter((s) => s.body !== '').map((s) => JSON.parse(s.body).sku);
    assert.equal(skus.filter((s) => s === 'A').length, 25);
    assert.equal(skus.filter((s) => s === 'B').length, 25);
    assert.equal(report.latency.count, 100);
  });

  it('sends fixed steps serialised once, with the stress context, in the open and closed models', async () => {
    for (const load of [constantRate(20, 0.5), virtualUsers(2, 0.3)]) {
      echo.seen.length = 0;
      const report = await startRun(
        defineScenario({
          name: 'fixed',
          target,
          load,
          steps: [
            httpStep({ name: 'a', path: '/a' }),
            httpStep({ name: 'b', path: '/b', body: 'é', headers: { 'x-k': 'v' } }),
          ],
        }),
        { runId: 'run-fixed' },
      ).done;
      assert.equal(report.totals.errors, 0, load.kind);
      assert.equal(report.totals.ok, report.totals.completed * 2, load.kind);
      assert.ok(report.totals.completed >= (load.kind === 'constant-rate' ? 10 : 2), load.kind);
      assert.equal(echo.seen.length, report.totals.ok);
      assert.ok(echo.seen.every((s) => s.stress === '1'));
      assert.ok(echo.seen.every((s) => s.baggage?.includes(`${STRESS_RUN_BAGGAGE}=run-fixed`)));
      // No traceparent: the target starts a trace per request (one id would make the run one trace).
      assert.ok(echo.seen.every((s) => s.traceparent === undefined));
      assert.equal(echo.seen.filter((s) => s.body === 'é').length, report.totals.completed);
    }
  });

  it('counts a failed check against its step and stops that iteration', async () => {
    const report = await startRun(
      defineScenario({
        name: 'fails',
        target,
        stress: false,
        load: constantRate(20, 0.5),
        steps: [
          httpStep({ name: 'missing', path: '/missing' }),
          httpStep({ name: 'never', path: '/x' }),
        ],
      }),
    ).done;
    assert.equal(report.totals.iterations, 10);
    assert.equal(report.totals.errors, 10);
    assert.equal(report.totals.completed, 0);
    assert.equal(report.steps.find((s) => s.name === 'never')?.ok, 0);
    assert.match(report.errors[0]!.message, /status 404/);
    assert.equal(report.errors[0]!.count, 10);
  });

  it('measures from the scheduled send time: a planted stall shows in the open model p99', async () => {
    echo.seen.length = 0;
    echo.stall(20, 300);
    const report = await startRun(
      defineScenario({
        name: 'stall',
        target,
        stress: false,
        load: constantRate(100, 1),
        steps: [httpStep({ name: 'get', path: '/' })],
      }),
    ).done;
    echo.stall(Number.POSITIVE_INFINITY, 0);
    // 100 requests; the ones scheduled during the 300 ms stall (about 30) waited for it.
    assert.equal(report.totals.ok, 100);
    assert.ok(report.latency.p99Ms >= 150, `p99 ${report.latency.p99Ms} ms`);
    assert.ok(report.latency.p90Ms >= 50, `p90 ${report.latency.p90Ms} ms`);
  });

  it('stops itself when the p99 threshold breaks', async () => {
    echo.slow(40);
    const report = await startRun(
      defineScenario({
        name: 'sla',
        target,
        stress: false,
        load: constantRate(40, 60),
        thresholds: { p99Ms: 20, windowS: 2, minSamples: 10 },
        steps: [httpStep({ name: 'get', path: '/' })],
      }),
    ).done;
    echo.slow(0);
    assert.equal(report.stopReason, 'sla');
    assert.match(report.stopDetail ?? '', /p99 .* above the threshold 20 ms/);
    assert.ok(report.totals.iterations < 40 * 60);
  });

  it('stops at the wall-clock limit, and by hand', async () => {
    const limited = await startRun(
      defineScenario({
        name: 'limit',
        target,
        stress: false,
        load: constantRate(10, 3600),
        maxDurationS: 1,
        steps: [httpStep({ name: 'get', path: '/' })],
      }),
    ).done;
    assert.equal(limited.stopReason, 'time-limit');
    const run = startRun(
      defineScenario({
        name: 'byhand',
        target,
        stress: false,
        load: virtualUsers(2, 3600),
        steps: [httpStep({ name: 'get', path: '/' }), think(5)],
      }),
    );
    setTimeout(() => run.stop(), 300);
    const stopped = await run.done;
    assert.equal(stopped.stopReason, 'stopped');
    assert.ok(stopped.totals.ok > 0);
  });

  it('runs virtual users through a rendezvous together', async () => {
    echo.seen.length = 0;
    const report = await startRun(
      defineScenario({
        name: 'vus',
        target,
        stress: false,
        load: virtualUsers(3, 0.5),
        steps: [rendezvous('go', 3, 5000), httpStep({ name: 'get', path: '/' })],
      }),
    ).done;
    assert.equal(report.totals.errors, 0);
    assert.equal(report.totals.ok % 3, 0, `calls come in threes: ${report.totals.ok}`);
    assert.ok(report.totals.ok >= 3);
  });

  it('changes the rate mid-run and reports per stage, drawn as HTML with inline SVG', async () => {
    const run = startRun(
      defineScenario({
        name: 'steps',
        target,
        stress: false,
        load: rateSteps([
          { rate: 20, durationS: 1 },
          { rate: 40, durationS: 1 },
        ]),
        steps: [httpStep({ name: 'get', path: '/' })],
      }),
    );
    const report = await run.done;
    assert.equal(report.totals.iterations, 60);
    assert.equal(report.stages.length, 2);
    const html = renderHtmlReport(report);
    assert.match(html, /<svg /);
    assert.doesNotMatch(html, /<script|https?:\/\/(?!www\.w3)/);
    const fixed = startRun(
      defineScenario({
        name: 'override',
        target,
        stress: false,
        load: constantRate(10, 1),
        steps: [httpStep({ name: 'get', path: '/' })],
      }),
    );
    fixed.setTarget(30);
    assert.equal((await fixed.done).totals.iterations, 30);
  });
});
