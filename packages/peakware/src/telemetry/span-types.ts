/**
 * The span record: what one finished unit of traced work looks like on the wire between
 * the SDK and the collector (JSON), and in the collector's store. Shaped after the
 * OpenTelemetry span data model so OTLP spans map onto it one to one.
 */

/** What role a span plays in a call (OpenTelemetry's SpanKind, lowercase). */
export type SpanKind = 'internal' | 'server' | 'client' | 'producer' | 'consumer';

/** The kinds a span may have, for validation. */
export const SPAN_KINDS: readonly SpanKind[] = [
  'internal',
  'server',
  'client',
  'producer',
  'consumer',
];

/** A span attribute value (OpenTelemetry allows primitives; arrays are not used here). */
export type AttributeValue = string | number | boolean;

/** A finished span. */
export interface SpanRecord {
  /** W3C trace id, 32 lowercase hex characters. */
  traceId: string;
  /** Span id, 16 lowercase hex characters. */
  spanId: string;
  /** The parent span, absent for a root span. */
  parentSpanId?: string;
  /** Operation name, e.g. `shop.order.create` or `GET /orders`. */
  name: string;
  /** The span's role. */
  kind: SpanKind;
  /** The service (application) that recorded the span. */
  service: string;
  /** Start, epoch microseconds. */
  startUs: number;
  /** Duration, microseconds. */
  durationUs: number;
  /** True when the work failed. */
  error: boolean;
  /** A short failure description (error code and message), when it failed. */
  errorMessage?: string;
  /** True for full-link stress-test traffic (counted apart from real traffic). */
  stress: boolean;
  /** For client/producer spans: the service called (topology edge target), when known. */
  peerService?: string;
  /** Attributes: `rpc.method`, `db.shard`, `db.statement.fingerprint`, `db.rows`, ... */
  attributes: Record<string, AttributeValue>;
}
