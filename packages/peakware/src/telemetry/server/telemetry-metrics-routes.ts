/**
 * Per-second resource metrics, pushed and read back:
 *
 * - `POST /api/v1/telemetry/metrics` (SDK): per-second resource metrics of one instance
 *   (`MetricsPusher`), kept `PEAK_TELEMETRY_METRICS_RETENTION_MINUTES` (60);
 * - `GET /api/v1/telemetry/metrics/live?service=&seconds=10`: QPS, errors, blocked, RT and
 *   concurrency per service and resource summed over instances (what `peak top` shows).
 */
import { Type } from '@sinclair/typebox';
import { ErrorCodes, PeakError } from '../../core/errors.js';
import { HISTOGRAM_BUCKETS, sparseHistogramProblem } from '../../core/latency-histogram.js';
import { authorize } from '../../server/access.js';
import type { ApiApp } from '../../server/http-api.js';
import { WithDefault } from '../../server/route-schema.js';
import type { CollectorCounters } from './telemetry-collector-counters.js';
import type { TelemetryMetricsStore } from './telemetry-metrics-store.js';

/** One resource's figures for one second, as an instance pushes them. */
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
  rtHist: Type.Optional(
    Type.Array(Type.Integer({ minimum: 0, maximum: 2e9 }), {
      maxItems: 2 * HISTOGRAM_BUCKETS,
      description:
        "the second's RT histogram: core's latency histogram as [bucket index, count, ...] pairs, indexes ascending",
    }),
  ),
  concurrency: WithDefault(Type.Number({ minimum: 0, maximum: 2e9 }), 0),
});

/** The metrics push and live-read routes over `metricsStore`. */
export function metricsRoutes(
  app: ApiApp,
  metricsStore: TelemetryMetricsStore,
  counters: CollectorCounters,
): void {
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
      body.metrics.forEach((m, k) => {
        const problem = m.rtHist === undefined ? undefined : sparseHistogramProblem(m.rtHist);
        if (problem !== undefined)
          throw new PeakError(
            ErrorCodes.INVALID_ARGUMENT,
            `metrics[${k}].rtHist (resource '${m.resource}') ${problem}; send the pairs sparseHistogram() gives, or leave rtHist out (nothing of this push was stored)`,
            { details: { input: `metrics[${k}].rtHist` } },
          );
      });
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
}
