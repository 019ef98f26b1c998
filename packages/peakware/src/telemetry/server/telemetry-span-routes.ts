/**
 * Span ingest, the collector's front door:
 *
 * - `POST /api/v1/telemetry/spans` (SDK): a batch of Peakware spans.
 * - `POST /v1/traces`: OTLP/HTTP from any OpenTelemetry SDK or collector, JSON
 *   (`application/json`) or protobuf (`application/x-protobuf`), optionally gzip; protobuf
 *   requests are answered in protobuf (`ExportTraceServiceResponse`, `google.rpc.Status`).
 *
 * Both store through one path and count on the collector's counters.
 */
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { Type } from '@sinclair/typebox';
import type { FastifyError, FastifyRequest } from 'fastify';
import { ErrorCodes, httpStatusOf, InvalidArgumentError, PeakError } from '../../core/errors.js';
import { authorize } from '../../server/access.js';
import type { ApiApp } from '../../server/http-api.js';
import { StringEnum, WithDefault } from '../../server/route-schema.js';
import { fromOtlpJson } from '../otlp-json.js';
import {
  encodeOtlpTraceResponse,
  encodeRpcStatus,
  fromOtlpProtobuf,
  OTLP_PROTOBUF_CONTENT_TYPE,
  RpcStatusCodes,
} from '../otlp-protobuf.js';
import { type AttributeValue, SPAN_KINDS, type SpanRecord } from '../span-types.js';
import type { CollectorCounters } from './telemetry-collector-counters.js';
import type { TelemetryStore } from './telemetry-store.js';

const gunzipAsync = promisify(gunzip);

const MAX_SPANS_PER_BATCH = 5000;

/** Largest OTLP request body, compressed and (for gzip) decompressed. */
const OTLP_BODY_LIMIT = 16 * 1024 * 1024;

function isProtobufRequest(request: FastifyRequest): boolean {
  return /protobuf/i.test(String(request.headers['content-type'] ?? ''));
}

