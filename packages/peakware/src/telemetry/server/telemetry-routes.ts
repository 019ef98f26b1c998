/**
 * Telemetry's control-plane routes (the collector and the analysis API):
 *
 * - `POST /api/v1/telemetry/spans` (SDK): a batch of Peakware spans.
 * - `POST /v1/traces`: OTLP/HTTP from any OpenTelemetry SDK or collector, JSON
 *   (`application/json`) or protobuf (`application/x-protobuf`), optionally gzip; protobuf
 *   requests are answered in protobuf (`ExportTraceServiceResponse`, `google.rpc.Status`).
 * - `GET /api/v1/telemetry/traces/:traceId`: one trace as a tree with its critical path.
 * - `GET /api/v1/telemetry/traces?service=&name=&minDurationMs=&error=&stress=&tag=k=v&sinceMinutes=&limit=`
 * - `GET /api/v1/telemetry/topology?sinceMinutes=`: caller → callee edges (calls, errors,
 *   QPS, RT avg/p99), stress traffic on edges of its own.
 * - `GET /api/v1/telemetry/endpoints?service=&sinceMinutes=`: p50/p90/p99 per endpoint.
 * - `GET /api/v1/telemetry/slow-sql?sinceMinutes=&limit=`: slowest statement fingerprints.
 * - `POST /api/v1/telemetry/metrics` (SDK): per-second resource metrics of one instance
 *   (`MetricsPusher`), kept `PEAK_TELEMETRY_METRICS_RETENTION_MINUTES` (60);
 *   `GET /api/v1/telemetry/metrics/live?service=&seconds=10`: QPS, errors, blocked, RT and
 *   concurrency per service and resource summed over instances (what `peak top` shows).
 * - `GET /metrics`: Prometheus text: process figures, the collector's counters, and the backlog
 *   and in-flight messages of each mq consumer group per topic and queue.
 * - SLA alerts (admin for changes): `PUT|DELETE /api/v1/telemetry/alerts/rules/:name`,
 *   `POST /api/v1/telemetry/alerts/rules/:name/silence` `{ minutes }`,
 *   `GET /api/v1/telemetry/alerts/rules`, `GET /api/v1/telemetry/alerts/events?rule=&limit=`,
 *   `GET /api/v1/telemetry/alerts/evaluator` (is this node the evaluator). Rules are
 *   evaluated every `PEAK_TELEMETRY_ALERT_INTERVAL_MS` (default 10000) by the one node
 *   holding the evaluator lock; `PEAK_TELEMETRY_ALERT_EVALUATOR=off` keeps a node out.
 *
 * Spans older than the retention (env `PEAK_TELEMETRY_RETENTION_HOURS`, default 72) are
 * deleted in bounded batches once a minute.
 */
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import { ErrorCodes, InvalidArgumentError, PeakError } from '../../core/errors.js';
import { AdvisoryLeader, ALERT_EVALUATOR_LOCK_KEY } from '../../server/advisory-leader.js';
import type { ApiContext, ApiModule } from '../../server/http-api.js';
import type { PushedMetric } from '../metrics-pusher.js';
import { fromOtlpJson } from '../otlp-json.js';
import {
  encodeOtlpTraceResponse,
  encodeRpcStatus,
  fromOtlpProtobuf,
  OTLP_PROTOBUF_CONTENT_TYPE,
  RpcStatusCodes,
} from '../otlp-protobuf.js';
import {
  formatPrometheus,
  type MetricFamily,
  type MetricSample,
  PROMETHEUS_CONTENT_TYPE,
  processMetrics,
} from '../prometheus-format.js';
import { SPAN_KINDS, type SpanRecord } from '../span-types.js';
import { buildTraceTree } from '../trace-tree.js';
import type { TelemetryModuleOptions } from './mq-backlog-source.js';
import { ALERT_KINDS, AlertEvaluator, type AlertRuleInput } from './telemetry-alerts.js';
import { TelemetryMetricsStore } from './telemetry-metrics-store.js';
import { TelemetryStore } from './telemetry-store.js';

