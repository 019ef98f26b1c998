import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fromOtlpJson, toOtlpJson } from './otlp-json.js';
import type { SpanRecord } from './span-types.js';
import { buildTraceTree } from './trace-tree.js';

const base: SpanRecord = {
  traceId: '0af7651916cd43dd8448eb211c80319c',
  spanId: 'b7ad6b7169203331',
  name: 'GET /order',
  kind: 'server',
  service: 'gateway',
  startUs: 1_700_000_000_000_000,
  durationUs: 10_000,
  error: false,
  stress: false,
  attributes: { 'http.method': 'GET' },
};

describe('OTLP JSON', () => {
  it('round-trips span records', () => {
    const child: SpanRecord = {
      ...base,
      spanId: '00f067aa0ba902b7',
      parentSpanId: base.spanId,
      kind: 'client',
      name: 'order.create',
      peerService: 'order',
      error: true,
      errorMessage: 'timeout',
      stress: true,
      startUs: base.startUs + 1000,
      durationUs: 5000,
      attributes: { 'db.rows': 3, ratio: 0.5, ok: true },
    };
    const back = fromOtlpJson(JSON.parse(JSON.stringify(toOtlpJson([base, child]))));
    assert.deepEqual(back[0], base);
    assert.deepEqual(back[1], {
      ...child,
      attributes: { ...child.attributes, 'peak.stress': true, 'peer.service': 'order' },
    });
  });

  it('accepts base64 ids and string kinds, and rejects bad spans clearly', () => {
    const body = {
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'otel-svc' } }] },
          scopeSpans: [
            {
              spans: [
                {
                  traceId: Buffer.from(base.traceId, 'hex').toString('base64'),
                  spanId: Buffer.from(base.spanId, 'hex').toString('base64'),
                  name: 'x',
                  kind: 'SPAN_KIND_CLIENT',
                  startTimeUnixNano: '1700000000000000000',
                  endTimeUnixNano: '1700000000002000000',
                  status: { code: 'STATUS_CODE_ERROR', message: 'bad' },
                },
              ],
            },
          ],
        },
      ],
    };
    const [s] = fromOtlpJson(body);
    assert.equal(s?.traceId, base.traceId);
    assert.equal(s?.kind, 'client');
    assert.equal(s?.durationUs, 2000);
    assert.equal(s?.error, true);
    assert.equal(s?.service, 'otel-svc');
    assert.throws(() => fromOtlpJson({}), /resourceSpans/);
    const broken = structuredClone(body);
    (broken.resourceSpans[0]!.scopeSpans[0]!.spans[0] as { traceId: string }).traceId = 'xyz';
    assert.throws(() => fromOtlpJson(broken), /traceId must be 32 hex/);
  });
});

describe('buildTraceTree', () => {
  it('nests children and follows the latest-ending child for the critical path', () => {
    const root = { ...base, durationUs: 100 };
    const a = {
      ...base,
      spanId: 'a'.repeat(16),
      parentSpanId: root.spanId,
      startUs: base.startUs + 5,
      durationUs: 20,
    };
    const b = {
      ...base,
      spanId: 'b'.repeat(16),
      parentSpanId: root.spanId,
      startUs: base.startUs + 10,
      durationUs: 80,
    };
    const c = {
      ...base,
      spanId: 'c'.repeat(16),
      parentSpanId: b.spanId,
      startUs: base.startUs + 20,
      durationUs: 30,
      service: 'inv',
    };
    const orphan = {
      ...base,
      spanId: 'd'.repeat(16),
      parentSpanId: 'e'.repeat(16),
      startUs: base.startUs + 1,
      durationUs: 10,
    };
    const tree = buildTraceTree([c, orphan, b, a, root]);
    assert.equal(tree.roots.length, 2);
    assert.deepEqual(
      tree.roots[0]?.children.map((n) => n.span.spanId),
      [a.spanId, b.spanId],
    );
    assert.deepEqual(tree.criticalPath, [root.spanId, b.spanId, c.spanId]);
    assert.equal(tree.roots[0]?.selfUs, 100 - 85, 'root covered by a ∪ b = [5, 90)');
    assert.deepEqual(tree.services, ['gateway', 'inv']);
    assert.equal(tree.spanCount, 5);
  });
});
