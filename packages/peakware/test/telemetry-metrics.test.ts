/**
 * A service's /metrics over a real socket: guard's per-second `metrics` events feed
 * ServiceMetrics (the MetricSink), a SlidingWindow is read live, and `serveMetrics` serves
 * text that promtool (Prometheus's own checker) and the strict exposition-format parser
 * accept, with the right counts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SlidingWindow } from '../src/core/sliding-window.js';
import { Guard } from '../src/guard/index.js';
import { parsePrometheusText, ServiceMetrics, serveMetrics } from '../src/telemetry/index.js';
import { waitFor } from './support/wait.js';
import { assertPromtoolAccepts } from './telemetry-promtool-check.js';

describe('service /metrics from guard and sliding windows', { timeout: 30_000 }, () => {
  it('serves guard pass/block counts and window figures in valid Prometheus text', async () => {
    const guard = new Guard({ rules: { flow: [{ resource: 'order.create', count: 3 }] } });
    const metrics = new ServiceMetrics({ service: 'order' });
    let reports = 0;
    guard.on('metrics', (s) => {
      reports++;
      metrics.record(s);
    });
    const window = new SlidingWindow();
    metrics.watchWindow('order.list', window);
    const endpoint = await serveMetrics(metrics);
    try {
      await sleep(1000 - (Date.now() % 1000) + 5); // start of a second: the limit is per second
      for (let i = 0; i < 5; i++) {
        try {
          guard.entry('order.create').exit();
        } catch {
          // blocked: counted by guard
        }
      }
      let text = '';
      await waitFor('the guard metrics on /metrics', async () => {
        const res = await fetch(endpoint.url, { signal: AbortSignal.timeout(5000) });
        assert.equal(res.status, 200);
        assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
        text = await res.text();
        return text.includes('peak_resource_block_total');
      });
      assert.ok(reports > 0, 'guard reported');
      // Window figures are live: what completed in the last second.
      window.addComplete(4);
      window.addComplete(8);
      text = await (await fetch(endpoint.url, { signal: AbortSignal.timeout(5000) })).text();
      assertPromtoolAccepts(text, "a service's /metrics");
      const parsed = parsePrometheusText(text);
      const value = (name: string, resource: string) =>
        parsed.samples.find((s) => s.name === name && s.labels.resource === resource)?.value;
      assert.equal(value('peak_resource_pass_total', 'order.create'), 3);
      assert.equal(value('peak_resource_block_total', 'order.create'), 2);
      assert.equal(value('peak_resource_success_total', 'order.create'), 3);
      assert.equal(parsed.types.get('peak_resource_pass_total'), 'counter');
      assert.equal(value('peak_window_rt_avg_seconds', 'order.list'), 0.006);
      const notFound = await fetch(endpoint.url.replace('/metrics', '/other'));
      assert.equal(notFound.status, 404);
    } finally {
      guard.close();
      await endpoint.close();
    }
  });
});
