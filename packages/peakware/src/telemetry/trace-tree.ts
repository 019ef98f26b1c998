/**
 * A trace's spans as a tree (children under their parent, ordered by start) and its
 * critical path: from the root, repeatedly the child that finished last, i.e. the chain of
 * spans the trace's end time waited on (the spans to make faster first).
 */
import type { SpanRecord } from './span-types.js';

/** One span in a tree, with its children. */
export interface TraceNode {
  span: SpanRecord;
  /** Child spans, by start time. */
  children: TraceNode[];
  /** Microseconds of this span not covered by any child (its own work). */
  selfUs: number;
}

/** A trace as a forest (several roots when a parent span was lost or not sampled). */
export interface TraceTree {
  traceId: string;
  roots: TraceNode[];
  /** Span ids on the critical path of the longest root, root first. */
  criticalPath: string[];
  /** From the first start to the last end, microseconds. */
  durationUs: number;
  /** Services that took part. */
  services: string[];
  spanCount: number;
  errorCount: number;
}

function selfTime(node: TraceNode): number {
  const s = node.span;
  const end = s.startUs + s.durationUs;
  // Union of children intervals clipped to the span.
  const ivs = node.children
    .map(
      (c) =>
        [
          Math.max(s.startUs, c.span.startUs),
          Math.min(end, c.span.startUs + c.span.durationUs),
        ] as const,
    )
    .filter(([a, b]) => b > a)
    .sort((x, y) => x[0] - y[0]);
  let covered = 0;
  let curA = -1;
  let curB = -1;
  for (const [a, b] of ivs) {
    if (a > curB) {
      covered += curB - curA;
      curA = a;
      curB = b;
    } else if (b > curB) curB = b;
  }
  covered += curB - curA;
  return Math.max(0, s.durationUs - covered);
}

/** Builds the tree and critical path of one trace's spans (any order). */
export function buildTraceTree(spans: readonly SpanRecord[]): TraceTree {
  const nodes = new Map<string, TraceNode>();
  for (const span of spans) nodes.set(span.spanId, { span, children: [], selfUs: 0 });
  const roots: TraceNode[] = [];
  for (const node of nodes.values()) {
    const parent =
      node.span.parentSpanId === undefined ? undefined : nodes.get(node.span.parentSpanId);
    if (parent === undefined || parent === node) roots.push(node);
    else parent.children.push(node);
  }
  const byStart = (a: TraceNode, b: TraceNode) => a.span.startUs - b.span.startUs;
  roots.sort(byStart);
  for (const node of nodes.values()) {
    node.children.sort(byStart);
    node.selfUs = selfTime(node);
  }
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  for (const s of spans) {
    first = Math.min(first, s.startUs);
    last = Math.max(last, s.startUs + s.durationUs);
  }
  const criticalPath: string[] = [];
  let at = roots.reduce<TraceNode | undefined>(
    (best, r) => (best === undefined || r.span.durationUs > best.span.durationUs ? r : best),
    undefined,
  );
  const seen = new Set<string>();
  while (at !== undefined && !seen.has(at.span.spanId)) {
    seen.add(at.span.spanId);
    criticalPath.push(at.span.spanId);
    at = at.children.reduce<TraceNode | undefined>(
      (best, c) =>
        best === undefined ||
        c.span.startUs + c.span.durationUs > best.span.startUs + best.span.durationUs
          ? c
          : best,
      undefined,
    );
  }
  return {
    traceId: spans[0]?.traceId ?? '',
    roots,
    criticalPath,
    durationUs: spans.length === 0 ? 0 : last - first,
    services: [...new Set(spans.map((s) => s.service))].sort(),
    spanCount: spans.length,
    errorCount: spans.filter((s) => s.error).length,
  };
}
