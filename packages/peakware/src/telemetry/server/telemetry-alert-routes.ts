/**
 * SLA alert routes (admin for changes): `PUT|DELETE /api/v1/telemetry/alerts/rules/:name`,
 * `POST /api/v1/telemetry/alerts/rules/:name/silence` `{ minutes }`,
 * `GET /api/v1/telemetry/alerts/rules`, `GET /api/v1/telemetry/alerts/events?rule=&limit=`,
 * `GET /api/v1/telemetry/alerts/evaluator` (is this node the evaluator). The rules are
 * evaluated by telemetry-alert-evaluator.ts.
 */
import { Type } from '@sinclair/typebox';
import { ErrorCodes, PeakError } from '../../core/errors.js';
import type { ApiApp } from '../../server/http-api.js';
import { StringEnum } from '../../server/route-schema.js';
import type { AlertEvaluator } from './telemetry-alert-evaluator.js';
import { ALERT_KINDS } from './telemetry-alert-rules.js';
import { limit } from './telemetry-route-params.js';

const ruleParams = Type.Object({
  name: Type.String({
    pattern: '^[A-Za-z0-9._-]{1,100}$',
    takes: '1-100 letters, digits or . _ -',
  }),
});

/** An SLA alert rule (which fields a kind takes is checked by telemetry-alert-rules.ts). */
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

/** The alert routes over `alerts`; `nodeId` names this node in the evaluator answer. */
export function alertRoutes(app: ApiApp, alerts: AlertEvaluator, nodeId: string): void {
  app.put(
    '/api/v1/telemetry/alerts/rules/:name',
    {
      config: { auth: 'operator' },
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
    {
      config: { auth: 'operator' },
      schema: { summary: 'Delete an alert rule', params: ruleParams },
    },
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
      config: { auth: 'operator' },
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
    async () => ({ node: nodeId, evaluating: alerts.evaluating }),
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
}
