/**
 * OTLP/HTTP protobuf (`application/x-protobuf`, what the Java, Go, Python and .NET SDKs send
 * by default): a small protobuf wire reader for exactly the messages of opentelemetry-proto's
 * `ExportTraceServiceRequest` (collector/trace/v1) that spans need. It decodes into the OTLP
 * JSON shape and hands that to {@link fromOtlpJson}, so both encodings share one mapping to
 * {@link SpanRecord}s. Unknown fields (events, links, scope, trace state, flags, fields added
 * to the proto later) are skipped as protobuf requires.
 */
import { InvalidArgumentError } from '../core/errors.js';
import { fromOtlpJson } from './otlp-json.js';
import type { SpanRecord } from './span-types.js';

/** The content type of OTLP/HTTP protobuf requests and responses. */
export const OTLP_PROTOBUF_CONTENT_TYPE = 'application/x-protobuf';

/** Deepest nesting of array/kvlist attribute values accepted (a bound on recursion). */
const MAX_VALUE_DEPTH = 16;

/** OTLP JSON `AnyValue` as the protobuf reader builds it. */
interface AnyValueJson {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string;
  doubleValue?: number;
  bytesValue?: string;
  arrayValue?: { values: AnyValueJson[] };
  kvlistValue?: { values: KeyValueJson[] };
}
interface KeyValueJson {
  key: string;
  value?: AnyValueJson;
}
interface SpanJson {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano?: string;
  endTimeUnixNano?: string;
  attributes: KeyValueJson[];
  status?: { code: number; message?: string };
}
/** The OTLP JSON form of an `ExportTraceServiceRequest`, as decoded from protobuf. */
export interface OtlpTraceRequestJson {
  resourceSpans: {
    resource?: { attributes: KeyValueJson[] };
    scopeSpans: { spans: SpanJson[] }[];
  }[];
}

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

function malformed(what: string, at: number): InvalidArgumentError {
  return new InvalidArgumentError(
    `malformed OTLP protobuf body: ${what} at byte ${at}; send a protobuf-encoded ExportTraceServiceRequest (opentelemetry-proto collector/trace/v1) with content-type ${OTLP_PROTOBUF_CONTENT_TYPE}`,
  );
}

/** A cursor over one message's bytes `[pos, end)` of a shared buffer. */
class WireReader {
  constructor(
    readonly buf: Buffer,
    public pos: number,
    readonly end: number,
  ) {}

  get done(): boolean {
    return this.pos >= this.end;
  }

  /** A varint as a JS number (exact up to 2^53; tags, lengths, enums, bools). */
  varint(): number {
    let result = 0;
    let shift = 0;
    const start = this.pos;
    for (;;) {
      if (this.pos >= this.end) throw malformed('varint runs past the end of its message', start);
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
      if (shift >= 70) throw malformed('varint longer than 10 bytes', start);
    }
  }

  /** A varint as a signed 64-bit integer in decimal (int64 attribute values). */
  int64(): string {
    let result = 0n;
    let shift = 0n;
    const start = this.pos;
    for (;;) {
      if (this.pos >= this.end) throw malformed('varint runs past the end of its message', start);
      const b = this.buf[this.pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return BigInt.asIntN(64, result).toString();
      shift += 7n;
      if (shift >= 70n) throw malformed('varint longer than 10 bytes', start);
    }
  }

  private need(n: number, what: string): number {
    const at = this.pos;
    if (at + n > this.end) throw malformed(`${what} runs past the end of its message`, at);
    this.pos += n;
    return at;
  }

  /** fixed64 as an unsigned decimal string (nanosecond timestamps). */
  fixed64(): string {
    return this.buf.readBigUInt64LE(this.need(8, 'fixed64')).toString();
  }

  double(): number {
    return this.buf.readDoubleLE(this.need(8, 'double'));
  }

  /** A length-delimited field: a reader over its bytes. */
  sub(): WireReader {
    const lenAt = this.pos;
    const len = this.varint();
    if (this.pos + len > this.end) {
      throw malformed(`length ${len} runs past the end of its message`, lenAt);
    }
    const r = new WireReader(this.buf, this.pos, this.pos + len);
    this.pos += len;
    return r;
  }

  string(): string {
    const r = this.sub();
    return this.buf.toString('utf8', r.pos, r.end);
  }

  /** Reads a tag: [field number, wire type]. */
  tag(): [number, number] {
    const at = this.pos;
    const tag = this.varint();
    const field = Math.floor(tag / 8);
    if (field === 0) throw malformed('field number 0', at);
    return [field, tag & 7];
  }

  /** Skips a field this decoder does not need. */
  skip(wireType: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_I64:
        this.need(8, 'fixed64');
        return;
      case WIRE_LEN:
        this.sub();
        return;
      case WIRE_I32:
        this.need(4, 'fixed32');
        return;
      default:
        throw malformed(`unsupported wire type ${wireType}`, this.pos);
    }
  }