/** Undoes `content-encoding: gzip` (OTLP's one compression), bounded by the body limit. */
async function inflateOtlpBody(encoding: string | undefined, body: Buffer): Promise<Buffer> {
  const coding = (encoding ?? '').trim().toLowerCase();
  if (coding === '' || coding === 'identity') return body;
  if (coding !== 'gzip') {
    throw new InvalidArgumentError(
      `content-encoding '${encoding}' is not supported on OTLP: send gzip or no encoding`,
    );
  }
  try {
    return await gunzipAsync(body, { maxOutputLength: OTLP_BODY_LIMIT });
  } catch (err) {
    const tooLarge = (err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE';
    throw new InvalidArgumentError(
      tooLarge
        ? `gzip OTLP body inflates past ${OTLP_BODY_LIMIT} bytes; send smaller batches`
        : `gzip OTLP body does not decompress (${(err as Error).message})`,
    );
  }
}

const hex = (n: number, what: string) =>
  Type.String({ pattern: `^[0-9a-f]{${n}}$`, takes: `${n} lowercase hex characters (${what})` });

/** One Peakware span (the SDK's exporter sends batches of them). */
const span = Type.Object({
  traceId: hex(32, 'a trace id'),
  spanId: hex(16, 'a span id'),
  parentSpanId: Type.Optional(hex(16, 'a span id')),
  name: Type.String({ minLength: 1, maxLength: 500 }),
  kind: StringEnum(SPAN_KINDS as readonly SpanRecord['kind'][]),
  service: Type.String({ minLength: 1, maxLength: 200 }),
  peerService: Type.Optional(Type.String({ maxLength: 200 })),
  startUs: Type.Number({ minimum: 0, description: 'epoch µs' }),
  durationUs: Type.Number({ minimum: 0 }),
  error: WithDefault(Type.Boolean(), false),
  errorMessage: Type.Optional(Type.String({ maxLength: 2000 })),
  stress: WithDefault(Type.Boolean(), false),
  // Values are checked in the handler, whose message names the span and the attribute.
  attributes: WithDefault(
    Type.Unsafe<Record<string, AttributeValue>>({
      type: 'object',
      maxProperties: 64,
      description: 'values are strings, numbers or booleans',
    }),
    {},
  ),
});

/** The span routes (SDK and OTLP/HTTP), storing into `store` and counting on `counters`. */
export function spanIngestRoutes(
  app: ApiApp,
  store: TelemetryStore,
  counters: CollectorCounters,
): void {
  const ingest = async (request: FastifyRequest, spans: SpanRecord[]) => {
    // An app pushes spans of the services its telemetry grants name (all with a bare one).
    for (const service of new Set(spans.map((s) => s.service))) {
      authorize(request, 'telemetry', service);
    }
    counters.batches++;
    counters.received += spans.length;
    const added = await store.insert(spans);
    counters.stored += added;
    return { accepted: spans.length, stored: added };
  };

  app.post(
    '/api/v1/telemetry/spans',
    {
      config: { auth: 'sdk', scope: 'telemetry' },
      schema: {
        summary: 'A batch of Peakware spans (the SDK exporter)',
        body: Type.Object({ spans: Type.Array(span, { maxItems: MAX_SPANS_PER_BATCH }) }),
      },
      bodyLimit: 16 * 1024 * 1024,
    },
    async (request) => {
      const { spans } = request.body;
      for (const span of spans) {
        for (const [key, value] of Object.entries(span.attributes)) {
          const t = typeof value;
          if (t !== 'string' && t !== 'number' && t !== 'boolean') {
            throw new InvalidArgumentError(
              `span ${span.spanId} (${span.name}): attribute '${key}' must be a string, number or boolean`,
            );
          }
        }
      }
      return ingest(request, spans);
    },
  );

  // OTLP/HTTP in its own encapsulated scope: JSON and protobuf bodies, gzip or not, and
  // for protobuf requests errors answered as google.rpc.Status in protobuf (the OTLP spec).
  void app.register(async (otlp) => {
    const parseOtlpBody =
      (json: boolean) =>
      async (request: FastifyRequest, body: Buffer): Promise<unknown> => {
        try {
          const raw = await inflateOtlpBody(request.headers['content-encoding'], body);
          if (!json) return raw;
          try {
            return JSON.parse(raw.toString('utf8')) as unknown;
          } catch (err) {
            throw new InvalidArgumentError(
              `OTLP body is not valid JSON (${(err as Error).message}); send an ExportTraceServiceRequest in JSON or protobuf`,
            );
          }
        } catch (err) {
          counters.rejected++;
          throw err;
        }
      };
    otlp.removeContentTypeParser('application/json');
    otlp.addContentTypeParser(
      'application/json',
      { parseAs: 'buffer', bodyLimit: OTLP_BODY_LIMIT },
      parseOtlpBody(true),
    );
    otlp.addContentTypeParser(
      [OTLP_PROTOBUF_CONTENT_TYPE, 'application/protobuf'],
      { parseAs: 'buffer', bodyLimit: OTLP_BODY_LIMIT },
      parseOtlpBody(false),
    );
    otlp.setErrorHandler((err: FastifyError | PeakError, request, reply) => {
      const unimplemented = err instanceof PeakError && err.code === ErrorCodes.NOT_IMPLEMENTED;
      const client =
        err instanceof PeakError
          ? err.code === ErrorCodes.INVALID_ARGUMENT || unimplemented
          : typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500;
      // JSON requests and server-side failures: the API's own error handler.
      if (!isProtobufRequest(request) || !client) throw err;
      const status = err instanceof PeakError ? httpStatusOf(err.code) : (err.statusCode ?? 400);
      void reply
        .status(status)
        .header('content-type', OTLP_PROTOBUF_CONTENT_TYPE)
        .send(
          encodeRpcStatus(
            unimplemented
              ? RpcStatusCodes.UNIMPLEMENTED
              : status === 413
                ? RpcStatusCodes.RESOURCE_EXHAUSTED
                : RpcStatusCodes.INVALID_ARGUMENT,
            err.message,
          ),
        );
    });

    const otlpRequest = Type.Unknown({
      description: 'an OTLP ExportTraceServiceRequest, optionally gzip (content-encoding)',
    });
    otlp.post(
      '/v1/traces',
      {
        bodyLimit: OTLP_BODY_LIMIT,
        config: { auth: 'sdk', scope: 'telemetry' },
        schema: {
          summary:
            'OTLP/HTTP traces from any OpenTelemetry SDK or collector (JSON or protobuf; protobuf is answered in protobuf)',
          body: {
            content: {
              'application/json': { schema: otlpRequest },
              [OTLP_PROTOBUF_CONTENT_TYPE]: { schema: otlpRequest },
            },
          },
        },
      },
      async (request, reply) => {
        const protobuf = Buffer.isBuffer(request.body);
        let spans: SpanRecord[];
        try {
          if (protobuf) {
            spans = fromOtlpProtobuf(request.body as Buffer, { maxSpans: MAX_SPANS_PER_BATCH * 4 });
          } else if (String(request.headers['content-type'] ?? '').includes('json')) {
            spans = fromOtlpJson(request.body);
          } else {
            throw new PeakError(
              ErrorCodes.INVALID_ARGUMENT,
              `this collector takes OTLP/HTTP as application/json or ${OTLP_PROTOBUF_CONTENT_TYPE}, got content-type '${String(request.headers['content-type'] ?? '')}'`,
            );
          }
        } catch (err) {
          counters.rejected++;
          throw err;
        }
        if (spans.length > MAX_SPANS_PER_BATCH * 4) {
          throw new InvalidArgumentError(
            `OTLP request has ${spans.length} spans; send at most ${MAX_SPANS_PER_BATCH * 4} per request`,
          );
        }
        counters.otlpBatches++;
        await ingest(request, spans);
        // OTLP's ExportTraceServiceResponse: empty means every span was accepted.
        if (protobuf) {
          void reply.header('content-type', OTLP_PROTOBUF_CONTENT_TYPE);
          return encodeOtlpTraceResponse();
        }
        void reply.header('content-type', 'application/json');
        return {};
      },
    );

    // OTLP metrics and logs: answered 501 with what this collector does take, so an
    // OpenTelemetry exporter pointed at peak server logs a reason instead of a bare 404.
    const unsupported: Record<string, string> = {
      '/v1/metrics':
        'peak server does not store OTLP metrics: it takes OTLP traces (POST /v1/traces, JSON or protobuf) and Peakware per-second metrics (POST /api/v1/telemetry/metrics, sent by MetricsPusher), and serves Prometheus text at GET /metrics; send OTLP metrics to an OpenTelemetry Collector or Prometheus (OTLP receiver) instead',
      '/v1/logs':
        'peak server does not store OTLP logs: it takes OTLP traces (POST /v1/traces); send OTLP logs to an OpenTelemetry Collector or a log store instead',
    };
    for (const [url, message] of Object.entries(unsupported)) {
      otlp.post(
        url,
        {
          bodyLimit: OTLP_BODY_LIMIT,
          // Public: the answer stores nothing and says only what the collector takes.
          config: { auth: 'public' },
          schema: {
            summary: `OTLP/HTTP ${url.slice(4)}: not served (501, with what is)`,
            body: {
              content: {
                'application/json': { schema: otlpRequest },
                [OTLP_PROTOBUF_CONTENT_TYPE]: { schema: otlpRequest },
              },
            },
          },
        },
        async () => {
          throw new PeakError(ErrorCodes.NOT_IMPLEMENTED, message, {
            details: { supported: ['/v1/traces'] },
          });
        },
      );
    }
  });
}
