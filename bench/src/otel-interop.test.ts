/**
 * The official OpenTelemetry JS SDK and OTLP/HTTP exporter (bench devDependencies) send
 * spans to a real peak server's `/v1/traces`; they come back from the trace API as one
 * tree (parent link, kind, error status, attributes) and from the topology API as an edge.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { PeakServer } from 'peakware/server';
import type { TraceTree } from 'peakware/telemetry';

describe('OpenTelemetry JS exporter → peak server collector', { timeout: 60_000 }, () => {
  let dataDir: string;
  let server: PeakServer;
  /** The local app's credential (every SDK grant), as a deployed exporter sends its app's. */
  let auth: Record<string, string>;

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-otel-'));
    server = await PeakServer.start({ dataDir, port: 0 });
    auth = { authorization: `Bearer ${server.credential()}` };
  });

  after(async () => {
    await server?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('accepts spans from OTLPTraceExporter and serves them by trace id and in the topology', async () => {
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': 'otel-app' }),
      spanProcessors: [
        new BatchSpanProcessor(
          new OTLPTraceExporter({ url: `${server.info.url}/v1/traces`, headers: auth }),
        ),
      ],
    });
    const tracer = provider.getTracer('interop');
    const root = tracer.startSpan('GET /checkout', {
      kind: SpanKind.SERVER,
      attributes: { 'http.route': '/checkout' },
    });
    const child = tracer.startSpan(
      'payment.charge',
      { kind: SpanKind.CLIENT, attributes: { 'peer.service': 'payment', retries: 2 } },
      trace.setSpan(context.active(), root),
    );
    child.setStatus({ code: SpanStatusCode.ERROR, message: 'card declined' });
    await new Promise((r) => setTimeout(r, 5));
    child.end();
    root.end();
    await provider.forceFlush();
    await provider.shutdown();

    const traceId = root.spanContext().traceId;
    const res = await fetch(`${server.info.url}/api/v1/telemetry/traces/${traceId}`, {
      headers: auth,
    });
    assert.equal(res.status, 200);
    const tree = (await res.json()) as TraceTree;
    assert.equal(tree.spanCount, 2);
    assert.equal(tree.errorCount, 1);
    const r = tree.roots[0];
    assert.equal(r?.span.name, 'GET /checkout');
    assert.equal(r?.span.kind, 'server');
    assert.equal(r?.span.service, 'otel-app');
    const c = r?.children[0]?.span;
    assert.equal(c?.parentSpanId, root.spanContext().spanId);
    assert.equal(c?.kind, 'client');
    assert.equal(c?.errorMessage, 'card declined');
    assert.equal(c?.attributes.retries, 2);
    assert.ok((c?.durationUs ?? 0) >= 4000);

    const topo = (await (
      await fetch(`${server.info.url}/api/v1/telemetry/topology`, { headers: auth })
    ).json()) as {
      edges: { caller: string; callee: string; calls: number; errors: number }[];
    };
    assert.deepEqual(
      topo.edges.map((e) => [e.caller, e.callee, e.calls, e.errors]),
      [['otel-app', 'payment', 1, 1]],
    );
  });
});
