import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SlidingWindow } from '../core/sliding-window.js';
import { formatPrometheus, processMetrics } from './prometheus-format.js';
import { parsePrometheusText } from './prometheus-parser.js';
import { ServiceMetrics } from './service-metrics.js';

describe('Prometheus text format', () => {
  it('writes what the strict parser accepts, escapes included', () => {
    const text = formatPrometheus([
      ...processMetrics(),
      {
        name: 'peak_x_total',
        help: 'A help with \\ and\nnewline.',
        type: 'counter',
        samples: [
          { labels: { resource: 'a"b\\c\nd' }, value: 3 },
          { labels: { resource: 'plain' }, value: 0 },
        ],
      },
      {
        name: 'peak_g',
        help: 'g',
        type: 'gauge',
        samples: [{ value: Number.NaN }, { value: Number.POSITIVE_INFINITY, labels: { a: '1' } }],
      },
    ]);
    const parsed = parsePrometheusText(text);
    assert.equal(parsed.types.get('peak_x_total'), 'counter');
    const x = parsed.samples.filter((s) => s.name === 'peak_x_total');
    assert.deepEqual(x[0]?.labels, { resource: 'a"b\\c\nd' });
    assert.equal(x[0]?.value, 3);
    assert.ok(
      parsed.samples.some((s) => s.name === 'process_resident_memory_bytes' && s.value > 0),
    );
  });

  it('rejects malformed exposition lines', () => {
    const bad = [
      'no_newline 1',
      '1bad 1\n',
      'm{a="1} 1\n',
      'm{a="\\x"} 1\n',
      'm{a="1",a="2"} 1\n',
      'm 1 2 3\n',
      'm abc\n',
      '# TYPE m wrong\n',
      '# TYPE m counter\nm -1\n',
      'm 1\n# TYPE m gauge\n',
      '# TYPE m gauge\n# TYPE m gauge\n',
      'a 1\nb 1\na 2\n',
    ];
    for (const text of bad)
      assert.throws(() => parsePrometheusText(text), /Prometheus text/, JSON.stringify(text));
    assert.throws(
      () => formatPrometheus([{ name: 'bad-name', help: '', type: 'gauge', samples: [] }]),
      /metric name/,
    );
  });

  it('ServiceMetrics renders guard seconds and live sliding windows', () => {
    const m = new ServiceMetrics({ service: 'order' });
    m.record([
      {
        resource: 'order.create',
        second: 1,
        pass: 5,
        block: 1,
        success: 4,
        error: 1,
        rtAvg: 3,
        concurrency: 2,
      },
    ]);
    m.record([
      {
        resource: 'order.create',
        second: 2,
        pass: 2,
        block: 0,
        success: 2,
        error: 0,
        rtAvg: 7,
        concurrency: 0,
      },
    ]);
    const w = new SlidingWindow();
    w.addComplete(5);
    w.addComplete(15, true);
    m.watchWindow('order.list', w);
    const parsed = parsePrometheusText(m.render());
    const get = (name: string, resource: string) =>
      parsed.samples.find((s) => s.name === name && s.labels.resource === resource)?.value;
    assert.equal(get('peak_resource_pass_total', 'order.create'), 7);
    assert.equal(get('peak_resource_error_total', 'order.create'), 1);
    assert.equal(get('peak_resource_rt_avg_seconds', 'order.create'), 0.007);
    assert.equal(get('peak_window_qps', 'order.list'), 2);
    assert.equal(get('peak_window_error_qps', 'order.list'), 1);
  });
});
