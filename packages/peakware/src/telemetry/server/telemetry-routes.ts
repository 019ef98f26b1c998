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
import { Type } from '@sinclair/typebox';
import type { FastifyError, FastifyRequest } from 'fastify';
import { ErrorCodes, httpStatusOf, InvalidArgumentError, PeakError } from '../../core/errors.js';
import { authorize } from '../../server/access.js';
import { AdvisoryLeader, ALERT_EVALUATOR_LOCK_KEY } from '../../server/advisory-leader.js';
import type { ApiApp, ApiContext, ApiModule } from '../../server/http-api.js';
import { StringEnum, WithDefault } from '../../server/route-schema.js';
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
import { type AttributeValue, SPAN_KINDS, type SpanRecord } from '../span-types.js';
import { buildTraceTree } from '../trace-tree.js';
import type { TelemetryModuleOptions } from './mq-backlog-source.js';
import { ALERT_KINDS, AlertEvaluator } from './telemetry-alerts.js';
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

/** Query parameters of the analysis routes: how far back, in minutes. */
const sinceMinutes = (fallback: number) =>
  WithDefault(
    Type.Number({ exclusiveMinimum: 0, maximum: 60 * 24 * 31, description: 'minutes back' }),
    fallback,
  );
const limit = (fallback: number, max: number) =>
  WithDefault(Type.Integer({ minimum: 1, maximum: max }), fallback);
const flag = Type.Optional(StringEnum(['true', 'false', '1', '0']));
const ruleParams = Type.Object({
  name: Type.String({
    pattern: '^[A-Za-z0-9._-]{1,100}$',
    takes: '1-100 letters, digits or . _ -',
  }),
});

/** An SLA alert rule (which fields a kind takes is checked by telemetry-alerts.ts). */
const rule = Type.Object(
  {
    kind: StringEnum(ALERT_KINDS),
    service: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    endpoint: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })),
    resource: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })),
    group: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    topic: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    threshold: Type.Optional(Type.Number({ minimum: 0 })),
    minQps: Type.Optional(Type.Number({ minimum: 0 })),
    windowSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 259200 })),
    shortWindowSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 259200 })),
    objective: Type.Optional(Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1 })),
    latencyMs: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    forSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 86400 })),
    webhook: Type.Optional(Type.String({ maxLength: 2000 })),
  },
  { additionalProperties: false },
);

const pushedMetric = Type.Object({
  resource: Type.String({ minLength: 1, maxLength: 500 }),
  second: Type.Number({ minimum: 0, description: 'start of the second, epoch ms' }),
  pass: Type.Number({ minimum: 0, maximum: 2e9 }),
  block: Type.Number({ minimum: 0, maximum: 2e9 }),
  success: Type.Number({ minimum: 0, maximum: 2e9 }),
  error: Type.Number({ minimum: 0, maximum: 2e9 }),
  rtAvg: WithDefault(Type.Number({ minimum: 0 }), 0),
  rtP50: Type.Optional(Type.Number({ minimum: 0 })),
  rtP99: Type.Optional(Type.Number({ minimum: 0 })),
  concurrency: WithDefault(Type.Number({ minimum: 0, maximum: 2e9 }), 0),
});

