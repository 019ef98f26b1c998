/**
 * OTLP/HTTP protobuf ingest (what the Java, Go, Python and .NET SDKs send by default): the
 * official OpenTelemetry JS protobuf exporter (@opentelemetry/exporter-trace-otlp-proto)
 * sends spans over a real socket to a real peak server, plain and gzip; the spans are then
 * queryable like any others (trace by id with parent links, search by service, tag and
 * error, resource service.name, status). Malformed protobuf is a 400 with a
 * google.rpc.Status body naming the problem, and the server keeps serving.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { context, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { PeakServer } from '../src/server/index.js';
import { decodeRpcStatus } from '../src/telemetry/otlp-protobuf.js';
import type { TraceNode, TraceTree } from '../src/telemetry/trace-tree.js';
import { bearer, useLocalCredential } from './support/credentials.js';

type ExporterConfig = NonNullable<ConstructorParameters<typeof OTLPTraceExporter>[0]>;

interface Found {
  traceId: string;
  service: string;
  name: string;
  error: boolean;
}

/** Ends spans made by the official SDK into memory, to hand them to the exporter. */
function recordSpans(
  service: string,
  build: (tracer: ReturnType<BasicTracerProvider['getTracer']>) => void,
): ReadableSpan[] {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': service, 'service.version': '1.2.3' }),
    spanProcessors: [new SimpleSpanProcessor(memory)],
  });
  build(provider.getTracer('checkout-instrumentation', '0.1.0'));
  return memory.getFinishedSpans();
}

function exportWith(
  exporter: OTLPTraceExporter,
  spans: ReadableSpan[],
): Promise<{ code: number; error?: Error }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('OTLP export did not finish in 10 s')), 10_000);
    exporter.export(spans, (result) => {
      clearTimeout(timer);
      resolve(result);
    });
  });
}

function checkoutTrace(tracer: ReturnType<BasicTracerProvider['getTracer']>): string {
  const root: Span = tracer.startSpan('GET /checkout', {
    kind: SpanKind.SERVER,
    attributes: { 'http.route': '/checkout', 'order.id': 42, 'cart.total': 12.5, vip: true },
  });
  const parent = trace.setSpan(context.active(), root);
  const charge = tracer.startSpan(
    'payment.charge',
    {
      kind: SpanKind.CLIENT,
      attributes: { 'peer.service': 'payment', 'card.tags': ['visa', 'eu'] },
    },
    parent,
  );
  charge.setStatus({ code: SpanStatusCode.ERROR, message: 'card declined' });
  charge.end();
  const publish = tracer.startSpan('order-created send', { kind: SpanKind.PRODUCER }, parent);
  publish.end();
  root.setStatus({ code: SpanStatusCode.OK });
  root.end();
  return root.spanContext().traceId;
}

/** An ExportTraceServiceRequest of `n` minimal spans (trace_id and span_id only). */
function manySpans(n: number): Uint8Array {
  const spanMsg = Buffer.from([
    0x0a,
    0x10,
    ...Buffer.alloc(16, 1),
    0x12,
    0x08,
    ...Buffer.alloc(8, 2),
  ]);
  const oneSpan = Buffer.concat([Buffer.from([0x12, spanMsg.length]), spanMsg]);
  const scope = Buffer.concat(Array.from({ length: n }, () => oneSpan));
  const lenBytes = (v: number) => {
    const out: number[] = [];
    for (let x = v; ; x = Math.floor(x / 128)) {
      if (x < 128) return [...out, x];
      out.push((x % 128) | 0x80);
    }
  };
  const scopeField = Buffer.concat([Buffer.from([0x12, ...lenBytes(scope.length)]), scope]);
  return Buffer.concat([Buffer.from([0x0a, ...lenBytes(scopeField.length)]), scopeField]);
}

