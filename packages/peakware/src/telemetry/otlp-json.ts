/**
 * OTLP/HTTP JSON (opentelemetry-proto `ExportTraceServiceRequest`, JSON encoding) to and
 * from {@link SpanRecord}s: the collector decodes what any OpenTelemetry SDK sends, and
 * {@link toOtlpJson} lets Peakware spans go onward to an OTLP backend.
 */
import { InvalidArgumentError } from '../core/errors.js';
import type { AttributeValue, SpanKind, SpanRecord } from './span-types.js';

const KIND_BY_NUMBER: readonly SpanKind[] = [
  'internal', // 0 UNSPECIFIED
  'internal',
  'server',
  'client',
  'producer',
  'consumer',
];
const KIND_BY_NAME: Record<string, SpanKind> = {
  SPAN_KIND_UNSPECIFIED: 'internal',
  SPAN_KIND_INTERNAL: 'internal',
  SPAN_KIND_SERVER: 'server',
  SPAN_KIND_CLIENT: 'client',
  SPAN_KIND_PRODUCER: 'producer',
  SPAN_KIND_CONSUMER: 'consumer',
};

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;

interface OtlpAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string | number;
  doubleValue?: number;
  bytesValue?: string;
  arrayValue?: { values?: OtlpAnyValue[] };
  kvlistValue?: { values?: OtlpKeyValue[] };
}
interface OtlpKeyValue {
  key: string;
  value?: OtlpAnyValue;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function anyValue(v: OtlpAnyValue | undefined): AttributeValue | undefined {
  // A null or scalar where an AnyValue belongs is dropped, not a crash.
  if (!isObject(v)) return undefined;
  if (typeof v.stringValue === 'string') return v.stringValue;
  if (typeof v.boolValue === 'boolean') return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (typeof v.doubleValue === 'number') return v.doubleValue;
  if (isObject(v.arrayValue)) {
    const values = v.arrayValue.values;
    return JSON.stringify((Array.isArray(values) ? values : []).map((x) => anyValue(x)));
  }
  // Bytes travel as base64 in OTLP JSON (the protobuf decoder produces the same).
  if (typeof v.bytesValue === 'string') return v.bytesValue;
  if (isObject(v.kvlistValue)) return JSON.stringify(attributes(v.kvlistValue.values));
  return undefined;
}

function attributes(list: unknown): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  if (!Array.isArray(list)) return out;
  for (const kv of list as OtlpKeyValue[]) {
    if (!isObject(kv) || typeof kv.key !== 'string') continue;
    const value = anyValue(kv.value);
    if (value !== undefined) out[kv.key] = value;
  }
  return out;
}

/** OTLP JSON ids are hex (the spec); some encoders send base64. Accept both. */
function normalizeId(id: unknown, bytes: 8 | 16): string | undefined {
  if (typeof id !== 'string' || id.length === 0) return undefined;
  const lower = id.toLowerCase();
  if ((bytes === 16 ? HEX32 : HEX16).test(lower)) return lower;
  const decoded = Buffer.from(id, 'base64');
  if (decoded.length === bytes) return decoded.toString('hex');
  return undefined;
}

function nanosToMicros(v: unknown): number {
  if (typeof v === 'number') return Math.round(v / 1000);
  if (typeof v === 'string' && /^\d+$/.test(v)) return Number(BigInt(v) / 1000n);
  return Number.NaN;
}

/**
 * Decodes an OTLP/HTTP JSON trace export request into span records. Throws
 * {@link InvalidArgumentError} naming the first bad span (ids, times).
 */