const gunzipAsync = promisify(gunzip);

const MAX_SPANS_PER_BATCH = 5000;

/** Consumer subscriptions whose backlog /metrics shows (one query each). */
const MQ_METRIC_SUBSCRIPTIONS = 200;
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

const spanSchema = {
  type: 'object',
  required: ['traceId', 'spanId', 'name', 'kind', 'service', 'startUs', 'durationUs'],
  properties: {
    traceId: { type: 'string', pattern: '^[0-9a-f]{32}$' },
    spanId: { type: 'string', pattern: '^[0-9a-f]{16}$' },
    parentSpanId: { type: 'string', pattern: '^[0-9a-f]{16}$' },
    name: { type: 'string', minLength: 1, maxLength: 500 },
    kind: { type: 'string', enum: SPAN_KINDS },
    service: { type: 'string', minLength: 1, maxLength: 200 },
    peerService: { type: 'string', maxLength: 200 },
    startUs: { type: 'number', minimum: 0 },
    durationUs: { type: 'number', minimum: 0 },
    error: { type: 'boolean', default: false },
    errorMessage: { type: 'string', maxLength: 2000 },
    stress: { type: 'boolean', default: false },
    attributes: {
      type: 'object',
      default: {},
      maxProperties: 64,
      // Values are checked in the handler: a JSON-schema union would be coerced by ajv.
      additionalProperties: true,
    },
  },
} as const;

const spansSchema = {
  body: {
    type: 'object',
    required: ['spans'],
    properties: { spans: { type: 'array', maxItems: MAX_SPANS_PER_BATCH, items: spanSchema } },
  },
} as const;

const ruleSchema = {
  params: {
    type: 'object',
    properties: { name: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,100}$' } },
  },
  body: {
    type: 'object',
    required: ['kind'],
    additionalProperties: false,
    properties: {
      kind: { type: 'string', enum: ALERT_KINDS },
      service: { type: 'string', minLength: 1, maxLength: 200 },
      endpoint: { type: 'string', minLength: 1, maxLength: 500 },
      resource: { type: 'string', minLength: 1, maxLength: 500 },
      group: { type: 'string', minLength: 1, maxLength: 200 },
      topic: { type: 'string', minLength: 1, maxLength: 200 },
      threshold: { type: 'number', minimum: 0 },
      minQps: { type: 'number', minimum: 0 },
      windowSeconds: { type: 'integer', minimum: 1, maximum: 259200 },
      shortWindowSeconds: { type: 'integer', minimum: 1, maximum: 259200 },
      objective: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
      latencyMs: { type: 'number', exclusiveMinimum: 0 },
      forSeconds: { type: 'integer', minimum: 0, maximum: 86400 },
      webhook: { type: 'string', maxLength: 2000 },
    },
  },
} as const;

const metricsSchema = {
  body: {
    type: 'object',
    required: ['service', 'instance', 'metrics'],
    properties: {
      service: { type: 'string', minLength: 1, maxLength: 200 },
      instance: { type: 'string', minLength: 1, maxLength: 200 },
      metrics: {
        type: 'array',
        maxItems: 5000,
        items: {
          type: 'object',
          required: ['resource', 'second', 'pass', 'block', 'success', 'error'],
          properties: {
            resource: { type: 'string', minLength: 1, maxLength: 500 },
            second: { type: 'number', minimum: 0 },
            pass: { type: 'number', minimum: 0, maximum: 2e9 },
            block: { type: 'number', minimum: 0, maximum: 2e9 },
            success: { type: 'number', minimum: 0, maximum: 2e9 },
            error: { type: 'number', minimum: 0, maximum: 2e9 },
            rtAvg: { type: 'number', minimum: 0, default: 0 },
            rtP50: { type: 'number', minimum: 0 },
            rtP99: { type: 'number', minimum: 0 },
            concurrency: { type: 'number', minimum: 0, maximum: 2e9, default: 0 },
          },
        },
      },
    },
  },
} as const;

