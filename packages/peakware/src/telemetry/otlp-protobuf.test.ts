import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from '../core/errors.js';
import { fromOtlpJson, toOtlpJson } from './otlp-json.js';
import {
  decodeRpcStatus,
  encodeOtlpTraceResponse,
  encodeRpcStatus,
  fromOtlpProtobuf,
} from './otlp-protobuf.js';
import type { SpanRecord } from './span-types.js';

// A minimal protobuf writer for test input (field numbers from opentelemetry-proto).
type Bytes = number[];
function varint(n: bigint | number): Bytes {
  let v = BigInt.asUintN(64, BigInt(n));
  const out: Bytes = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}
const tag = (field: number, wireType: number): Bytes => varint(field * 8 + wireType);
const len = (field: number, bytes: Bytes): Bytes => [
  ...tag(field, 2),
  ...varint(bytes.length),
  ...bytes,
];
const str = (field: number, s: string): Bytes => len(field, [...Buffer.from(s, 'utf8')]);
const hex = (field: number, h: string): Bytes => len(field, [...Buffer.from(h, 'hex')]);
const int = (field: number, n: bigint | number): Bytes => [...tag(field, 0), ...varint(n)];
function fixed64(field: number, n: bigint): Bytes {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return [...tag(field, 1), ...b];
}
function double(field: number, x: number): Bytes {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(x);
  return [...tag(field, 1), ...b];
}
const kv = (key: string, value: Bytes): Bytes => len(1, [...str(1, key), ...len(2, value)]);
const spanAttr = (key: string, value: Bytes): Bytes => len(9, [...str(1, key), ...len(2, value)]);

const TRACE = '5b8efff798038103d269b633813fc60c';
const NOW_NS = 1_763_700_000_123_456_789n;

function request(): Buffer {
  const root = [
    ...hex(1, TRACE),
    ...hex(2, 'eee19b7ec3c1b174'),
    ...str(3, 'vendor=1'), // trace_state: skipped
    ...len(4, []), // empty parent_span_id: a root
    ...str(5, 'GET /orders'),
    ...int(6, 2), // SERVER
    ...fixed64(7, NOW_NS),
    ...fixed64(8, NOW_NS + 2_500_000n),
    ...spanAttr('http.route', str(1, '/orders')),
    ...spanAttr('ok', int(2, 1)),
    ...spanAttr('big', int(3, 9007199254740993n)),
    ...spanAttr('neg', int(3, -42)),
    ...spanAttr('ratio', double(4, 0.25)),
    ...spanAttr('list', len(5, [...len(1, str(1, 'a')), ...len(1, int(3, 7))])),
    ...spanAttr('map', len(6, kv('k', str(1, 'v')))),
    ...spanAttr('raw', len(7, [1, 2, 3])),
    ...len(11, [...fixed64(1, NOW_NS), ...str(2, 'event')]), // events: skipped
    ...len(13, [...hex(1, TRACE), ...hex(2, '0102030405060708')]), // links: skipped
    ...[...tag(16, 5), 1, 0, 0, 0], // flags (fixed32): skipped
    ...len(15, [...str(2, 'all good'), ...int(3, 1)]), // STATUS_CODE_OK
    ...len(99, [9, 9, 9]), // a field from a future proto: skipped
  ];
  const child = [
    ...hex(1, TRACE),
    ...hex(2, '00f067aa0ba902b7'),
    ...hex(4, 'eee19b7ec3c1b174'),
    ...str(5, 'SELECT orders'),
    ...int(6, 3), // CLIENT
    ...fixed64(7, NOW_NS + 1_000n),
    ...fixed64(8, NOW_NS + 1_001_000n),
    ...spanAttr('peer.service', str(1, 'postgres')),
    ...spanAttr('peak.stress', int(2, 1)),
    ...len(15, [...str(2, 'deadlock'), ...int(3, 2)]), // STATUS_CODE_ERROR
  ];
  const resource = len(1, [
    ...kv('service.name', str(1, 'order')),
    ...kv('host.name', str(1, 'h1')),
  ]);
  const scopeSpans = len(2, [...len(1, str(1, 'my-lib')), ...len(2, root), ...len(2, child)]);
  const legacy = len(1000, [
    ...len(2, [
      ...hex(1, TRACE),
      ...hex(2, '1111111111111111'),
      ...str(5, 'legacy'),
      ...fixed64(7, NOW_NS),
      ...fixed64(8, NOW_NS),
    ]),
  ]);
  return Buffer.from([...len(1, [...resource, ...scopeSpans, ...legacy, ...str(3, 'schema')])]);
}