/** `true`/`1`, `false`/`0`, or absent. */
function bool(v: 'true' | 'false' | '1' | '0' | undefined): boolean | undefined {
  return v === undefined ? undefined : v === 'true' || v === '1';
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
  app: ApiApp,
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
      const client =
        err instanceof PeakError
          ? err.code === ErrorCodes.INVALID_ARGUMENT
          : typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500;
      // JSON requests and server-side failures: the API's own error handler.
      if (!isProtobufRequest(request) || !client) throw err;
      const status = err instanceof PeakError ? httpStatusOf(err.code) : (err.statusCode ?? 400);
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
  });

  app.post(
    '/api/v1/telemetry/metrics',
    {
      config: { auth: 'sdk', scope: 'telemetry' },
      schema: {
        summary: "One instance's per-second resource metrics (the SDK's MetricsPusher)",
        body: Type.Object({
          service: Type.String({ minLength: 1, maxLength: 200 }),
          instance: Type.String({ minLength: 1, maxLength: 200 }),
          metrics: Type.Array(pushedMetric, { maxItems: 5000 }),
        }),
      },
      bodyLimit: 8 * 1024 * 1024,
    },
    async (request) => {
      const body = request.body;
      authorize(request, 'telemetry', body.service);
      counters.metricsReceived += body.metrics.length;
      const stored = await metricsStore.insert(body.service, body.instance, body.metrics);
      return { accepted: body.metrics.length, stored };
    },
  );

  app.get(
    '/api/v1/telemetry/metrics/live',
    {
      schema: {
        summary:
          'QPS, errors, blocked, RT and concurrency per service and resource over the last seconds (peak top)',
        querystring: Type.Object({
          seconds: WithDefault(Type.Integer({ minimum: 1, maximum: 3600 }), 10),
          service: Type.Optional(Type.String()),
        }),
      },
    },
    async (request) => {
      const q = request.query;
      const seconds = q.seconds;
      // The current second and the one before are left out: pushes leave every second.
      const untilMs = Math.floor(Date.now() / 1000) * 1000 - 1000;
      return {
        seconds,
        untilMs,
        resources: await metricsStore.live(seconds, untilMs, q.service),
      };
    },
  );

  app.get(
    '/api/v1/telemetry/traces/:traceId',
    {
      schema: {
        summary: 'One trace as a tree of spans, with its critical path',
        params: Type.Object({
          traceId: Type.String({
            pattern: '^[0-9a-fA-F]{32}$',
            takes: '32 hex characters (the middle part of a traceparent)',
          }),
        }),
      },
    },
    async (request) => {
      const id = request.params.traceId.toLowerCase();
      const spans = await store.trace(id);
      if (spans.length === 0) {
        throw new PeakError(
          ErrorCodes.NOT_FOUND,
          `no spans of trace ${id} are stored: it was not sampled, not yet flushed (SDKs send every second), or is past retention`,
        );
      }
      return buildTraceTree(spans);
    },
  );

  app.get(
    '/api/v1/telemetry/traces',
    {
      schema: {
        summary: 'Traces matching a search, newest first',
        querystring: Type.Object({
          service: Type.Optional(Type.String()),
          name: Type.Optional(Type.String({ description: 'a span name' })),
          minDurationMs: Type.Optional(Type.Number({ minimum: 0 })),
          error: flag,
          stress: flag,
          tag: Type.Optional(
            Type.String({ pattern: '^[^=]+=', takes: 'key=value (an attribute of a span)' }),
          ),
          sinceMinutes: sinceMinutes(60),
          limit: limit(50, 1000),
        }),
      },
    },
    async (request) => {
      const q = request.query;
      let tag: { key: string; value: string } | undefined;
      if (q.tag !== undefined) {
        const at = q.tag.indexOf('=');
        tag = { key: q.tag.slice(0, at), value: q.tag.slice(at + 1) };
      }
      const minMs = q.minDurationMs;
      const error = bool(q.error);
      const stress = bool(q.stress);
      const traces = await store.search({
        sinceUs: (Date.now() - q.sinceMinutes * 60_000) * 1000,
        limit: q.limit,
        ...(q.service === undefined ? {} : { service: q.service }),
        ...(q.name === undefined ? {} : { name: q.name }),
        ...(minMs === undefined ? {} : { minDurationUs: Math.round(minMs * 1000) }),
        ...(error === undefined ? {} : { error }),
        ...(stress === undefined ? {} : { stress }),
        ...(tag === undefined ? {} : { tag }),
      });
      return { traces };
    },
  );

  app.get(
    '/api/v1/telemetry/topology',
    {
      schema: {
        summary: 'Caller → callee edges with calls, errors, QPS and RT (stress traffic apart)',
        querystring: Type.Object({ sinceMinutes: sinceMinutes(15) }),
      },
    },
    async (request) => {
      const nowUs = Date.now() * 1000;
      const sinceUs = nowUs - request.query.sinceMinutes * 60e6;
      const edges = await store.topology(sinceUs, nowUs);
      const services = [...new Set(edges.flatMap((e) => [e.caller, e.callee]))].sort();
      return { sinceUs, services, edges };
    },
  );

  app.get(
    '/api/v1/telemetry/endpoints',
    {
      schema: {
        summary: 'p50/p90/p99 per endpoint',
        querystring: Type.Object({
          service: Type.Optional(Type.String()),
          sinceMinutes: sinceMinutes(15),
        }),
      },
    },
    async (request) => {
      const q = request.query;
      const sinceUs = (Date.now() - q.sinceMinutes * 60_000) * 1000;
      return { endpoints: await store.endpoints(sinceUs, q.service) };
    },
  );

  app.get(
    '/api/v1/telemetry/slow-sql',
    {
      schema: {
        summary: 'The slowest statement fingerprints',
        querystring: Type.Object({ sinceMinutes: sinceMinutes(60), limit: limit(20, 500) }),
      },
    },
    async (request) => {
      const q = request.query;
      const sinceUs = (Date.now() - q.sinceMinutes * 60_000) * 1000;
      return { statements: await store.slowSql(sinceUs, q.limit) };
    },
  );

  app.put(
    '/api/v1/telemetry/alerts/rules/:name',
    {
      schema: {
        summary: 'Create or replace an SLA alert rule',
        params: ruleParams,
        body: rule,
      },
    },
    async (request) => ({
      rule: await alerts.putRule({ ...request.body, name: request.params.name }),
    }),
  );

  app.delete(
    '/api/v1/telemetry/alerts/rules/:name',
    { schema: { summary: 'Delete an alert rule', params: ruleParams } },
    async (request) => {
      const { name } = request.params;
      if (!(await alerts.deleteRule(name))) {
        throw new PeakError(
          ErrorCodes.NOT_FOUND,
          `no alert rule '${name}'; list them with GET /api/v1/telemetry/alerts/rules`,
        );
      }
      return { deleted: name };
    },
  );

  app.post(
    '/api/v1/telemetry/alerts/rules/:name/silence',
    {
      schema: {
        summary: "Record a rule's events without calling its webhook for a while",
        params: ruleParams,
        body: Type.Object({ minutes: Type.Number({ minimum: 0, maximum: 60 * 24 * 30 }) }),
      },
    },
    async (request) => {
      const { name } = request.params;
      const until = new Date(Date.now() + request.body.minutes * 60_000);
      if (!(await alerts.silence(name, until))) {
        throw new PeakError(ErrorCodes.NOT_FOUND, `no alert rule '${name}' to silence`);
      }
      return { rule: name, silencedUntil: until.toISOString() };
    },
  );

  app.get(
    '/api/v1/telemetry/alerts/rules',
    { schema: { summary: 'The alert rules' } },
    async () => ({ rules: await alerts.rules() }),
  );

  app.get(
    '/api/v1/telemetry/alerts/evaluator',
    { schema: { summary: 'Whether this node is the one evaluating alert rules' } },
    async () => ({ node: ctx.nodeId, evaluating: alerts.evaluating }),
  );

  app.get(
    '/api/v1/telemetry/alerts/events',
    {
      schema: {
        summary: 'Fired and resolved events, newest first',
        querystring: Type.Object({
          rule: Type.Optional(Type.String()),
          limit: limit(100, 1000),
        }),
      },
    },
    async (request) => ({
      events: await alerts.events(request.query.rule, request.query.limit),
    }),
  );

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

  app.get(
    '/metrics',
    {
      config: { auth: 'public' },
      schema: {
        summary:
          'Prometheus text: process figures, collector counters, mq backlog per group, topic and queue',
      },
    },
    async (_request, reply) => {
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
        counter(
          'peak_telemetry_spans_pruned_total',
          'Spans deleted by retention.',
          counters.pruned,
        ),
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
    },
  );
}