function minutes(v: unknown, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || n > 60 * 24 * 31) {
    throw new InvalidArgumentError(
      `sinceMinutes must be a number of minutes between 0 and 44640, got '${String(v)}'`,
    );
  }
  return n;
}

function bool(name: string, v: unknown): boolean | undefined {
  if (v === undefined) return undefined;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new InvalidArgumentError(`${name} must be true or false, got '${String(v)}'`);
}

/** Collector counters (this node, since start). */
interface CollectorCounters {
  batches: number;
  received: number;
  stored: number;
  rejected: number;
  otlpBatches: number;
  pruned: number;
  metricsReceived: number;
  metricsPruned: number;
}

/** The collector, the analysis API and /metrics, reading mq's backlog through `options`. */
export function telemetryRoutes(options: TelemetryModuleOptions): ApiModule {
  return (app, ctx) => registerTelemetryRoutes(app, ctx, options);
}

function registerTelemetryRoutes(
  app: FastifyInstance,
  ctx: ApiContext,
  options: TelemetryModuleOptions,
): void {
  const store = new TelemetryStore(ctx.pool);
  const counters: CollectorCounters = {
    batches: 0,
    received: 0,
    stored: 0,
    rejected: 0,
    otlpBatches: 0,
    pruned: 0,
    metricsReceived: 0,
    metricsPruned: 0,
  };
  const metricsStore = new TelemetryMetricsStore(ctx.pool);
  const mqBacklog = options.mqBacklog(ctx.pool);
  const { spanRetentionMs, metricsRetentionMs } = ctx.settings.telemetry;
  const retentionUs = spanRetentionMs * 1000;
  let pruning = false;
  const pruneTimer = setInterval(() => {
    if (pruning) return;
    pruning = true;
    store
      .prune(Date.now() * 1000 - retentionUs)
      .then(async (n) => {
        counters.pruned += n;
        counters.metricsPruned += await metricsStore.prune(Date.now() - metricsRetentionMs);
      })
      .catch((err: unknown) => ctx.logger.warn({ err }, 'telemetry retention delete failed'))
      .finally(() => {
        pruning = false;
      });
  }, 60_000);
  pruneTimer.unref();
  const alertLogger = ctx.logger.child({ component: 'alerts' });
  const alerts = new AlertEvaluator(
    ctx.pool,
    alertLogger,
    mqBacklog,
    new AdvisoryLeader(ctx.pool, ALERT_EVALUATOR_LOCK_KEY, alertLogger),
  );
  // PEAK_TELEMETRY_ALERT_EVALUATOR=off: this node serves the API but never evaluates.
  if (ctx.settings.telemetry.alertEvaluator) alerts.start(ctx.settings.telemetry.alertIntervalMs);
  app.addHook('onClose', async () => {
    clearInterval(pruneTimer);
    await alerts.stop();
  });

  const ingest = async (spans: SpanRecord[]) => {
    counters.batches++;
    counters.received += spans.length;
    const added = await store.insert(spans);
    counters.stored += added;
    return { accepted: spans.length, stored: added };
  };

  app.post(
    '/api/v1/telemetry/spans',
    { config: { auth: 'sdk' }, schema: spansSchema, bodyLimit: 16 * 1024 * 1024 },
    async (request) => {
      const { spans } = request.body as { spans: SpanRecord[] };
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
      return ingest(spans);
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
      const client =
        err instanceof PeakError
          ? err.code === ErrorCodes.INVALID_ARGUMENT
          : typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500;
      // JSON requests and server-side failures: the API's own error handler.
      if (!isProtobufRequest(request) || !client) throw err;
      const status = err instanceof PeakError ? 400 : (err.statusCode ?? 400);
      void reply
        .status(status)
        .header('content-type', OTLP_PROTOBUF_CONTENT_TYPE)
        .send(
          encodeRpcStatus(
            status === 413 ? RpcStatusCodes.RESOURCE_EXHAUSTED : RpcStatusCodes.INVALID_ARGUMENT,
            err.message,
          ),
        );
    });

    otlp.post(
      '/v1/traces',
      { bodyLimit: OTLP_BODY_LIMIT, config: { auth: 'sdk' } },
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
        await ingest(spans);
        // OTLP's ExportTraceServiceResponse: empty means every span was accepted.
        if (protobuf) {
          void reply.header('content-type', OTLP_PROTOBUF_CONTENT_TYPE);
          return encodeOtlpTraceResponse();
        }
        void reply.header('content-type', 'application/json');
        return {};
      },
    );
  });

  app.post(
    '/api/v1/telemetry/metrics',
    { config: { auth: 'sdk' }, schema: metricsSchema, bodyLimit: 8 * 1024 * 1024 },
    async (request) => {
      const body = request.body as { service: string; instance: string; metrics: PushedMetric[] };
      counters.metricsReceived += body.metrics.length;
      const stored = await metricsStore.insert(body.service, body.instance, body.metrics);
      return { accepted: body.metrics.length, stored };
    },
  );

  app.get('/api/v1/telemetry/metrics/live', async (request) => {
    const q = request.query as Record<string, string | undefined>;
    const seconds = q.seconds === undefined ? 10 : Number(q.seconds);
    if (!Number.isInteger(seconds) || seconds < 1 || seconds > 3600) {
      throw new InvalidArgumentError(`seconds must be an integer 1..3600, got '${q.seconds}'`);
    }
    // The current second and the one before are left out: pushes leave every second.
    const untilMs = Math.floor(Date.now() / 1000) * 1000 - 1000;
    return {
      seconds,
      untilMs,
      resources: await metricsStore.live(seconds, untilMs, q.service),
    };
  });

  app.get('/api/v1/telemetry/traces/:traceId', async (request) => {
    const { traceId } = request.params as { traceId: string };
    const id = traceId.toLowerCase();
    if (!/^[0-9a-f]{32}$/.test(id)) {
      throw new InvalidArgumentError(
        `'${traceId}' is not a trace id: expected 32 hex characters (the middle part of a traceparent)`,
      );
    }
    const spans = await store.trace(id);
    if (spans.length === 0) {
      throw new PeakError(
        ErrorCodes.NOT_FOUND,
        `no spans of trace ${id} are stored: it was not sampled, not yet flushed (SDKs send every second), or is past retention`,
      );
    }
    return buildTraceTree(spans);
  });

  app.get('/api/v1/telemetry/traces', async (request) => {
    const q = request.query as Record<string, string | undefined>;
    const limit = q.limit === undefined ? 50 : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new InvalidArgumentError(`limit must be an integer 1..1000, got '${q.limit}'`);
    }
    let tag: { key: string; value: string } | undefined;
    if (q.tag !== undefined) {
      const at = q.tag.indexOf('=');
      if (at <= 0) throw new InvalidArgumentError(`tag must be key=value, got '${q.tag}'`);
      tag = { key: q.tag.slice(0, at), value: q.tag.slice(at + 1) };
    }
    const minMs = q.minDurationMs === undefined ? undefined : Number(q.minDurationMs);
    if (minMs !== undefined && !(minMs >= 0)) {
      throw new InvalidArgumentError(
        `minDurationMs must be a number ≥ 0, got '${q.minDurationMs}'`,
      );
    }
    const error = bool('error', q.error);
    const stress = bool('stress', q.stress);
    const traces = await store.search({
      sinceUs: (Date.now() - minutes(q.sinceMinutes, 60) * 60_000) * 1000,
      limit,
      ...(q.service === undefined ? {} : { service: q.service }),
      ...(q.name === undefined ? {} : { name: q.name }),
      ...(minMs === undefined ? {} : { minDurationUs: Math.round(minMs * 1000) }),
      ...(error === undefined ? {} : { error }),
      ...(stress === undefined ? {} : { stress }),
      ...(tag === undefined ? {} : { tag }),
    });
    return { traces };
  });

  app.get('/api/v1/telemetry/topology', async (request) => {
    const q = request.query as Record<string, string | undefined>;
    const nowUs = Date.now() * 1000;
    const sinceUs = nowUs - minutes(q.sinceMinutes, 15) * 60e6;
    const edges = await store.topology(sinceUs, nowUs);
    const services = [...new Set(edges.flatMap((e) => [e.caller, e.callee]))].sort();
    return { sinceUs, services, edges };
  });

  app.get('/api/v1/telemetry/endpoints', async (request) => {
    const q = request.query as Record<string, string | undefined>;
    const sinceUs = (Date.now() - minutes(q.sinceMinutes, 15) * 60_000) * 1000;
    return { endpoints: await store.endpoints(sinceUs, q.service) };
  });

  app.get('/api/v1/telemetry/slow-sql', async (request) => {
    const q = request.query as Record<string, string | undefined>;
    const limit = q.limit === undefined ? 20 : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) {
      throw new InvalidArgumentError(`limit must be an integer 1..500, got '${q.limit}'`);
    }
    const sinceUs = (Date.now() - minutes(q.sinceMinutes, 60) * 60_000) * 1000;
    return { statements: await store.slowSql(sinceUs, limit) };
  });

  app.put('/api/v1/telemetry/alerts/rules/:name', { schema: ruleSchema }, async (request) => {
    const { name } = request.params as { name: string };
    const rule = await alerts.putRule({
      ...(request.body as Omit<AlertRuleInput, 'name'>),
      name,
    });
    return { rule };
  });

  app.delete('/api/v1/telemetry/alerts/rules/:name', async (request) => {
    const { name } = request.params as { name: string };
    if (!(await alerts.deleteRule(name))) {
      throw new PeakError(
        ErrorCodes.NOT_FOUND,
        `no alert rule '${name}'; list them with GET /api/v1/telemetry/alerts/rules`,
      );
    }
    return { deleted: name };
  });

  app.post(
    '/api/v1/telemetry/alerts/rules/:name/silence',
    {
      schema: {
        body: {
          type: 'object',
          required: ['minutes'],
          properties: { minutes: { type: 'number', minimum: 0, maximum: 60 * 24 * 30 } },
        },
      },
    },
    async (request) => {
      const { name } = request.params as { name: string };
      const until = new Date(Date.now() + (request.body as { minutes: number }).minutes * 60_000);
      if (!(await alerts.silence(name, until))) {
        throw new PeakError(ErrorCodes.NOT_FOUND, `no alert rule '${name}' to silence`);
      }
      return { rule: name, silencedUntil: until.toISOString() };
    },
  );

  app.get('/api/v1/telemetry/alerts/rules', async () => ({ rules: await alerts.rules() }));

  app.get('/api/v1/telemetry/alerts/evaluator', async () => ({
    node: ctx.nodeId,
    evaluating: alerts.evaluating,
  }));

  app.get('/api/v1/telemetry/alerts/events', async (request) => {
    const q = request.query as Record<string, string | undefined>;
    const limit = q.limit === undefined ? 100 : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new InvalidArgumentError(`limit must be an integer 1..1000, got '${q.limit}'`);
    }
    return { events: await alerts.events(q.rule, limit) };
  });

  /**
   * Backlog and in-flight messages per consumer group, topic and queue (mq's own backlog
   * query), for the first {@link MQ_METRIC_SUBSCRIPTIONS} subscriptions. A failure leaves
   * the families out rather than failing the scrape.
   */
  const mqBacklogFamilies = async (): Promise<MetricFamily[]> => {
    try {
      const subs = (await mqBacklog.subscriptions()).slice(0, MQ_METRIC_SUBSCRIPTIONS);
      const backlog: MetricSample[] = [];
      const inflight: MetricSample[] = [];
      for (const { grp, topic } of subs) {
        for (const q of await mqBacklog.backlog(grp, topic)) {
          const labels = { group: grp, topic, queue: String(q.queueId) };
          backlog.push({ labels, value: q.backlog });
          inflight.push({ labels, value: q.inflight });
        }
      }
      return [
        {
          name: 'peak_mq_backlog_messages',
          help: 'Messages stored but not yet acked by the consumer group (in flight included).',
          type: 'gauge',
          samples: backlog,
        },
        {
          name: 'peak_mq_inflight_messages',
          help: 'Messages delivered to the consumer group and not yet acked or timed out.',
          type: 'gauge',
          samples: inflight,
        },
      ];
    } catch (err) {
      ctx.logger.warn({ err }, 'telemetry: reading mq backlog for /metrics failed');
      return [];
    }
  };

  app.get('/metrics', async (_request, reply) => {
    const counter = (name: string, help: string, value: number) => ({
      name,
      help,
      type: 'counter' as const,
      samples: [{ value }],
    });
    const gauge = (name: string, help: string, value: number) => ({
      name,
      help,
      type: 'gauge' as const,
      samples: [{ value }],
    });
    const text = formatPrometheus([
      ...processMetrics(),
      {
        name: 'peak_server_info',
        help: 'Constant 1, labelled with the node id and the PostgreSQL mode.',
        type: 'gauge',
        samples: [{ labels: { node: ctx.nodeId, postgres: ctx.postgresMode }, value: 1 }],
      },
      gauge(
        'peak_server_uptime_seconds',
        'Seconds since this control-plane node started.',
        (Date.now() - ctx.startedAt) / 1000,
      ),
      gauge(
        'peak_server_schema_version',
        'Schema version of the peak database.',
        ctx.schemaVersion,
      ),
      gauge(
        'peak_server_db_pool_connections',
        'Connections open in the database pool.',
        ctx.pool.totalCount,
      ),
      gauge(
        'peak_server_db_pool_waiting',
        'Queries waiting for a database connection.',
        ctx.pool.waitingCount,
      ),
      counter(
        'peak_telemetry_batches_total',
        'Span batches received (SDK and OTLP).',
        counters.batches,
      ),
      counter(
        'peak_telemetry_otlp_batches_total',
        'OTLP/HTTP requests received (JSON and protobuf).',
        counters.otlpBatches,
      ),
      counter('peak_telemetry_spans_received_total', 'Spans received.', counters.received),
      counter(
        'peak_telemetry_spans_stored_total',
        'Spans stored (duplicates skipped).',
        counters.stored,
      ),
      counter(
        'peak_telemetry_requests_rejected_total',
        'Ingest requests rejected as malformed.',
        counters.rejected,
      ),
      counter('peak_telemetry_spans_pruned_total', 'Spans deleted by retention.', counters.pruned),
      counter(
        'peak_telemetry_metrics_received_total',
        'Per-second metric records pushed by SDKs.',
        counters.metricsReceived,
      ),
      counter(
        'peak_telemetry_metrics_pruned_total',
        'Pushed metric records deleted by retention.',
        counters.metricsPruned,
      ),
      gauge(
        'peak_telemetry_alert_evaluator',
        '1 when this node is the one evaluating alert rules (holds the evaluator lock).',
        alerts.evaluating ? 1 : 0,
      ),
      ...(await mqBacklogFamilies()),
    ]);
    void reply.header('content-type', PROMETHEUS_CONTENT_TYPE);
    return text;
  });
}
