/**
 * Telemetry for every process of the chain: spans go, batched and bounded (a full buffer
 * drops and counts, never blocks a buy), to the control plane's collector, where
 * `peak trace <id>` and the topology API read them; guard's per-second figures of every
 * resource (pass, block, success, error, RT, concurrency) are pushed there too, where
 * `peak top`, the shop's report and the SLA alert rules read them.
 */
import type { Guard } from 'peakware/guard';
import {
  BatchSpanProcessor,
  ControlPlaneSpanExporter,
  MetricsPusher,
  Tracer,
} from 'peakware/telemetry';

/** A process's tracer and metrics pusher, and how to flush both at shutdown. */
export interface ShopTelemetry {
  tracer: Tracer;
  metrics: MetricsPusher;
  /** Sends what is buffered and stops. */
  close(): Promise<void>;
}

/** Tracing and per-second metrics of `guard`'s resources for `service`, to the control plane. */
export function shopTelemetry(service: string, controlPlane: string, guard: Guard): ShopTelemetry {
  const processor = new BatchSpanProcessor({
    exporter: new ControlPlaneSpanExporter({ server: controlPlane }),
  });
  // Every trace is kept: a flash sale on a laptop is small; at scale, sample (sampleRatio).
  const tracer = new Tracer({ service, sink: processor, sampleRatio: 1, slowMs: 500 });
  const metrics = new MetricsPusher({ server: controlPlane, service });
  const onMetrics = (seconds: Parameters<MetricsPusher['record']>[0]) => metrics.record(seconds);
  guard.on('metrics', onMetrics);
  return {
    tracer,
    metrics,
    close: async () => {
      guard.off('metrics', onMetrics);
      await Promise.all([metrics.close(), processor.shutdown()]);
    },
  };
}