describe('fromOtlpProtobuf', () => {
  it('decodes an ExportTraceServiceRequest into span records, skipping unknown fields', () => {
    const spans = fromOtlpProtobuf(request());
    assert.equal(spans.length, 3);
    const [root, child, legacy] = spans;
    assert.deepEqual(root, {
      traceId: TRACE,
      spanId: 'eee19b7ec3c1b174',
      name: 'GET /orders',
      kind: 'server',
      service: 'order',
      startUs: Number(NOW_NS / 1000n),
      durationUs: 2500,
      error: false,
      stress: false,
      attributes: {
        'http.route': '/orders',
        ok: true,
        big: 9007199254740992,
        neg: -42,
        ratio: 0.25,
        list: '["a",7]',
        map: '{"k":"v"}',
        raw: 'AQID',
      },
    } satisfies SpanRecord);
    assert.equal(child?.parentSpanId, 'eee19b7ec3c1b174');
    assert.equal(child?.kind, 'client');
    assert.equal(child?.error, true);
    assert.equal(child?.errorMessage, 'deadlock');
    assert.equal(child?.peerService, 'postgres');
    assert.equal(child?.stress, true);
    assert.equal(child?.durationUs, 1000);
    assert.equal(legacy?.name, 'legacy');
    assert.equal(legacy?.kind, 'internal');
    assert.equal(legacy?.service, 'order');
  });

  it('maps exactly as the JSON decoder does (one mapping, two encodings)', () => {
    const viaJson = fromOtlpJson(
      toOtlpJson(fromOtlpProtobuf(request()).map((s) => ({ ...s, attributes: {} }))),
    );
    const viaProto = fromOtlpProtobuf(request()).map((s) => ({ ...s, attributes: {} }));
    // toOtlpJson writes stress and peer.service back as attributes; compare the rest.
    for (const s of viaJson) s.attributes = {};
    assert.deepEqual(viaJson, viaProto);
  });

  it('accepts an empty request (no spans) and a resource without service.name', () => {
    assert.deepEqual(fromOtlpProtobuf(Buffer.alloc(0)), []);
    const noResource = Buffer.from(
      len(
        1,
        len(
          2,
          len(2, [
            ...hex(1, TRACE),
            ...hex(2, 'aaaaaaaaaaaaaaaa'),
            ...fixed64(7, 1000n),
            ...fixed64(8, 2000n),
          ]),
        ),
      ),
    );
    const [span] = fromOtlpProtobuf(noResource);
    assert.equal(span?.service, 'unknown_service');
    assert.equal(span?.name, '(unnamed)');
  });

  it('rejects malformed bodies with InvalidArgumentError naming the problem', () => {
    const cases: [Bytes, RegExp][] = [
      [[0x0a, 0x05, 0x01], /length 5 runs past the end.*at byte 1/],
      [[0x13], /unsupported wire type 3/],
      [
        [0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
        /longer than 10 bytes/,
      ],
      [[0x00], /field number 0/],
      [
        len(1, len(2, len(2, [...hex(1, 'abcd'), ...hex(2, 'aaaaaaaaaaaaaaaa')]))),
        /trace_id must be 16 bytes, got 2/,
      ],
      [len(1, len(2, len(2, [...hex(1, TRACE)]))), /span 0 .*span_id \(8 bytes\) are required/],
      [
        len(1, len(2, len(2, [...hex(1, TRACE), ...hex(2, 'aaaaaaaaaaaaaaaa'), ...hex(4, 'aa')]))),
        /parent_span_id must be 8 bytes/,
      ],
      [
        len(1, len(2, len(2, [...hex(1, TRACE), ...hex(2, 'aaaaaaaaaaaaaaaa')]))),
        /startTimeUnixNano and endTimeUnixNano/,
      ],
      [
        len(1, len(2, len(2, [...hex(1, TRACE), ...int(2, 5)]))),
        /Span field 2 has wire type 0, expected 2/,
      ],
      [[...tag(1, 0), 1], /ExportTraceServiceRequest field 1 has wire type 0/],
    ];
    for (const [bytes, pattern] of cases) {
      assert.throws(
        () => fromOtlpProtobuf(Buffer.from(bytes)),
        (err: unknown) => err instanceof InvalidArgumentError && pattern.test(err.message),
        `expected ${pattern} for ${Buffer.from(bytes).toString('hex')}`,
      );
    }
  });

  it('refuses more spans than maxSpans while decoding', () => {
    assert.equal(fromOtlpProtobuf(request(), { maxSpans: 3 }).length, 3);
    assert.throws(
      () => fromOtlpProtobuf(request(), { maxSpans: 2 }),
      /more than 2 spans; send at most 2 per request/,
    );
  });

  it('bounds the nesting of attribute values', () => {
    let value = str(1, 'x');
    for (let i = 0; i < 40; i++) value = len(5, len(1, value));
    const body = len(
      1,
      len(2, len(2, [...hex(1, TRACE), ...hex(2, 'aaaaaaaaaaaaaaaa'), ...spanAttr('deep', value)])),
    );
    assert.throws(() => fromOtlpProtobuf(Buffer.from(body)), /nested deeper than 16 levels/);
  });

  it('never throws anything but InvalidArgumentError on truncated or corrupted input', () => {
    const good = request();
    let seed = 42;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const inputs: Buffer[] = [];
    for (let n = 0; n < good.length; n++) inputs.push(good.subarray(0, n));
    for (let i = 0; i < 2000; i++) {
      const b = Buffer.from(good);
      for (let k = 0; k < 3; k++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
      inputs.push(b);
    }
    for (const input of inputs) {
      try {
        fromOtlpProtobuf(input);
      } catch (err) {
        assert.ok(
          err instanceof InvalidArgumentError,
          `${String(err)} for ${input.toString('hex')}`,
        );
      }
    }
  });
});

describe('OTLP protobuf responses', () => {
  it('encodes an empty ExportTraceServiceResponse and one with partial_success', () => {
    assert.equal(encodeOtlpTraceResponse().length, 0);
    const partial = encodeOtlpTraceResponse({ rejectedSpans: 300, errorMessage: 'too old' });
    assert.deepEqual([...partial], len(1, [...int(1, 300), ...str(2, 'too old')]));
  });

  it('encodes and decodes google.rpc.Status', () => {
    const body = encodeRpcStatus(3, 'bad span ✗');
    assert.deepEqual([...body], [...int(1, 3), ...str(2, 'bad span ✗')]);
    assert.deepEqual(decodeRpcStatus(body), { code: 3, message: 'bad span ✗' });
  });
});
