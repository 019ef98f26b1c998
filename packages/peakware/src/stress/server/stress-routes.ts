/**
 * The stress module's routes under `/api/v1/stress`: runs (register, list, one with its
 * report, the report as HTML, steer: target and stop, the control generators poll, the
 * report and isolation check when it ends), agents' heartbeats and reports, the messages of
 * a run that reached real topics (for the isolation check), and capacity figures.
 */
import { Type } from '@sinclair/typebox';
import type pg from 'pg';
import { authorize } from '../../server/access.js';
import type { ApiModule } from '../../server/http-api.js';
import { renderHtmlReport } from '../html-report.js';
import type { IsolationReport } from '../isolation-check.js';
import type { LoadModel } from '../load-model.js';
import { mergeReports } from '../merge-reports.js';
import type { StressReport } from '../stress-report.js';
import {
  agentHeartbeat,
  agentReports,
  createRun,
  finishRun,
  getRun,
  listCapacity,
  listRuns,
  putAgentReport,
  putCapacity,
  putIsolation,
  runControl,
  steerRun,
} from './stress-store.js';

/** Counts a run's messages in real topics; the mq module's, handed in by the host. */
export type StressMessageCounter = (
  pool: pg.Pool,
) => (runId: string, sinceMs: number) => Promise<{ topic: string; messages: number }[]>;

const base = '/api/v1/stress';
const RunId = Type.String({
  pattern: '^[\\w.:-]{1,100}$',
  takes: '1-100 of letters, digits, _ . : -',
});
const idParams = Type.Object({ id: RunId });
const Json = Type.Object({}, { additionalProperties: true });
const REPORT_LIMIT = 16 * 1024 * 1024;
const sdk = { auth: 'sdk' as const, scope: 'stress' as const };
/** Running and steering load tests is operations, not credential management: the operator role. */
const operator = { auth: 'operator' as const };

