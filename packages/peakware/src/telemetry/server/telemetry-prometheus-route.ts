/**
 * `GET /metrics`: Prometheus text with the process and runtime figures (event-loop delay and
 * utilisation, GC pauses by kind, heap), the HTTP request latency by route, this node's
 * server and collector counters, its failed and refused authentications, whether it
 * evaluates alerts, the backlog and in-flight messages of each mq consumer group per topic
 * and queue, and this node's mq traffic: messages produced, delivered, acked, nacked and
 * dead-lettered by topic and group (both read through {@link MqBacklogSource}).
 */
import type { ApiApp, ApiContext } from '../../server/http-api.js';
import { HTTP_LATENCY_BUCKETS, type HttpLatencySeries } from '../../server/http-request-metrics.js';
import {
  formatPrometheus,
  type MetricFamily,
  type MetricSample,
  PROMETHEUS_CONTENT_TYPE,
  processMetrics,
} from '../prometheus-format.js';
import { startRuntimeMetrics } from '../runtime-metrics.js';
import type { MqBacklogSource } from './mq-backlog-source.js';
import type { AlertEvaluator } from './telemetry-alert-evaluator.js';
import type { CollectorCounters } from './telemetry-collector-counters.js';

/** The node's failed and refused authentications, when the host counts them. */
function authFamilies(ctx: ApiContext): MetricFamily[] {
  const c = ctx.authCounters?.();
  if (c === undefined) return [];
  const counter = (name: string, help: string, value: number): MetricFamily => ({
    name,
    help,
    type: 'counter',
    samples: [{ value }],
  });
  return [
    counter(
      'peak_auth_failures_total',
      'Requests with a wrong, expired or revoked credential.',
      c.failures,
    ),
    counter(
      'peak_auth_rate_limited_total',
      'Requests refused because their address had too many failed authentications.',
      c.rateLimited,
    ),
    counter(
      'peak_auth_denied_total',
      'Requests whose working credential may not call the route (role or grant).',
      c.denied,
    ),
  ];
}

/** Consumer subscriptions whose backlog /metrics shows (one query each). */
const MQ_METRIC_SUBSCRIPTIONS = 200;

/** The HTTP core's latency series as the Prometheus histogram of that name. */
function httpLatencyFamily(series: HttpLatencySeries[]): MetricFamily {
  const samples: MetricSample[] = [];
  for (const s of series) {
    s.cumulative.forEach((value, i) => {
      const le = i < HTTP_LATENCY_BUCKETS.length ? String(HTTP_LATENCY_BUCKETS[i]) : '+Inf';
      samples.push({ suffix: '_bucket', labels: { ...s.labels, le }, value });
    });
    samples.push({ suffix: '_sum', labels: s.labels, value: s.sum });
    samples.push({ suffix: '_count', labels: s.labels, value: s.count });
  }
  return {
    name: 'peak_http_request_duration_seconds',
    help: 'Control-plane HTTP request latency by method, route template and status class.',
    type: 'histogram',
    samples,
  };
}

/** What each traffic event's counter says. */
const MQ_TRAFFIC_HELP: Record<string, string> = {
  produced: 'Messages this node accepted from producers, by topic.',
  delivered: 'Deliveries this node handed to consumers (retries included), by topic and group.',
  acked: 'Messages consumers acked on this node, by topic and group.',
  nacked: 'Messages consumers nacked on this node (retried or dead-lettered), by topic and group.',
  dead_lettered:
    'Messages this node moved to a dead-letter queue (retries used up, or never acked), by topic and group.',
};

/**
 * The node's mq traffic as one counter family per event, every family present (empty
 * until something is counted) so dashboards and alerts find their series' names.
 */
function mqTrafficFamilies(mq: MqBacklogSource): MetricFamily[] {
  const samples = mq.traffic?.() ?? [];
  return Object.entries(MQ_TRAFFIC_HELP).map(([event, help]) => ({
    name: `peak_mq_messages_${event}_total`,
    help,
    type: 'counter' as const,
    samples: samples
      .filter((s) => s.event === event)
      .map((s): MetricSample => {
        const labels: Record<string, string> = { topic: s.topic };
        if (s.group !== null) labels.group = s.group;
        return { labels, value: s.value };
      }),
  }));
}

/** The `/metrics` route. */
export function prometheusRoute(
  app: ApiApp,
  ctx: ApiContext,
  counters: CollectorCounters,
  alerts: AlertEvaluator,
  mqBacklog: MqBacklogSource,
): void {
  const runtime = startRuntimeMetrics();
  app.addHook('onClose', async () => runtime.stop());
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
        ...runtime.families(),
        httpLatencyFamily(ctx.httpMetrics?.snapshot() ?? []),
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
        ...authFamilies(ctx),
        ...(await mqBacklogFamilies()),
        ...mqTrafficFamilies(mqBacklog),
      ]);
      void reply.header('content-type', PROMETHEUS_CONTENT_TYPE);
      return text;
    },
  );
}
