/**
 * The cost of full-link tracing on RPC: the same echo method, provider in a child process
 * and consumer in this one over loopback, with the same calls in flight, in three modes:
 *
 * - off: no tracing filters
 * - traced-100%: `rpcTracingFilter` on both sides, every trace sampled, every span (a
 *   client and a server span per call) queued in a `BatchSpanProcessor` and exported as
 *   JSON in batches of 512 (the exporter serialises the batch, as the control-plane
 *   exporter does, and drops the text so the collector's work is not charged here)
 * - traced-10%: the same with `sampleRatio: 0.1` (errors and slow calls would still be kept)
 * - otel-100%: the OpenTelemetry JS SDK tracer doing the same work: an RpcFilter that
 *   starts and ends a client/server span per call (parent from the call context) on a
 *   BasicTracerProvider with its BatchSpanProcessor (same queue and batch sizes), the
 *   exporter serialising each batch with the OTLP JSON serializer and dropping it
 *
 * Calls/s and CPU µs per call (client + server processes, from /proc) are medians of
 * interleaved runs; the claim is traced/off.
 */
import {
  context as otelContext,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  trace,
} from '@opentelemetry/api';
import { JsonTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor as OtelBatchSpanProcessor,
  type SpanExporter as OtelSpanExporter,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { InMemoryRegistry } from 'peakware/registry';
import { RpcClient, type RpcFilter, RpcServer } from 'peakware/rpc';
import {
  BatchSpanProcessor,
  rpcTracingFilter,
  type SpanExporter,
  Tracer,
} from 'peakware/telemetry';
import { type Benchmark, median, round } from '../bench.js';
import { processCpuUs, startChildServer } from '../child-server.js';
import { echoService } from '../echo-service.js';

type Mode = 'off' | 'traced-100' | 'traced-10' | 'otel-100';
const MODES: Mode[] = ['off', 'traced-100', 'traced-10', 'otel-100'];
const RATIO: Record<Mode, number> = { off: 0, 'traced-100': 1, 'traced-10': 0.1, 'otel-100': 1 };

/** OTel exporter that serialises each batch as OTLP JSON and drops it, counting spans. */
class OtelSerializingExporter implements OtelSpanExporter {
  spans = 0;
  export(spans: ReadableSpan[], done: (result: { code: 0 }) => void): void {
    JsonTraceSerializer.serializeRequest(spans);
    this.spans += spans.length;
    done({ code: 0 });
  }
  async shutdown(): Promise<void> {}
}

/** The same RPC filter written against the OpenTelemetry API and SDK. */
function otelFilter(service: string): RpcFilter {
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': service }),
    spanProcessors: [
      new OtelBatchSpanProcessor(new OtelSerializingExporter(), {
        maxQueueSize: 16384,
        maxExportBatchSize: 512,
        scheduledDelayMillis: 200,
      }),
    ],
  });
  const tracer = provider.getTracer('peakware-bench');
  return async (invocation, next) => {
    const c = invocation.context;
    const parent =
      c.parentSpanId === undefined
        ? ROOT_CONTEXT
        : trace.setSpanContext(ROOT_CONTEXT, {
            traceId: c.traceId,
            spanId: c.parentSpanId,
            traceFlags: TraceFlags.SAMPLED,
            isRemote: invocation.side === 'provider',
          });
    const span = tracer.startSpan(
      `${invocation.service}.${invocation.method}`,
      {
        kind: invocation.side === 'consumer' ? SpanKind.CLIENT : SpanKind.SERVER,
        attributes: {
          'rpc.system': 'peakware',
          'rpc.service': invocation.service,
          'rpc.method': invocation.method,
        },
      },
      parent,
    );
    try {
      return await otelContext.with(trace.setSpan(parent, span), next);
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: String(err) });
      throw err;
    } finally {
      span.end();
    }
  };
}

/** Serialises each batch like a real exporter and keeps only counts. */
class SerializingExporter implements SpanExporter {
  bytes = 0;
  spans = 0;
  async export(spans: readonly unknown[]): Promise<void> {
    this.bytes += JSON.stringify({ spans }).length;
    this.spans += spans.length;
  }
}

function tracing(mode: Mode, service: string) {
  if (mode === 'off')
    return { filters: [] as RpcFilter[], processor: undefined, exporter: undefined };
  if (mode === 'otel-100') {
    return { filters: [otelFilter(service)], processor: undefined, exporter: undefined };
  }
  const exporter = new SerializingExporter();
  const processor = new BatchSpanProcessor({
    exporter,
    maxQueueSize: 16384,
    maxBatchSize: 512,
    flushIntervalMs: 200,
  });
  const tracer = new Tracer({ service, sink: processor, sampleRatio: RATIO[mode] });
  return { filters: [rpcTracingFilter(tracer)], processor, exporter };
}

async function measure(
  call: (n: number) => Promise<unknown>,
  inFlight: number,
  ms: number,
  maxCalls: number,
) {
  let done = 0;
  let ok = 0;
  const started = performance.now();
  const end = started + ms;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (done < maxCalls && performance.now() < end) {
        const n = done++;
        await call(n).then(
          () => ok++,
          () => undefined,
        );
      }
    }),
  );
  return { calls: ok, errors: done - ok, seconds: (performance.now() - started) / 1000 };
}