/** The routes, given the mq module's message counter. */
export function stressRoutes(deps: { messages: StressMessageCounter }): ApiModule {
  return (app, ctx) => {
    const leaked = deps.messages(ctx.pool);

    app.post(
      `${base}/runs`,
      {
        config: operator,
        schema: {
          summary: 'Register a run as it starts (again: no change)',
          body: Type.Object(
            { id: RunId, scenario: Type.String({ minLength: 1, maxLength: 100 }), model: Json },
            { additionalProperties: false },
          ),
        },
      },
      async (request) =>
        createRun(ctx.pool, { ...request.body, model: request.body.model as unknown as LoadModel }),
    );
    app.get(
      `${base}/runs`,
      {
        schema: {
          summary: 'The newest runs',
          querystring: Type.Object({
            limit: Type.Integer({ minimum: 1, maximum: 1000, default: 50 }),
          }),
        },
      },
      async (request) => ({ runs: await listRuns(ctx.pool, request.query.limit) }),
    );
    app.get(
      `${base}/runs/:id`,
      { schema: { summary: 'One run with its report and isolation check', params: idParams } },
      async (request) => getRun(ctx.pool, request.params.id),
    );
    app.get(
      `${base}/runs/:id/report.html`,
      {
        schema: {
          summary: "A finished run's report as a self-contained HTML page",
          params: idParams,
        },
      },
      async (request, reply) => {
        const run = await getRun(ctx.pool, request.params.id);
        if (run.report === null)
          return reply
            .type('text/plain; charset=utf-8')
            .code(409)
            .send(`run ${run.id} is ${run.status}: no report yet`);
        return reply.type('text/html; charset=utf-8').send(renderHtmlReport(run.report));
      },
    );
    app.get(
      `${base}/runs/:id/control`,
      { schema: { summary: 'The target and stop flag generators poll', params: idParams } },
      async (request) => runControl(ctx.pool, request.params.id),
    );
    app.put(
      `${base}/runs/:id/target`,
      {
        config: operator,
        schema: {
          summary:
            'Change a running run’s rate (open) or virtual users (closed); null: the model’s',
          params: idParams,
          body: Type.Object(
            { target: Type.Union([Type.Number({ minimum: 0, maximum: 10_000_000 }), Type.Null()]) },
            { additionalProperties: false },
          ),
        },
      },
      async (request) => steerRun(ctx.pool, request.params.id, { target: request.body.target }),
    );
    app.post(
      `${base}/runs/:id/stop`,
      {
        config: operator,
        schema: {
          summary: 'Ask a running run to stop',
          params: idParams,
          body: Type.Optional(Json),
        },
      },
      async (request) => steerRun(ctx.pool, request.params.id, { stop: true }),
    );
    app.put(
      `${base}/runs/:id/report`,
      {
        config: operator,
        bodyLimit: REPORT_LIMIT,
        schema: {
          summary: 'Store the report (and isolation check) of a run that ended',
          params: idParams,
          body: Type.Object(
            { report: Json, isolation: Type.Optional(Json) },
            { additionalProperties: false },
          ),
        },
      },
      async (request) => {
        await finishRun(
          ctx.pool,
          request.params.id,
          request.body.report as unknown as StressReport,
          request.body.isolation as unknown as IsolationReport | undefined,
        );
        return { id: request.params.id, status: 'finished' };
      },
    );
    app.put(
      `${base}/runs/:id/isolation`,
      {
        config: operator,
        schema: { summary: "Store a run's isolation check", params: idParams, body: Json },
      },
      async (request) => {
        await putIsolation(ctx.pool, request.params.id, request.body as unknown as IsolationReport);
        return { id: request.params.id };
      },
    );
    app.get(
      `${base}/runs/:id/leaked-messages`,
      {
        schema: {
          summary: "A run's messages found in real topics (stress flag or its id in the baggage)",
          params: idParams,
          querystring: Type.Object({ sinceMs: Type.Integer({ minimum: 0 }) }),
        },
      },
      async (request) => ({ topics: await leaked(request.params.id, request.query.sinceMs) }),
    );

    // ------------------------------------------------------------ agents
    app.post(
      `${base}/runs/:id/agents/:agent`,
      {
        config: sdk,
        schema: {
          summary: 'An agent’s heartbeat: joins it, answers its share of the run',
          params: Type.Object({ id: RunId, agent: RunId }),
          body: Type.Optional(Json),
        },
      },
      async (request) => {
        authorize(request, 'stress', request.params.id);
        return agentHeartbeat(ctx.pool, request.params.id, request.params.agent, 5000);
      },
    );
    app.put(
      `${base}/runs/:id/agents/:agent/report`,
      {
        config: sdk,
        bodyLimit: REPORT_LIMIT,
        schema: {
          summary: 'Store one agent’s report of a run; the last of its agents finishes the run',
          params: Type.Object({ id: RunId, agent: RunId }),
          body: Json,
        },
      },
      async (request) => {
        const { id, agent } = request.params;
        authorize(request, 'stress', id);
        await putAgentReport(ctx.pool, id, agent, request.body as unknown as StressReport);
        const run = await getRun(ctx.pool, id);
        const reports = await agentReports(ctx.pool, id);
        const finished = reports.length >= run.agents.length;
        if (finished) await finishRun(ctx.pool, id, mergeReports(reports), undefined);
        return { id, agent, finished };
      },
    );

    // ------------------------------------------------------------ capacity
    app.get(
      `${base}/capacity`,
      { schema: { summary: 'Every service’s measured capacity' } },
      async () => ({
        capacity: await listCapacity(ctx.pool),
      }),
    );
    app.put(
      `${base}/capacity/:service`,
      {
        config: operator,
        schema: {
          summary: 'Store a service’s measured capacity (peak capacity probe)',
          params: Type.Object({ service: Type.String({ minLength: 1, maxLength: 200 }) }),
          body: Type.Object(
            {
              instance: Type.String({ minLength: 1, maxLength: 200 }),
              maxQps: Type.Number({ minimum: 0 }),
              p99Ms: Type.Optional(Type.Number({ minimum: 0 })),
              sla: Json,
              steps: Type.Array(Json, { maxItems: 1000 }),
            },
            { additionalProperties: false },
          ),
        },
      },
      async (request) => {
        const b = request.body;
        await putCapacity(ctx.pool, {
          service: request.params.service,
          instance: b.instance,
          maxQps: b.maxQps,
          ...(b.p99Ms === undefined ? {} : { p99Ms: b.p99Ms }),
          sla: b.sla as never,
          steps: b.steps as never,
        });
        return { service: request.params.service };
      },
    );
  };
}
