/**
 * `GET /api/v1/console/metrics`: the metrics history (per second for the last hour, per
 * minute for a day, per hour for 7 days), grouped in total, per service or per resource;
 * what the console's charts draw, live ones asking every second for the seconds since their
 * last point.
 */
import { Type } from '@sinclair/typebox';
import type { ApiApp } from '../../server/http-api.js';
import { StringEnum } from '../../server/route-schema.js';
import type { MetricsHistory } from '../console-views.js';
import type { MetricsHistoryStore } from './metrics-history.js';

/** Registers the metrics history route. */
export function metricsRoutes(app: ApiApp, history: MetricsHistoryStore): void {
  app.get(
    '/api/v1/console/metrics',
    {
      schema: {
        summary:
          'Metrics history: calls, errors, blocked per second, mean RT and p99, per 1 s (last hour), 1 min (a day) or 1 h (7 days)',
        querystring: Type.Object({
          from: Type.Optional(Type.Integer({ minimum: 0, description: 'epoch ms' })),
          to: Type.Optional(Type.Integer({ minimum: 0, description: 'epoch ms' })),
          by: Type.Optional(StringEnum(['total', 'service', 'resource'])),
          service: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
          resource: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
          step: Type.Optional(
            Type.Union([Type.Literal(1), Type.Literal(60), Type.Literal(3600)], {
              takes: '1, 60 or 3600',
            }),
          ),
        }),
      },
    },
    async (request): Promise<MetricsHistory> => {
      const q = request.query;
      return history.query(
        {
          ...(q.from === undefined ? {} : { from: q.from }),
          ...(q.to === undefined ? {} : { to: q.to }),
          ...(q.by === undefined ? {} : { by: q.by }),
          ...(q.service === undefined ? {} : { service: q.service }),
          ...(q.resource === undefined ? {} : { resource: q.resource }),
          ...(q.step === undefined ? {} : { step: q.step }),
        },
        Date.now(),
      );
    },
  );
}