  /** Throws unless a known field arrived with its declared wire type. */
  expect(field: number, wireType: number, want: number, message: string): void {
    if (wireType !== want) {
      throw malformed(
        `${message} field ${field} has wire type ${wireType}, expected ${want}`,
        this.pos,
      );
    }
  }
}

function anyValue(r: WireReader, depth: number): AnyValueJson {
  if (depth > MAX_VALUE_DEPTH) {
    throw malformed(`attribute value nested deeper than ${MAX_VALUE_DEPTH} levels`, r.pos);
  }
  let out: AnyValueJson = {};
  while (!r.done) {
    const [field, wt] = r.tag();
    switch (field) {
      case 1:
        r.expect(field, wt, WIRE_LEN, 'AnyValue');
        out = { stringValue: r.string() };
        break;
      case 2:
        r.expect(field, wt, WIRE_VARINT, 'AnyValue');
        out = { boolValue: r.varint() !== 0 };
        break;
      case 3:
        r.expect(field, wt, WIRE_VARINT, 'AnyValue');
        out = { intValue: r.int64() };
        break;
      case 4:
        r.expect(field, wt, WIRE_I64, 'AnyValue');
        out = { doubleValue: r.double() };
        break;
      case 5: {
        r.expect(field, wt, WIRE_LEN, 'AnyValue');
        const a = r.sub();
        const values: AnyValueJson[] = [];
        while (!a.done) {
          const [f, w] = a.tag();
          if (f === 1 && w === WIRE_LEN) values.push(anyValue(a.sub(), depth + 1));
          else a.skip(w);
        }
        out = { arrayValue: { values } };
        break;
      }
      case 6: {
        r.expect(field, wt, WIRE_LEN, 'AnyValue');
        const l = r.sub();
        const values: KeyValueJson[] = [];
        while (!l.done) {
          const [f, w] = l.tag();
          if (f === 1 && w === WIRE_LEN) values.push(keyValue(l.sub(), depth + 1));
          else l.skip(w);
        }
        out = { kvlistValue: { values } };
        break;
      }
      case 7: {
        r.expect(field, wt, WIRE_LEN, 'AnyValue');
        const b = r.sub();
        // OTLP JSON carries bytes as base64; the shared mapping stores that string.
        out = { bytesValue: r.buf.toString('base64', b.pos, b.end) };
        break;
      }
      default:
        r.skip(wt);
    }
  }
  return out;
}

function keyValue(r: WireReader, depth: number): KeyValueJson {
  const kv: KeyValueJson = { key: '' };
  while (!r.done) {
    const [field, wt] = r.tag();
    if (field === 1) {
      r.expect(field, wt, WIRE_LEN, 'KeyValue');
      kv.key = r.string();
    } else if (field === 2) {
      r.expect(field, wt, WIRE_LEN, 'KeyValue');
      kv.value = anyValue(r.sub(), depth);
    } else r.skip(wt);
  }
  return kv;
}