export function fromOtlpJson(body: unknown): SpanRecord[] {
  if (!isObject(body) || !Array.isArray(body.resourceSpans)) {
    throw new InvalidArgumentError(
      'OTLP body must be an ExportTraceServiceRequest in JSON: { "resourceSpans": [...] }',
      { details: { input: 'resourceSpans' } },
    );
  }
  const out: SpanRecord[] = [];
  for (const rs of body.resourceSpans as unknown[]) {
    if (!isObject(rs)) continue;
    const resAttrs = attributes(isObject(rs.resource) ? rs.resource.attributes : undefined);
    const service = String(resAttrs['service.name'] ?? 'unknown_service');
    const scopes = Array.isArray(rs.scopeSpans)
      ? rs.scopeSpans
      : Array.isArray(rs.instrumentationLibrarySpans)
        ? rs.instrumentationLibrarySpans
        : [];
    for (const ss of scopes as unknown[]) {
      if (!isObject(ss) || !Array.isArray(ss.spans)) continue;
      for (const s of ss.spans as unknown[]) {
        if (!isObject(s)) continue;
        const traceId = normalizeId(s.traceId, 16);
        const spanId = normalizeId(s.spanId, 8);
        const where = `span ${out.length} (${String(s.name ?? '?')})`;
        if (traceId === undefined || spanId === undefined) {
          throw new InvalidArgumentError(
            `OTLP ${where}: traceId must be 32 hex characters and spanId 16 (got ${String(s.traceId)}, ${String(s.spanId)})`,
            { details: { input: traceId === undefined ? 'traceId' : 'spanId' } },
          );
        }
        const startUs = nanosToMicros(s.startTimeUnixNano);
        const endUs = nanosToMicros(s.endTimeUnixNano);
        if (!Number.isFinite(startUs) || !Number.isFinite(endUs)) {
          throw new InvalidArgumentError(
            `OTLP ${where}: startTimeUnixNano and endTimeUnixNano must be integer nanoseconds`,
            {
              details: {
                input: Number.isFinite(startUs) ? 'endTimeUnixNano' : 'startTimeUnixNano',
              },
            },
          );
        }
        const attrs = attributes(s.attributes);
        const kind =
          typeof s.kind === 'number'
            ? (KIND_BY_NUMBER[s.kind] ?? 'internal')
            : (KIND_BY_NAME[String(s.kind)] ?? 'internal');
        const status = isObject(s.status) ? s.status : {};
        const error = status.code === 2 || status.code === 'STATUS_CODE_ERROR';
        const parent = normalizeId(s.parentSpanId, 8);
        const peer = attrs['peer.service'];
        const record: SpanRecord = {
          traceId,
          spanId,
          name: String(s.name ?? '').slice(0, 500) || '(unnamed)',
          kind,
          service,
          startUs,
          durationUs: Math.max(0, endUs - startUs),
          error,
          stress: attrs['peak.stress'] === true || attrs['peak.stress'] === 'true',
          attributes: attrs,
        };
        if (parent !== undefined) record.parentSpanId = parent;
        if (error && typeof status.message === 'string') record.errorMessage = status.message;
        if (typeof peer === 'string') record.peerService = peer;
        out.push(record);
      }
    }
  }
  return out;
}

function toAnyValue(v: AttributeValue): OtlpAnyValue {
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  return Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v };
}

const KIND_NUMBER: Record<SpanKind, number> = {
  internal: 1,
  server: 2,
  client: 3,
  producer: 4,
  consumer: 5,
};

/** Encodes span records as one OTLP/HTTP JSON export request (grouped by service). */
export function toOtlpJson(spans: readonly SpanRecord[]): { resourceSpans: unknown[] } {
  const byService = new Map<string, SpanRecord[]>();
  for (const s of spans) {
    const list = byService.get(s.service);
    if (list === undefined) byService.set(s.service, [s]);
    else list.push(s);
  }
  return {
    resourceSpans: [...byService].map(([service, list]) => ({
      resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
      scopeSpans: [
        {
          scope: { name: 'peakware' },
          spans: list.map((s) => {
            const attrs: Record<string, AttributeValue> = { ...s.attributes };
            if (s.stress) attrs['peak.stress'] = true;
            if (s.peerService !== undefined) attrs['peer.service'] = s.peerService;
            return {
              traceId: s.traceId,
              spanId: s.spanId,
              ...(s.parentSpanId === undefined ? {} : { parentSpanId: s.parentSpanId }),
              name: s.name,
              kind: KIND_NUMBER[s.kind],
              startTimeUnixNano: String(BigInt(s.startUs) * 1000n),
              endTimeUnixNano: String(BigInt(s.startUs + s.durationUs) * 1000n),
              attributes: Object.entries(attrs).map(([key, value]) => ({
                key,
                value: toAnyValue(value),
              })),
              status: s.error
                ? { code: 2, ...(s.errorMessage === undefined ? {} : { message: s.errorMessage }) }
                : { code: 0 },
            };
          }),
        },
      ],
    })),
  };
}
