/**
 * `peakware/core`: what every subsystem shares: the call context and its header form,
 * the sliding-window statistics primitive, the latency histogram, time-ordered ids,
 * error classes with stable codes, structured logging, and the keep-alive HTTP client the
 * SDK calls the control plane with.
 */
export {
  assertDeadline,
  bindContext,
  type CallContext,
  type ContextInit,
  childContext,
  createContext,
  currentContext,
  deriveContext,
  newSpanId,
  newTraceId,
  remainingTime,
  runWithContext,
  withContext,
} from './context.js';
export {
  ContextHeaders,
  decodeContext,
  encodeContext,
  type HeaderMap,
  parseTraceparent,
} from './context-headers.js';
export {
  DeadlineExceededError,
  type ErrorCode,
  ErrorCodes,
  errorMessage,
  httpStatusOf,
  InvalidArgumentError,
  isPeakError,
  PeakError,
  type PeakErrorOptions,
  UsageError,
} from './errors.js';
export { type HttpRequestInit, type HttpResponse, httpRequest } from './http-client.js';
export {
  type DecodedId,
  decodeId,
  IdGenerator,
  type IdGeneratorOptions,
  PEAK_EPOCH_MS,
} from './id-generator.js';
export {
  HISTOGRAM_BUCKETS,
  histogramIndex,
  histogramQuantile,
  histogramValue,
  LatencyHistogram,
} from './latency-histogram.js';
export {
  type CreateLoggerOptions,
  createLogger,
  formatPrettyLine,
  type Logger,
  silentLogger,
} from './logger.js';
export {
  type BucketSnapshot,
  SlidingWindow,
  type SlidingWindowOptions,
  WindowField,
  type WindowFieldName,
} from './sliding-window.js';
export { PEAKWARE_VERSION } from './version.js';
