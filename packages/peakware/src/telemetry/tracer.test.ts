import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createContext, currentContext, runWithContext } from '../core/context.js';
import { PeakError } from '../core/errors.js';
import type { SpanRecord } from './span-types.js';
import { Tracer, traceIdRatio } from './tracer.js';

function collect() {
  const spans: SpanRecord[] = [];
  return { spans, sink: { add: (s: SpanRecord) => spans.push(s) } };
}

describe('Tracer', () => {
  it('nests spans as child contexts of the current one and records timing and attributes', async () => {
    const { spans, sink } = collect();
    const tracer = new Tracer({ service: 'order', sink });
    await tracer.trace('outer', async (outer) => {
      assert.equal(currentContext()?.spanId, outer.context.spanId);
      await tracer.trace(
        'sql',
        async (span) => {
          span.setAttribute('db.rows', 3);
          await new Promise((r) => setTimeout(r, 5));
        },
        { kind: 'client', attributes: { 'db.shard': 'order_01' } },
      );
    });
    assert.equal(spans.length, 2);
    const [inner, outer] = spans as [SpanRecord, SpanRecord];
    assert.equal(inner.traceId, outer.traceId);
    assert.equal(inner.parentSpanId, outer.spanId);
    assert.equal(outer.parentSpanId, undefined);
    assert.equal(inner.kind, 'client');
    assert.deepEqual(inner.attributes, { 'db.shard': 'order_01', 'db.rows': 3 });
    assert.ok(inner.durationUs >= 4000, `duration ${inner.durationUs}`);
    assert.ok(outer.startUs <= inner.startUs);
    assert.equal(outer.service, 'order');
  });

  it('records an after-the-fact span as a child of its parent, or as a root outside any; unkept ones build nothing', () => {
    const { spans, sink } = collect();
    const all = new Tracer({ service: 'inventory', sink });
    const parent = createContext();
    runWithContext(parent, () => all.recordSpan('redis get', { startUs: 1, durationUs: 40 }));
    all.recordSpan('orphan', { startUs: 1, durationUs: 40 });
    const [child, root] = spans as [SpanRecord, SpanRecord];
    assert.equal(child.traceId, parent.traceId);
    assert.equal(child.parentSpanId, parent.spanId);
    assert.notEqual(child.spanId, parent.spanId);
    assert.match(root.traceId, /^[0-9a-f]{32}$/);
    assert.notEqual(root.traceId, parent.traceId);
    assert.equal(root.parentSpanId, undefined);

    // Sampled out: a fast, successful span is not kept and its name is never built; a failed
    // one is kept whatever the ratio (the tail budget), in its parent's trace.
    spans.length = 0;
    const none = new Tracer({ service: 'inventory', sink, sampleRatio: 0 });
    let named = 0;
    const name = () => {
      named++;
      return 'redis get';
    };
    none.recordSpan(name, { startUs: 1, durationUs: 40, parent });
    assert.equal(spans.length, 0);
    assert.equal(named, 0);
    assert.equal(none.unsampled, 1);
    none.recordSpan(name, { startUs: 1, durationUs: 40, parent, error: 'timed out' });
    assert.equal(spans.length, 1);
    assert.equal(spans[0]!.traceId, parent.traceId);
    assert.equal(spans[0]!.errorMessage, 'timed out');
  });

  it('records a thrown error with its code and rethrows it', async () => {
    const { spans, sink } = collect();
    const tracer = new Tracer({ service: 'order', sink });
    await assert.rejects(
      tracer.trace('fail', () => {
        throw new PeakError('PEAK_INTERNAL', 'boom');
      }),
      /boom/,
    );
    assert.equal(spans[0]?.error, true);
    assert.match(spans[0]?.errorMessage ?? '', /PEAK_INTERNAL: boom/);
  });

  it('samples by trace id ratio but always keeps errors and slow spans', async () => {
    const { spans, sink } = collect();
    const tracer = new Tracer({ service: 's', sink, sampleRatio: 0.25, slowMs: 20 });
    let expected = 0;
    for (let i = 0; i < 400; i++) {
      const ctx = createContext();
      if (traceIdRatio(ctx.traceId) < 0.25) expected++;
      runWithContext(ctx, () => tracer.startSpan('fast').end());
    }
    assert.equal(spans.length, expected);
    assert.ok(expected > 40 && expected < 160, `about a quarter kept, got ${expected}`);
    assert.equal(tracer.unsampled, 400 - expected);
    // An unsampled trace (ratio 0 for this tracer) still keeps its error and slow spans.
    const none = new Tracer({ service: 's', sink, sampleRatio: 0, slowMs: 20 });
    spans.length = 0;
    none.startSpan('fast').end();
    none.startSpan('failed').recordError(new Error('x')).end();
    await none.trace('slow', () => new Promise((r) => setTimeout(r, 30)));
    assert.deepEqual(
      spans.map((s) => s.name),
      ['failed', 'slow'],
    );
  });

  it('keeps at most tailSpansPerSecond failed or slow spans of unsampled traces, and every sampled one', () => {
    const { spans, sink } = collect();
    const tracer = new Tracer({ service: 's', sink, sampleRatio: 0, tailSpansPerSecond: 10 });
    for (let i = 0; i < 500; i++) tracer.startSpan('failed').recordError(new Error('x')).end();
    // 500 spans end within a second or two: 10 kept per second they span.
    assert.ok(spans.length >= 10 && spans.length <= 20, `kept ${spans.length}`);
    assert.equal(tracer.tailDropped, 500 - spans.length);
    spans.length = 0;
    const all = new Tracer({ service: 's', sink, sampleRatio: 1, tailSpansPerSecond: 0 });
    for (let i = 0; i < 50; i++) all.startSpan('failed').recordError(new Error('x')).end();
    assert.equal(spans.length, 50, 'head-sampled spans are not limited by the tail budget');
    assert.throws(
      () => new Tracer({ service: 's', sink, tailSpansPerSecond: -1 }),
      /tailSpansPerSecond must be 0 or more/,
    );
  });

  it('respects an upstream sampled=false flag and is a no-op when disabled', () => {
    const { spans, sink } = collect();
    const tracer = new Tracer({ service: 's', sink });
    runWithContext(createContext({ sampled: false }), () => tracer.startSpan('x').end());
    assert.equal(spans.length, 0);
    const off = new Tracer({ service: 's', sink, enabled: false });
    off.startSpan('x').recordError(new Error('y')).end();
    assert.equal(spans.length, 0);
  });

  it('rejects a bad ratio with a clear message', () => {
    assert.throws(
      () => new Tracer({ service: 's', sink: { add() {} }, sampleRatio: 2 }),
      /between 0 and 1/,
    );
  });
});
