/**
 * `peakware/core`: what every subsystem shares: the call context and its header form,
 * the sliding-window statistics primitive, the latency histogram, time-ordered ids,
 * error classes with stable codes, structured logging, the retry/backoff helper, and the
 * control-plane client (failover, auth, retries, SSE and NDJSON streams) every SDK client
 * is built on.
 */
export {
  BACKOFF_DEFAULTS,
  Backoff,
  type BackoffOptions,
  backoffDelay,
  type RetryOptions,
  retry,
  type Sleep,
  sleep,
  sleepUnref,
} from './backoff.js';
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
  runWithoutContext,
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
  CONTROL_PLANE_CLIENT_DEFAULTS,
  ControlPlaneClient,
  type ControlPlaneClientOptions,
  type ControlPlaneOptions,
  type EventSubscription,
  errorFromResponse,
  type QueryParams,
  queryString,
  type RequestOptions,
  type StreamOptions,
  type SubscribeOptions,
  serversOf,
  type TokenSource,
} from './control-plane-client.js';
export {
  DeadlineExceededError,
  type ErrorCode,
  ErrorCodes,
  errorMessage,
  httpStatusOf,
  InvalidArgumentError,
  isPeakError,
  MissingDependencyError,
  PeakError,
  type PeakErrorOptions,
  UsageError,
} from './errors.js';
export { type BatchRunner, GroupCommit } from './group-commit.js';
export {
  type HttpOpenInit,
  type HttpRequestInit,
  type HttpResponse,
  type HttpStream,
  httpOpen,
  httpRequest,
} from './http-client.js';
export {
  type DecodedId,
  decodeId,
  IdGenerator,
  type IdGeneratorOptions,
  PEAK_EPOCH_MS,
} from './id-generator.js';
export {
  checkIdentity,
  type DecodedIdentity,
  decodeIdentity,
  IDENTITY_AUDIENCE,
  type IdentityClaims,
  type IdentityJwk,
  type IdentityJwks,
  type IdentityRefusal,
  type IdentitySigningKey,
  identityError,
  jwkKey,
  newIdentityKeyPair,
  privateKeyOf,
  publicJwk,
  signIdentity,
} from './identity-token.js';
export {
  addSparseHistogram,
  HISTOGRAM_BUCKETS,
  HistogramRing,
  histogramIndex,
  histogramQuantile,
  histogramValue,
  LatencyHistogram,
  mergeSparseHistograms,
  sparseHistogram,
  sparseHistogramProblem,
  sparseQuantile,
} from './latency-histogram.js';
export {
  type CreateLoggerOptions,
  createLogger,
  formatPrettyLine,
  type Logger,
  silentLogger,
} from './logger.js';
export { MAX_NDJSON_LINE_BYTES, readNdjsonLines } from './ndjson-reader.js';
export { constantTimeEqual, hmacSha256, randomSecret, sha256Hex } from './secrets.js';
export {
  parseServers,
  ServerList,
  type ServerListOptions,
} from './server-list.js';
export {
  type BucketSnapshot,
  SlidingWindow,
  type SlidingWindowOptions,
  WindowField,
  type WindowFieldName,
} from './sliding-window.js';
export { MAX_SSE_EVENT_BYTES, readSseEvents, type SseEvent } from './sse-reader.js';
export { PEAKWARE_VERSION } from './version.js';
