import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SpanRecord } from './span-types.js';
import { buildTraceTree, type TraceNode } from './trace-tree.js';

const TRACE = '0af7651916cd43dd8448eb211c80319c';

/** A span of `TRACE`: id, parent, start and duration in µs, service. */
function span(
  spanId: string,
  parentSpanId: string | undefined,
  startUs: number,
  durationUs: number,
  service = 'shop',
  error = false,
): SpanRecord {
  return {
    traceId: TRACE,
    spanId,
    ...(parentSpanId === undefined ? {} : { parentSpanId }),
    name: `op-${spanId}`,
    kind: parentSpanId === undefined ? 'server' : 'client',
    service,
    startUs,
    durationUs,
    error,
    stress: false,
    attributes: {},
  };
}

/** The tree as nested ids, for comparing shapes. */
function shape(node: TraceNode): unknown {
  return node.children.length === 0
    ? node.span.spanId
    : { [node.span.spanId]: node.children.map(shape) };
}

describe('buildTraceTree', () => {
  // order (0-100): cart (10-30), then pay (40-95) which calls bank (50-90); stock (35-60)
  // runs beside pay. The trace's end waits on order → pay → bank.
  const spans = [
    span('bank', 'pay', 50, 40, 'bank'),
    span('stock', 'order', 35, 25, 'inventory', true),
    span('order', undefined, 0, 100, 'gateway'),
    span('pay', 'order', 40, 55, 'payment'),
    span('cart', 'order', 10, 20, 'cart'),
  ];

  it('puts children under their parent by start time, from spans in any order', () => {
    const tree = buildTraceTree(spans);
    assert.equal(tree.traceId, TRACE);
    assert.equal(tree.roots.length, 1);
    assert.deepEqual(shape(tree.roots[0]!), { order: ['cart', 'stock', { pay: ['bank'] }] });
    assert.equal(tree.spanCount, 5);
    assert.equal(tree.errorCount, 1);
    assert.equal(tree.durationUs, 100);
    assert.deepEqual(tree.services, ['bank', 'cart', 'gateway', 'inventory', 'payment']);
  });

  it('follows the child that finished last from the longest root: the critical path', () => {
    assert.deepEqual(buildTraceTree(spans).criticalPath, ['order', 'pay', 'bank']);
  });

  it("computes a span's own time as its duration minus the union of its children", () => {
    const tree = buildTraceTree(spans);
    const byId = new Map<string, TraceNode>();
    const walk = (n: TraceNode) => {
      byId.set(n.span.spanId, n);
      n.children.forEach(walk);
    };
    tree.roots.forEach(walk);
    // order's children cover 10-30 and 35-95 (stock and pay overlap): 80 of 100.
    assert.equal(byId.get('order')!.selfUs, 20);
    assert.equal(byId.get('pay')!.selfUs, 15);
    assert.equal(byId.get('bank')!.selfUs, 40);
  });

  it('clips children that run past their parent (async work) to the parent', () => {
    const tree = buildTraceTree([
      span('send', undefined, 0, 10),
      span('consume', 'send', 5, 100),
      span('early', 'send', -20, 22),
    ]);
    // consume covers 5-10 of the parent, early 0-2: 3 µs of the parent's own.
    assert.equal(tree.roots[0]!.selfUs, 3);
    assert.equal(tree.durationUs, 125, 'the trace runs from the first start to the last end');
    assert.deepEqual(tree.criticalPath, ['send', 'consume']);
  });

  it('makes a root of a span whose parent is missing, and takes the longest root for the path', () => {
    const tree = buildTraceTree([
      span('a', undefined, 0, 30),
      span('orphan', 'lost-parent', 5, 80),
      span('orphan-child', 'orphan', 10, 20),
      span('self', 'self', 2, 1),
    ]);
    assert.deepEqual(tree.roots.map(shape), ['a', 'self', { orphan: ['orphan-child'] }]);
    assert.deepEqual(tree.criticalPath, ['orphan', 'orphan-child']);
  });

  it('returns an empty tree for no spans and ends on spans whose parents form a cycle', () => {
    assert.deepEqual(buildTraceTree([]), {
      traceId: '',
      roots: [],
      criticalPath: [],
      durationUs: 0,
      services: [],
      spanCount: 0,
      errorCount: 0,
    });
    const looped = buildTraceTree([span('x', 'y', 0, 5), span('y', 'x', 1, 3)]);
    assert.equal(looped.spanCount, 2);
    assert.deepEqual(looped.criticalPath, []);
  });
});