function id(r: WireReader, bytes: 8 | 16, what: string, spanIndex: number): string {
  const at = r.pos;
  const b = r.sub();
  const len = b.end - b.pos;
  // An empty parent_span_id is proto3's "no parent" (a root span): '' is dropped later.
  if (len === 0 && what === 'parent_span_id') return '';
  if (len !== bytes) {
    throw new InvalidArgumentError(
      `OTLP protobuf span ${spanIndex}: ${what} must be ${bytes} bytes, got ${len} (at byte ${at})`,
    );
  }
  return r.buf.toString('hex', b.pos, b.end);
}

function span(r: WireReader, index: number): SpanJson {
  const s: SpanJson = { traceId: '', spanId: '', name: '', kind: 0, attributes: [] };
  while (!r.done) {
    const [field, wt] = r.tag();
    switch (field) {
      case 1:
        r.expect(field, wt, WIRE_LEN, 'Span');
        s.traceId = id(r, 16, 'trace_id', index);
        break;
      case 2:
        r.expect(field, wt, WIRE_LEN, 'Span');
        s.spanId = id(r, 8, 'span_id', index);
        break;
      case 4: {
        r.expect(field, wt, WIRE_LEN, 'Span');
        const parent = id(r, 8, 'parent_span_id', index);
        if (parent === '') delete s.parentSpanId;
        else s.parentSpanId = parent;
        break;
      }
      case 5:
        r.expect(field, wt, WIRE_LEN, 'Span');
        s.name = r.string();
        break;
      case 6:
        r.expect(field, wt, WIRE_VARINT, 'Span');
        s.kind = r.varint();
        break;
      case 7:
        r.expect(field, wt, WIRE_I64, 'Span');
        s.startTimeUnixNano = r.fixed64();
        break;
      case 8:
        r.expect(field, wt, WIRE_I64, 'Span');
        s.endTimeUnixNano = r.fixed64();
        break;
      case 9:
        r.expect(field, wt, WIRE_LEN, 'Span');
        s.attributes.push(keyValue(r.sub(), 0));
        break;
      case 15: {
        r.expect(field, wt, WIRE_LEN, 'Span');
        const st = r.sub();
        const status: { code: number; message?: string } = { code: 0 };
        while (!st.done) {
          const [f, w] = st.tag();
          if (f === 2 && w === WIRE_LEN) status.message = st.string();
          else if (f === 3 && w === WIRE_VARINT) status.code = st.varint();
          else st.skip(w);
        }
        s.status = status;
        break;
      }
      default:
        r.skip(wt);
    }
  }
  if (s.traceId === '' || s.spanId === '') {
    throw new InvalidArgumentError(
      `OTLP protobuf span ${index} (${s.name || '?'}): trace_id (16 bytes) and span_id (8 bytes) are required`,
    );
  }
  return s;
}

/** Options of {@link decodeOtlpTraceRequest} and {@link fromOtlpProtobuf}. */
export interface OtlpProtobufOptions {
  /** Most spans one request may carry; more is refused while decoding (bounded memory). */
  maxSpans?: number;
}

/**
 * Decodes a protobuf `ExportTraceServiceRequest` into its OTLP JSON form (ids as hex,
 * nanosecond times and int64 values as decimal strings). Throws
 * {@link InvalidArgumentError} naming the byte offset of malformed input.
 */
