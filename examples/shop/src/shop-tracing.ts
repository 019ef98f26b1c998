/**
 * Tracing for every process of the chain: spans go, batched and bounded (a full buffer
 * drops and counts, never blocks a buy), to the control plane's collector, where
 * `peak trace <id>` and the topology API read them.
 */
import { BatchSpanProcessor, ControlPlaneSpanExporter, Tracer } from 'peakware/telemetry';

/** A tracer for `service` exporting to the control plane, and the processor to flush. */
export function shopTracer(
  service: string,
  controlPlane: string,
): { tracer: Tracer; processor: BatchSpanProcessor } {
  const processor = new BatchSpanProcessor({
    exporter: new ControlPlaneSpanExporter({ server: controlPlane }),
  });
  // Every trace is kept: a flash sale on a laptop is small; at scale, sample (sampleRatio).
  const tracer = new Tracer({ service, sink: processor, sampleRatio: 1, slowMs: 500 });
  return { tracer, processor };
}
