/**
 * MQ-backlog and burn-rate alert rules end to end on a real peak server:
 *
 * - backlog: messages produced to a topic with no consumer in group `billing` make
 *   "backlog > 20 for 1 s" fire (event + webhook); a consumer draining the topic resolves it;
 * - burn-rate: a traced service whose calls fail (and, for a latency SLO, run slow) makes
 *   the multi-window rule fire when both windows burn faster than the factor; once the
 *   failures stop the short window clears first and resolves it while the long window
 *   still burns; the same on a resource's pushed per-second metrics, with no spans at all;
 * - bad rules are refused with messages naming the field; changes need the admin token;
 * - `peak alert` lists, creates and deletes rules and lists events.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SlidingWindow } from '../src/core/sliding-window.js';
import { BrokerClient, Consumer, Producer } from '../src/mq/index.js';
import { PeakServer } from '../src/server/index.js';
import {
  BatchSpanProcessor,
  ControlPlaneSpanExporter,
  MetricsPusher,
  parsePrometheusText,
  Tracer,
} from '../src/telemetry/index.js';
import { useLocalCredential } from './support/credentials.js';
import { runPeak } from './support/peak-process.js';
import { waitFor } from './support/wait.js';
import { startWebhookSink, type WebhookSink } from './support/webhook-sink.js';
import { assertPromtoolAccepts } from './telemetry-promtool-check.js';

interface Hook {
  rule: string;
  state: string;
  kind: string;
  value: number;
  details: Record<string, number>;
}

describe('telemetry alert rules: mq-backlog and burn-rate', { timeout: 180_000 }, () => {
  let dataDir: string;
  let server: PeakServer;
  let webhook: WebhookSink | undefined;
  let webhookUrl: string;
  const hooks: Hook[] = [];
  const closers: (() => Promise<void>)[] = [];

  const api = async (method: string, p: string, body?: unknown, token = server.info.adminToken) => {
    const res = await fetch(`${server.info.url}${p}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(10_000),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  const hooksOf = (rule: string) => hooks.filter((h) => h.rule === rule);

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-telemetry-rules-'));
    server = await PeakServer.start({ dataDir, port: 0, telemetry: { alertIntervalMs: 200 } });
    useLocalCredential(server);
    webhook = await startWebhookSink(hooks);
    webhookUrl = webhook.url;
  });

  after(async () => {
    for (const close of closers) await close().catch(() => {});
    await webhook?.close();
    await server?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('refuses bad rules with a message naming the field, and changes without the token', async () => {
    const put = (name: string, body: unknown, token?: string) =>
      api('PUT', `/api/v1/telemetry/alerts/rules/${name}`, body, token);
    assert.equal(
      (await put('b', { kind: 'mq-backlog', group: 'g', topic: 't', threshold: 1 }, '')).status,
      401,
    );
    const cases: [unknown, RegExp][] = [
      [{ kind: 'mq-backlog', topic: 't', threshold: 5 }, /needs 'group'/],
      [{ kind: 'mq-backlog', group: 'g', topic: 't' }, /whole number of messages/],
      [{ kind: 'mq-backlog', group: 'g', topic: 't', threshold: 5, service: 's' }, /'service'/],
      [{ kind: 'burn-rate', service: 's' }, /needs 'objective'/],
      [
        {
          kind: 'burn-rate',
          service: 's',
          objective: 0.99,
          windowSeconds: 60,
          shortWindowSeconds: 60,
        },
        /shorter than windowSeconds/,
      ],
      [{ kind: 'burn-rate', objective: 0.99 }, /needs 'service'/],
      [{ kind: 'p99', service: 's', threshold: 5, objective: 0.9 }, /belongs to burn-rate/],
      [{ kind: 'error-rate', service: 's', threshold: 2 }, /fraction 0\.\.1/],
      [{ kind: 'burn-rate', service: 's', objective: 1 }, /objective/],
      [{ kind: 'saturation', service: 's' }, /kind/],
      [
        { kind: 'mq-backlog', group: 'g', topic: 't', resource: 'r', threshold: 5 },
        /'resource'.*not mq-backlog/,
      ],
    ];
    for (const [body, message] of cases) {
      const res = await put('bad', body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.match(JSON.stringify(res.body), message, JSON.stringify(body));
    }
    const ok = await put('defaults', { kind: 'burn-rate', service: 's', objective: 0.999 });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const rule = ok.body.rule as Record<string, number>;
    assert.equal(rule.threshold, 14.4);
    assert.equal(rule.windowSeconds, 3600);
    assert.equal(rule.shortWindowSeconds, 300);
    assert.equal((await api('DELETE', '/api/v1/telemetry/alerts/rules/defaults')).status, 200);
  });

  it('mq-backlog fires while a group lags behind and resolves once it has consumed', async () => {
    const admin = new BrokerClient({ servers: server.info.url, token: server.info.adminToken! });
    await admin.call('POST', '/api/v1/mq/topics', { name: 'alert-orders', queues: 2 });
    const put = await api('PUT', '/api/v1/telemetry/alerts/rules/billing-lag', {
      kind: 'mq-backlog',
      group: 'billing',
      topic: 'alert-orders',
      threshold: 20,
      forSeconds: 1,
      webhook: webhookUrl,
    });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    const producer = new Producer({ servers: server.info.url });
    closers.push(() => producer.close());
    for (let i = 0; i < 10; i++) await producer.send('alert-orders', { body: `order ${i}` });
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(hooksOf('billing-lag').length, 0, 'a backlog of 10 is under the threshold');

    const breached = Date.now(); // the backlog crosses 20 during the sends below, not before
    for (let i = 10; i < 30; i++) await producer.send('alert-orders', { body: `order ${i}` });
    await waitFor('the backlog alert', () => hooksOf('billing-lag').length >= 1);
    assert.ok(Date.now() - breached >= 900, 'not before the for-duration');
    const fired = hooksOf('billing-lag')[0]!;
    assert.equal(fired.state, 'fired');
    assert.equal(fired.kind, 'mq-backlog');
    assert.ok(fired.value > 20, `backlog ${fired.value}`);

    let consumed = 0;
    const consumer = new Consumer({
      servers: server.info.url,
      group: 'billing',
      topic: 'alert-orders',
      waitMs: 300,
      handler: () => {
        consumed++;
      },
    }).start();
    closers.push(() => consumer.close());
    await waitFor('the resolved backlog alert', () => hooksOf('billing-lag').length >= 2);
    assert.equal(hooksOf('billing-lag')[1]?.state, 'resolved');
    assert.ok(consumed >= 10, `resolved only after the group caught up (consumed ${consumed})`);
    const events = await api('GET', '/api/v1/telemetry/alerts/events?rule=billing-lag');
    assert.deepEqual(
      (events.body.events as { state: string }[]).map((e) => e.state),
      ['resolved', 'fired'],
    );
    // The backlog is on peak server's /metrics too, per group, topic and queue (promtool
    // checks the labels), down to 0 once the group has acked every message.
    const scrape = async () => {
      const text = await fetch(`${server.info.url}/metrics`).then((r) => r.text());
      const samples = parsePrometheusText(text).samples.filter(
        (x) =>
          x.name === 'peak_mq_backlog_messages' &&
          x.labels.group === 'billing' &&
          x.labels.topic === 'alert-orders',
      );
      return { text, samples, sum: samples.reduce((n, x) => n + x.value, 0) };
    };
    await waitFor('all 30 consumed', () => consumed >= 30);
    let last = await scrape();
    await waitFor(
      () => `the acked backlog to leave /metrics (last sum ${last.sum})`,
      async () => {
        last = await scrape();
        return last.sum === 0;
      },
    );
    assertPromtoolAccepts(last.text, "peak server's /metrics with mq backlog");
    assert.deepEqual(last.samples.map((x) => x.labels.queue).sort(), ['0', '1']);
    assert.equal(last.sum, 0, 'the acked backlog is gone from /metrics');
    // And the node's traffic, by topic (and group): what went in, out and was acked.
    const traffic = (event: string) =>
      parsePrometheusText(last.text)
        .samples.filter(
          (x) =>
            x.name === `peak_mq_messages_${event}_total` &&
            x.labels.topic === 'alert-orders' &&
            (event === 'produced' ? x.labels.group === undefined : x.labels.group === 'billing'),
        )
        .reduce((n, x) => n + x.value, 0);
    assert.ok(traffic('produced') >= 30, `produced ${traffic('produced')}`);
    assert.ok(traffic('delivered') >= 30, `delivered ${traffic('delivered')}`);
    assert.ok(traffic('acked') >= 30, `acked ${traffic('acked')}`);
    assert.equal(traffic('dead_lettered'), 0);
    assert.match(last.text, /^# TYPE peak_mq_messages_nacked_total counter$/m);
    await consumer.close();
  });

  it('burn-rate fires when both windows burn the budget too fast and resolves after', async () => {
    const processor = new BatchSpanProcessor({
      exporter: new ControlPlaneSpanExporter({ servers: server.info.url }),
      flushIntervalMs: 50,
    });
    const tracer = new Tracer({ service: 'payment', sink: processor });
    let failEvery = 0; // 0: never; n: every n-th call fails
    let latencyMs = 1;
    let stop = false;
    let n = 0;
    const load = Promise.all(
      Array.from({ length: 3 }, async () => {
        while (!stop) {
          await tracer
            .trace(
              'payment.callback',
              async () => {
                await new Promise((r) => setTimeout(r, latencyMs));
                if (failEvery > 0 && ++n % failEvery === 0) throw new Error('induced failure');
              },
              { kind: 'server' },
            )
            .catch(() => undefined);
          await new Promise((r) => setTimeout(r, 10));
        }
      }),
    );
    closers.push(async () => {
      stop = true;
      await load;
      await processor.shutdown();
    });

    // 99% must succeed; factor 10: fires when more than 10% of calls fail in both windows.
    const put = await api('PUT', '/api/v1/telemetry/alerts/rules/pay-slo', {
      kind: 'burn-rate',
      service: 'payment',
      objective: 0.99,
      windowSeconds: 8,
      shortWindowSeconds: 1,
      threshold: 10,
      forSeconds: 1,
      webhook: webhookUrl,
    });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(hooksOf('pay-slo').length, 0, 'no alert while every call succeeds');

    failEvery = 2; // 50% errors: burn rate 50
    await waitFor('the burn-rate alert', () => hooksOf('pay-slo').length >= 1);
    const fired = hooksOf('pay-slo')[0]!;
    assert.equal(fired.state, 'fired');
    assert.ok(fired.value > 10, `long-window burn ${fired.value}`);
    assert.ok((fired.details.shortBurnRate ?? 0) > 10);

    failEvery = 0;
    await waitFor('the resolved burn-rate alert', () => hooksOf('pay-slo').length >= 2);
    const resolved = hooksOf('pay-slo')[1]!;
    assert.equal(resolved.state, 'resolved');
    assert.ok(
      (resolved.details.shortBurnRate ?? 1) <= 10,
      `short window cleared: ${JSON.stringify(resolved.details)}`,
    );
    assert.ok(
      (resolved.details.longBurnRate ?? 0) > 0,
      'the long window still remembers the failures: only the short one resolved it',
    );
    assert.equal((await api('DELETE', '/api/v1/telemetry/alerts/rules/pay-slo')).status, 200);

    // A latency SLO: calls slower than 300 ms count against the budget too (far above what
    // a 1 ms call takes on a loaded machine: at 50 ms, stalls of a busy CI host fired it).
    const slow = await api('PUT', '/api/v1/telemetry/alerts/rules/pay-latency', {
      kind: 'burn-rate',
      service: 'payment',
      objective: 0.99,
      latencyMs: 300,
      windowSeconds: 4,
      shortWindowSeconds: 1,
      threshold: 10,
      webhook: webhookUrl,
    });
    assert.equal(slow.status, 200, JSON.stringify(slow.body));
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(hooksOf('pay-latency').length, 0, 'no latency alert while calls take 1 ms');
    latencyMs = 400;
    await waitFor('the latency burn-rate alert', () => hooksOf('pay-latency').length >= 1);
    assert.equal(hooksOf('pay-latency')[0]?.state, 'fired');
    latencyMs = 1;
    await waitFor('the resolved latency alert', () => hooksOf('pay-latency').length >= 2);
    assert.equal(hooksOf('pay-latency')[1]?.state, 'resolved');
  });

  it("burn-rate on a resource's pushed metrics counts every call, not sampled spans", async () => {
    // No tracer at all: the rule can only see the per-second metrics the pusher sends.
    const pusher = new MetricsPusher({ servers: server.info.url, service: 'wallet' });
    const window = new SlidingWindow({ intervalMs: 1000, buckets: 2 });
    pusher.watchWindow('wallet.pay', window);
    let failEvery = 0;
    let stop = false;
    let n = 0;
    const load = (async () => {
      while (!stop) {
        for (let i = 0; i < 5; i++) {
          n++;
          window.addPass();
          window.addComplete(1, failEvery > 0 && n % failEvery === 0);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    closers.push(async () => {
      stop = true;
      await load;
      await pusher.close();
    });
    const put = await api('PUT', '/api/v1/telemetry/alerts/rules/wallet-slo', {
      kind: 'burn-rate',
      service: 'wallet',
      resource: 'wallet.pay',
      objective: 0.99,
      windowSeconds: 8,
      shortWindowSeconds: 2,
      threshold: 10,
      webhook: webhookUrl,
    });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(hooksOf('wallet-slo').length, 0, 'no alert while every call succeeds');
    failEvery = 3; // a third fails: burn rate 33
    await waitFor('the metrics burn-rate alert', () => hooksOf('wallet-slo').length >= 1);
    const fired = hooksOf('wallet-slo')[0]!;
    assert.equal(fired.state, 'fired');
    assert.equal(fired.details.source as unknown, 'metrics');
    assert.ok(fired.value > 10 && fired.value <= 34, `long burn ${fired.value}`);
    failEvery = 0;
    await waitFor('the resolved metrics alert', () => hooksOf('wallet-slo').length >= 2);
    assert.equal(hooksOf('wallet-slo')[1]?.state, 'resolved');
  });

  it('peak alert: create, list, events and delete from the CLI', async () => {
    const env = { PEAK_SERVER: server.info.url, PEAK_TOKEN: server.info.adminToken! };
    const set = await runPeak(
      [
        'alert',
        'set',
        'cli-lag',
        '--kind',
        'mq-backlog',
        '--group',
        'g1',
        '--topic',
        'alert-orders',
        '--threshold',
        '5',
        '--for',
        '60',
        '--json',
      ],
      env,
    );
    assert.equal(set.code, 0, set.stderr);
    assert.equal(JSON.parse(set.stdout).rule.group, 'g1');
    const bad = await runPeak(['alert', 'set', 'x', '--kind', 'burn-rate', '--service', 's'], env);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /objective/);
    const list = await runPeak(['alert', 'list'], env);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /cli-lag\s+mq-backlog/);
    const events = await runPeak(['alert', 'events', '--rule', 'billing-lag', '--json'], env);
    assert.equal(events.code, 0, events.stderr);
    assert.equal(JSON.parse(events.stdout).events.length, 2);
    const del = await runPeak(['alert', 'delete', 'cli-lag'], env);
    assert.equal(del.code, 0, del.stderr);
    const gone = await runPeak(['alert', 'delete', 'cli-lag'], env);
    assert.notEqual(gone.code, 0);
    assert.match(gone.stderr, /no alert rule 'cli-lag'/);
  });
});
