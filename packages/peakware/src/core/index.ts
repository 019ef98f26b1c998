/**
 * `peakware/core`: what every subsystem shares: the call context and its header form,
 * the sliding-window statistics primitive, the latency histogram, time-ordered ids,
 * error classes with stable codes, and structured logging.
 */
export {
  type CallContext,
  type ContextInit,
  assertDeadline,
  bindContext,
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
  type HeaderMap,
  decodeContext,
  encodeContext,
  parseTraceparent,
} from './context-headers.js';
export {
  type BucketSnapshot,
  SlidingWindow,
  type SlidingWindowOptions,
  WindowField,
  type WindowFieldName,
} from './sliding-window.js';
export {
  HISTOGRAM_BUCKETS,
  histogramIndex,
  histogramQuantile,
  histogramValue,
  LatencyHistogram,
} from './latency-histogram.js';
export {
  type DecodedId,
  decodeId,
  IdGenerator,
  type IdGeneratorOptions,
  PEAK_EPOCH_MS,
} from './id-generator.js';
export {
  DeadlineExceededError,
  type ErrorCode,
  ErrorCodes,
  errorMessage,
  InvalidArgumentError,
  isPeakError,
  PeakError,
  type PeakErrorOptions,
  UsageError,
} from './errors.js';
export {
  type CreateLoggerOptions,
  createLogger,
  formatPrettyLine,
  type Logger,
  silentLogger,
} from './logger.js';
export { PEAKWARE_VERSION } from './version.js';