describe('OTLP/HTTP protobuf ingest from the official OpenTelemetry exporter', () => {
  let dataDir: string | undefined;
  let server: PeakServer | undefined;
  let url = '';

  const api = async <T>(p: string): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${url}${p}`, {
      headers: bearer(),
      signal: AbortSignal.timeout(10_000),
    });
    return { status: res.status, body: (await res.json()) as T };
  };
  const postProto = (body: Uint8Array, headers: Record<string, string> = {}) =>
    fetch(`${url}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf', ...bearer(), ...headers },
      body,
      signal: AbortSignal.timeout(10_000),
    });

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-otlp-proto-'));
    server = await PeakServer.start({ dataDir, port: 0 });
    useLocalCredential(server);
    url = server.info.url;
  });

  after(async () => {
    await server?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('stores what the exporter sends: tree, parents, status, attributes, resource service', async () => {
    let traceId = '';
    const spans = recordSpans('checkout-java', (tracer) => {
      traceId = checkoutTrace(tracer);
    });
    assert.equal(spans.length, 3);
    const exporter = new OTLPTraceExporter({ url: `${url}/v1/traces`, headers: bearer() });
    const result = await exportWith(exporter, spans);
    assert.equal(result.code, 0, `export failed: ${String(result.error)}`);
    await exporter.shutdown();

    const { status, body: tree } = await api<TraceTree>(`/api/v1/telemetry/traces/${traceId}`);
    assert.equal(status, 200);
    assert.equal(tree.spanCount, 3);
    assert.equal(tree.errorCount, 1);
    assert.deepEqual(tree.services, ['checkout-java']);
    assert.equal(tree.roots.length, 1);
    const root = tree.roots[0] as TraceNode;
    assert.equal(root.span.name, 'GET /checkout');
    assert.equal(root.span.kind, 'server');
    assert.equal(root.span.service, 'checkout-java');
    assert.equal(root.span.error, false);
    assert.equal(root.span.parentSpanId, undefined);
    assert.deepEqual(root.span.attributes, {
      'http.route': '/checkout',
      'order.id': 42,
      'cart.total': 12.5,
      vip: true,
    });
    const byName = new Map(root.children.map((c) => [c.span.name, c.span]));
    const charge = byName.get('payment.charge');
    assert.equal(charge?.parentSpanId, root.span.spanId);
    assert.equal(charge?.kind, 'client');
    assert.equal(charge?.error, true);
    assert.equal(charge?.errorMessage, 'card declined');
    assert.equal(charge?.peerService, 'payment');
    assert.equal(charge?.attributes['card.tags'], '["visa","eu"]');
    assert.equal(byName.get('order-created send')?.kind, 'producer');
    const original = spans.find((s) => s.name === 'payment.charge');
    assert.equal(charge?.spanId, original?.spanContext().spanId);
    const [s0, s1] = original?.startTime ?? [0, 0];
    assert.equal(charge?.startUs, s0 * 1e6 + Math.floor(s1 / 1000));

    const byService = await api<{ traces: Found[] }>(
      '/api/v1/telemetry/traces?service=checkout-java&tag=http.route=/checkout',
    );
    assert.deepEqual(
      byService.body.traces.map((t) => t.traceId),
      [traceId],
    );
    const errors = await api<{ traces: Found[] }>(
      '/api/v1/telemetry/traces?service=checkout-java&error=true',
    );
    assert.deepEqual(
      errors.body.traces.map((t) => t.traceId),
      [traceId],
    );
  });

  it('accepts gzip-compressed protobuf (the exporter with compression: gzip)', async () => {
    let traceId = '';
    const spans = recordSpans('billing-go', (tracer) => {
      traceId = checkoutTrace(tracer);
    });
    const exporter = new OTLPTraceExporter({
      url: `${url}/v1/traces`,
      headers: bearer(),
      // CompressionAlgorithm.GZIP of @opentelemetry/otlp-exporter-base (a string enum).
      compression: 'gzip' as ExporterConfig['compression'],
    });
    const result = await exportWith(exporter, spans);
    assert.equal(result.code, 0, `export failed: ${String(result.error)}`);
    await exporter.shutdown();
    const { body: tree } = await api<TraceTree>(`/api/v1/telemetry/traces/${traceId}`);
    assert.equal(tree.spanCount, 3);
    assert.deepEqual(tree.services, ['billing-go']);
  });

  it('answers an accepted protobuf request with an empty ExportTraceServiceResponse', async () => {
    const res = await postProto(new Uint8Array(0));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/x-protobuf');
    assert.equal((await res.arrayBuffer()).byteLength, 0);
  });

  it('rejects malformed protobuf with 400 and a google.rpc.Status, and keeps serving', async () => {
    const cases: [Uint8Array, Record<string, string>, RegExp][] = [
      // resource_spans (field 1) claims 5 bytes, 1 follows.
      [Uint8Array.from([0x0a, 0x05, 0x01]), {}, /malformed OTLP protobuf body: length 5 runs past/],
      // A span whose trace_id is 2 bytes.
      [
        Uint8Array.from([0x0a, 0x08, 0x12, 0x06, 0x12, 0x04, 0x0a, 0x02, 0xab, 0xcd]),
        {},
        /trace_id must be 16 bytes, got 2/,
      ],
      [
        Uint8Array.from([1, 2, 3, 4]),
        { 'content-encoding': 'gzip' },
        /gzip OTLP body does not decompress/,
      ],
      [gzipSync(Buffer.alloc(17 * 1024 * 1024)), { 'content-encoding': 'gzip' }, /inflates past/],
      [
        Uint8Array.from([0x0a, 0x00]),
        { 'content-encoding': 'br' },
        /content-encoding 'br' is not supported/,
      ],
      [manySpans(20_001), {}, /more than 20000 spans; send at most 20000 per request/],
    ];
    for (const [body, headers, pattern] of cases) {
      const res = await postProto(body, headers);
      assert.equal(res.status, 400, `status for ${pattern}`);
      assert.equal(res.headers.get('content-type'), 'application/x-protobuf');
      const status = decodeRpcStatus(new Uint8Array(await res.arrayBuffer()));
      assert.equal(status.code, 3, 'INVALID_ARGUMENT');
      assert.match(status.message, pattern);
    }
    const tooLarge = await postProto(new Uint8Array(16 * 1024 * 1024 + 1));
    assert.equal(tooLarge.status, 413);
    assert.match(
      decodeRpcStatus(new Uint8Array(await tooLarge.arrayBuffer())).message,
      /too large/i,
    );

    // The server still serves: health, a JSON error stays JSON, and a good export lands.
    assert.equal((await fetch(`${url}/health`, { signal: AbortSignal.timeout(5000) })).status, 200);
    const badJson = await fetch(`${url}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer() },
      body: '{"resourceSpans": [',
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(badJson.status, 400);
    assert.match(JSON.stringify(await badJson.json()), /OTLP body is not valid JSON/);
    let traceId = '';
    const spans = recordSpans('after-errors', (tracer) => {
      traceId = checkoutTrace(tracer);
    });
    const exporter = new OTLPTraceExporter({ url: `${url}/v1/traces`, headers: bearer() });
    assert.equal((await exportWith(exporter, spans)).code, 0);
    await exporter.shutdown();
    const { status } = await api<TraceTree>(`/api/v1/telemetry/traces/${traceId}`);
    assert.equal(status, 200);
  });

  it('accepts gzip JSON too (the same route, the same mapping)', async () => {
    const traceId = 'aa'.repeat(16);
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    const json = {
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'py-app' } }] },
          scopeSpans: [
            {
              spans: [
                {
                  traceId,
                  spanId: 'bb'.repeat(8),
                  name: 'job',
                  kind: 1,
                  startTimeUnixNano: String(nowNs),
                  endTimeUnixNano: String(nowNs + 5_000_000n),
                },
              ],
            },
          ],
        },
      ],
    };
    const res = await fetch(`${url}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip', ...bearer() },
      body: gzipSync(JSON.stringify(json)),
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(res.status, 200, await res.clone().text());
    assert.deepEqual(await res.json(), {});
    const { body: tree } = await api<TraceTree>(`/api/v1/telemetry/traces/${traceId}`);
    assert.equal(tree.roots[0]?.span.service, 'py-app');
    assert.equal(tree.roots[0]?.span.durationUs, 5000);
  });
});
