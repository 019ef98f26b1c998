/**
 * telemetry: spans on the call context, batched to the control plane's collector, read
 * back as one trace tree with its critical path (what `peak trace <id>` prints).
 *
 *   PEAK_SERVER=http://127.0.0.1:7420 node dist/telemetry/trace.js
 */
import { currentContext } from 'peakware/core';
import {
  BatchSpanProcessor,
  ControlPlaneSpanExporter,
  Tracer,
  type TraceTree,
} from 'peakware/telemetry';
import { admin, check, server } from '../env.js';

const processor = new BatchSpanProcessor({
  exporter: new ControlPlaneSpanExporter({ servers: server }),
});
const tracer = new Tracer({ service: 'snippet.order', sink: processor });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let traceId = '';
await tracer.trace(
  'POST /orders',
  async () => {
    traceId = currentContext()!.traceId;
    await tracer.trace('reserve stock', () => sleep(20), {
      kind: 'client',
      peerService: 'snippet.inventory',
    });
    await tracer.trace('INSERT t_order', () => sleep(5), {
      kind: 'client',
      peerService: 'postgres',
      attributes: { 'db.statement.fingerprint': 'INSERT INTO t_order VALUES (?, ?)' },
    });
  },
  { kind: 'server' },
);
await processor.flush();

const tree: TraceTree = await admin().telemetry.trace(traceId);
console.log(`trace ${tree.traceId}: ${tree.spanCount} spans, ${tree.durationUs} µs`);
const show = (nodes: TraceTree['roots'], depth: number): void => {
  for (const n of nodes) {
    const onPath = tree.criticalPath.includes(n.span.spanId) ? '*' : ' ';
    console.log(`${onPath} ${'  '.repeat(depth)}${n.span.name} ${n.span.durationUs} µs`);
    show(n.children, depth + 1);
  }
};
show(tree.roots, 0);
check(tree.spanCount === 3, 'three spans in one trace');
check(tree.roots.length === 1 && tree.roots[0]!.children.length === 2, 'one root, two children');
await processor.shutdown();
console.log('ok');
