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
export function shopTelemetry(
  service: string,
  controlPlane: string | readonly string[],
  guard: Guard,
  sampleRatio: number,
): ShopTelemetry {
  const processor = new BatchSpanProcessor({
    exporter: new ControlPlaneSpanExporter({ servers: controlPlane }),
  });
  // Head sampling by trace id (every hop agrees); failed and slow spans are kept whatever
  // the ratio, so a sampled-out order that goes wrong is still seen.
  const tracer = new Tracer({ service, sink: processor, sampleRatio, slowMs: 200 });
  // Under `peak supervise` (the --scale-demo), metrics carry the instance id it gives.
  const instance = process.env.PEAK_INSTANCE_ID;
  const metrics = new MetricsPusher({
    servers: controlPlane,
    service,
    ...(instance === undefined ? {} : { instance }),
  });
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

/** The trace sampling ratio the chain's processes were started with (SHOP_SAMPLE_RATIO, default 1). */
export function sampleRatioFromEnv(): number {
  const ratio = Number(process.env.SHOP_SAMPLE_RATIO ?? 1);
  if (!(ratio >= 0 && ratio <= 1)) {
    throw new Error(
      `SHOP_SAMPLE_RATIO must be a number from 0 to 1, got ${process.env.SHOP_SAMPLE_RATIO}`,
    );
  }
  return ratio;
}
