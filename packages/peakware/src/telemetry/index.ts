/**
 * `peakware/telemetry`: full-link tracing on the call context (spans for RPC, HTTP and
 * your own code, ratio sampling that always keeps errors and slow calls), a bounded span
 * exporter to the control plane or OTLP, and Prometheus metrics for a service.
 */
export { type CacheSpanEvent, cacheSpanCollector } from './cache-tracing.js';
export {
  ControlPlaneSpanExporter,
  type ControlPlaneSpanExporterOptions,
} from './control-plane-exporter.js';
export { type HttpHandler, type TraceHttpOptions, traceHttp } from './http-tracing.js';
export {
  MetricsPusher,
  type MetricsPusherOptions,
  type MetricsPusherStats,
  type PushedMetric,
} from './metrics-pusher.js';
export {
  type TracedBatchMessage,
  type TracedMessage,
  traceConsumer,
  traceConsumerBatch,
  traceSend,
} from './mq-tracing.js';
export { OtlpHttpSpanExporter, type OtlpHttpSpanExporterOptions } from './otlp-exporter.js';
export { fromOtlpJson, toOtlpJson } from './otlp-json.js';
export { fromOtlpProtobuf, OTLP_PROTOBUF_CONTENT_TYPE } from './otlp-protobuf.js';
export {
  formatPrometheus,
  type MetricFamily,
  type MetricSample,
  PROMETHEUS_CONTENT_TYPE,
  processMetrics,
} from './prometheus-format.js';
export {
  type ParsedExposition,
  type ParsedSample,
  parsePrometheusText,
} from './prometheus-parser.js';
export { rpcTracingFilter } from './rpc-tracing.js';
export {
  type MetricSink,
  type MetricsEndpoint,
  type SecondMetric,
  ServiceMetrics,
  serveMetrics,
} from './service-metrics.js';
export {
  BatchSpanProcessor,
  type BatchSpanProcessorOptions,
  type SpanExporter,
  type SpanProcessorStats,
} from './span-exporter.js';
export { type AttributeValue, SPAN_KINDS, type SpanKind, type SpanRecord } from './span-types.js';
export { type SqlStatementEvent, sqlSpanCollector } from './sql-tracing.js';
export { buildTraceTree, type TraceNode, type TraceTree } from './trace-tree.js';
export {
  type FinishedSpanInit,
  type Span,
  type SpanSink,
  type StartSpanOptions,
  Tracer,
  type TracerOptions,
  traceIdRatio,
} from './tracer.js';