export const benchmark: Benchmark = {
  name: 'telemetry',
  description:
    'echo RPC over loopback (provider in a child process), tracing off vs rpcTracingFilter on both sides at 100% and 10% sampling with batched export',
  async run({ runs, quick, progress }) {
    const inFlight = 100;
    const ms = quick ? 1000 : 3000;
    const maxCalls = quick ? 200_000 : 1_000_000;
    const results = Object.fromEntries(
      MODES.map((m) => [
        m,
        { callsPerSec: [] as number[], cpuUs: [] as number[], spans: 0, dropped: 0, errors: 0 },
      ]),
    ) as Record<
      Mode,
      { callsPerSec: number[]; cpuUs: number[]; spans: number; dropped: number; errors: number }
    >;
    for (let run = 0; run < runs; run++) {
      for (const mode of MODES) {
        progress(`run ${run + 1}/${runs}: ${mode}`);
        const { child, port } = await startChildServer(import.meta.url, [mode], mode);
        const registry = new InMemoryRegistry();
        await registry.register({
          instanceId: 'bench',
          service: echoService.name,
          version: echoService.version,
          group: echoService.group,
          host: '127.0.0.1',
          port,
          weight: 100,
          tags: [],
          metadata: {},
        });
        const t = tracing(mode, 'bench-client');
        const client = new RpcClient({
          registry,
          warmupMs: 0,
          timeoutMs: 10_000,
          filters: t.filters,
        });
        const echo = client.service(echoService);
        const call = (n: number) => echo.echo({ n, s: 'hello' });
        try {
          await measure(call, inFlight, quick ? 300 : 1000, maxCalls); // warm-up
          const cpu0 = process.cpuUsage();
          const server0 = processCpuUs(child.pid);
          const r = await measure(call, inFlight, ms, maxCalls);
          const cpu = process.cpuUsage(cpu0);
          const serverCpu = processCpuUs(child.pid) - server0;
          results[mode].callsPerSec.push(r.calls / r.seconds);
          results[mode].cpuUs.push((cpu.user + cpu.system + serverCpu) / Math.max(1, r.calls));
          results[mode].errors += r.errors;
          if (t.processor !== undefined) {
            await t.processor.flush();
            const s = t.processor.stats();
            results[mode].spans += s.exported;
            results[mode].dropped += s.droppedFull + s.droppedExport;
          }
        } finally {
          await client.close().catch(() => undefined);
          child.kill('SIGKILL');
        }
      }
    }
    const figures: Record<string, number> = {};
    const table: (string | number)[][] = [
      ['mode', 'calls/s', 'CPU µs/call', 'client spans exported', 'client spans dropped', 'errors'],
    ];
    for (const mode of MODES) {
      const r = results[mode];
      figures[`${mode}.callsPerSec`] = round(median(r.callsPerSec));
      figures[`${mode}.cpuUsPerCall`] = round(median(r.cpuUs));
      table.push([
        mode,
        round(median(r.callsPerSec)),
        round(median(r.cpuUs)),
        r.spans,
        r.dropped,
        r.errors,
      ]);
    }
    const off = median(results.off.callsPerSec);
    const offCpu = median(results.off.cpuUs);
    const ratios: Record<string, number> = {
      'traced-100/off.callsPerSec': round(median(results['traced-100'].callsPerSec) / off),
      'traced-10/off.callsPerSec': round(median(results['traced-10'].callsPerSec) / off),
      'traced-100/off.cpuPerCall': round(median(results['traced-100'].cpuUs) / offCpu),
      'traced-10/off.cpuPerCall': round(median(results['traced-10'].cpuUs) / offCpu),
      'otel-100/off.callsPerSec': round(median(results['otel-100'].callsPerSec) / off),
      'otel-100/off.cpuPerCall': round(median(results['otel-100'].cpuUs) / offCpu),
      'traced-100/otel-100.cpuPerCall': round(
        median(results['traced-100'].cpuUs) / median(results['otel-100'].cpuUs),
      ),
    };
    table.push([]);
    for (const [k, v] of Object.entries(ratios)) table.push([k, v]);
    return {
      figures,
      ratios,
      table,
      notes: [
        `${inFlight} calls in flight, closed loop, ${ms} ms per run after a warm-up, modes interleaved; provider in its own child process, traced the same way as the consumer`,
        'the exporter JSON-serialises each batch of 512 and discards it (the collector is not charged); spans dropped would mean the queue (16,384) overflowed',
        'CPU µs/call = user + system CPU of both processes per call (Linux /proc); steadier than calls/s on a shared machine',
        'otel-100: @opentelemetry/sdk-trace-base 2.7.0 BasicTracerProvider + BatchSpanProcessor (no context manager registered; the filter passes contexts explicitly), OTLP JSON serializer from @opentelemetry/otlp-transformer 0.215.0',
      ],
    };
  },
};

if (process.argv[2] === '--serve') {
  const mode = process.argv[3] as Mode;
  if (!MODES.includes(mode)) {
    process.stderr.write(`unknown mode ${mode}\n`);
    process.exit(2);
  }
  const server = new RpcServer({ port: 0, filters: tracing(mode, 'bench-server').filters });
  server.addService(echoService, { echo: (input) => input });
  process.stdout.write(`${(await server.start()).port}\n`);
}