export function decodeOtlpTraceRequest(
  body: Uint8Array,
  options: OtlpProtobufOptions = {},
): OtlpTraceRequestJson {
  const maxSpans = options.maxSpans ?? Number.POSITIVE_INFINITY;
  const buf = Buffer.isBuffer(body)
    ? body
    : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const top = new WireReader(buf, 0, buf.length);
  const out: OtlpTraceRequestJson = { resourceSpans: [] };
  let spans = 0;
  while (!top.done) {
    const [field, wt] = top.tag();
    if (field !== 1) {
      top.skip(wt);
      continue;
    }
    top.expect(field, wt, WIRE_LEN, 'ExportTraceServiceRequest');
    const rs = top.sub();
    const resourceSpans: OtlpTraceRequestJson['resourceSpans'][number] = { scopeSpans: [] };
    while (!rs.done) {
      const [f, w] = rs.tag();
      if (f === 1) {
        rs.expect(f, w, WIRE_LEN, 'ResourceSpans');
        const res = rs.sub();
        const attributes: KeyValueJson[] = [];
        while (!res.done) {
          const [rf, rw] = res.tag();
          if (rf === 1 && rw === WIRE_LEN) attributes.push(keyValue(res.sub(), 0));
          else res.skip(rw);
        }
        resourceSpans.resource = { attributes };
      } else if (f === 2 || f === 1000) {
        // 1000: the deprecated instrumentation_library_spans, same layout as ScopeSpans.
        rs.expect(f, w, WIRE_LEN, 'ResourceSpans');
        const ss = rs.sub();
        const list: SpanJson[] = [];
        while (!ss.done) {
          const [sf, sw] = ss.tag();
          if (sf === 2 && sw === WIRE_LEN) {
            if (spans >= maxSpans) {
              throw new InvalidArgumentError(
                `OTLP request has more than ${maxSpans} spans; send at most ${maxSpans} per request`,
              );
            }
            list.push(span(ss.sub(), spans++));
          } else ss.skip(sw);
        }
        resourceSpans.scopeSpans.push({ spans: list });
      } else rs.skip(w);
    }
    out.resourceSpans.push(resourceSpans);
  }
  return out;
}

/**
 * Decodes an OTLP/HTTP protobuf trace export request into span records, through the same
 * mapping as {@link fromOtlpJson}. Throws {@link InvalidArgumentError} on malformed input.
 */
export function fromOtlpProtobuf(
  body: Uint8Array,
  options: OtlpProtobufOptions = {},
): SpanRecord[] {
  return fromOtlpJson(decodeOtlpTraceRequest(body, options));
}

function varintBytes(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

function stringField(field: number, value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  return Buffer.concat([
    Buffer.from([(field << 3) | WIRE_LEN, ...varintBytes(bytes.length)]),
    bytes,
  ]);
}

/**
 * Encodes an `ExportTraceServiceResponse`: empty when every span was accepted, else with
 * `partial_success { rejected_spans, error_message }`.
 */
export function encodeOtlpTraceResponse(partial?: {
  rejectedSpans: number;
  errorMessage: string;
}): Buffer {
  if (partial === undefined) return Buffer.alloc(0);
  const inner = Buffer.concat([
    Buffer.from([(1 << 3) | WIRE_VARINT, ...varintBytes(partial.rejectedSpans)]),
    stringField(2, partial.errorMessage),
  ]);
  return Buffer.concat([Buffer.from([(1 << 3) | WIRE_LEN, ...varintBytes(inner.length)]), inner]);
}

/** gRPC status codes used in OTLP/HTTP error bodies. */
export const RpcStatusCodes = {
  INVALID_ARGUMENT: 3,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
} as const;

/**
 * Encodes a `google.rpc.Status { code, message }`: the body OTLP/HTTP specifies for 4xx and
 * 5xx answers to protobuf requests.
 */
export function encodeRpcStatus(code: number, message: string): Buffer {
  return Buffer.concat([
    Buffer.from([(1 << 3) | WIRE_VARINT, ...varintBytes(code)]),
    stringField(2, message),
  ]);
}

/** Decodes a `google.rpc.Status` (code and message; details skipped). */
export function decodeRpcStatus(body: Uint8Array): { code: number; message: string } {
  const buf = Buffer.isBuffer(body)
    ? body
    : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const r = new WireReader(buf, 0, buf.length);
  const out = { code: 0, message: '' };
  while (!r.done) {
    const [field, wt] = r.tag();
    if (field === 1 && wt === WIRE_VARINT) out.code = r.varint();
    else if (field === 2 && wt === WIRE_LEN) out.message = r.string();
    else r.skip(wt);
  }
  return out;
}
