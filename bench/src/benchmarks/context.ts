/**
 * One call hop of context propagation: decode the incoming headers, start a child span,
 * encode the outgoing headers. Peakware's `decodeContext` + `childContext` +
 * `encodeContext` (trace, deadline, caller, stress flag, route tags, baggage) against the
 * OpenTelemetry JS propagators doing their part of the same job (W3C traceparent + baggage
 * extract, a child span context with a new span id, inject).
 */
import {
  defaultTextMapGetter,
  defaultTextMapSetter,
  context as otelContext,
  propagation,
  ROOT_CONTEXT,
  trace,
} from '@opentelemetry/api';
import {
  CompositePropagator,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} from '@opentelemetry/core';
import { RandomIdGenerator } from '@opentelemetry/sdk-trace-base';
import { childContext, createContext, decodeContext, encodeContext } from 'peakware/core';
import { type Benchmark, median, round } from '../bench.js';

let sink = 0;

function peakwareHop(): () => void {
  const headers = encodeContext(
    createContext({
      callerApp: 'gateway',
      timeoutMs: 2000,
      tags: { canary: 'true' },
      baggage: { userId: '10086', region: 'hz' },
    }),
  );
  return () => {
    const out = encodeContext(childContext(decodeContext(headers)));
    sink += out.traceparent!.length;
  };
}

function otelHop(): () => void {
  const propagator = new CompositePropagator({
    propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()],
  });
  const ids = new RandomIdGenerator();
  const start = trace.setSpanContext(
    propagation.setBaggage(
      ROOT_CONTEXT,
      propagation.createBaggage({ userId: { value: '10086' }, region: { value: 'hz' } }),
    ),
    { traceId: ids.generateTraceId(), spanId: ids.generateSpanId(), traceFlags: 1 },
  );
  const headers: Record<string, string> = {};
  propagator.inject(start, headers, defaultTextMapSetter);
  return () => {
    const ctx = propagator.extract(otelContext.active(), headers, defaultTextMapGetter);
    const parent = trace.getSpanContext(ctx)!;
    const child = trace.setSpanContext(ctx, { ...parent, spanId: ids.generateSpanId() });
    const out: Record<string, string> = {};
    propagator.inject(child, out, defaultTextMapSetter);
    sink += out.traceparent!.length;
  };
}

/** ns per hop over `hops` hops or `maxMs`, whichever ends first. */
function measure(hop: () => void, hops: number, maxMs: number): number {
  const start = process.hrtime.bigint();
  const limit = BigInt(maxMs) * 1_000_000n;
  let done = 0;
  while (done < hops) {
    for (let i = 0; i < 1000; i++) hop();
    done += 1000;
    if (process.hrtime.bigint() - start > limit) break;
  }
  return Number(process.hrtime.bigint() - start) / done;
}

export const benchmark: Benchmark = {
  name: 'context',
  description:
    'one call hop of context propagation (decode headers, child span, encode): peakware vs OpenTelemetry W3C propagators',
  async run({ runs, quick, progress }) {
    const hops = quick ? 200_000 : 2_000_000;
    const maxMs = quick ? 1000 : 3000;
    const peak: number[] = [];
    const otel: number[] = [];
    measure(peakwareHop(), hops / 10, maxMs);
    measure(otelHop(), hops / 10, maxMs);
    for (let r = 0; r < runs; r++) {
      progress(`run ${r + 1}/${runs}`);
      if (r % 2 === 0) {
        peak.push(measure(peakwareHop(), hops, maxMs));
        otel.push(measure(otelHop(), hops, maxMs));
      } else {
        otel.push(measure(otelHop(), hops, maxMs));
        peak.push(measure(peakwareHop(), hops, maxMs));
      }
    }
    if (sink === -1) throw new Error('unreachable');
    const p = median(peak);
    const o = median(otel);
    const row = (name: string, xs: number[]) => [
      name,
      round(median(xs)),
      round(Math.min(...xs)),
      round(Math.max(...xs)),
    ];
    return {
      figures: { 'peakware.nsPerHop': round(p), 'otel.nsPerHop': round(o) },
      ratios: { 'otel/peakware.nsPerHop': round(o / p) },
      table: [
        ['implementation', 'ns/hop (median)', 'min', 'max'],
        row('peakware decode + child + encode', peak),
        row('OpenTelemetry extract + child + inject', otel),
      ],
      notes: [
        'Peakware carries more per hop: deadline (peak-timeout), caller, stress flag and route tags besides traceparent and baggage.',
        'A ratio above 1 means Peakware is faster.',
      ],
    };
  },
};
