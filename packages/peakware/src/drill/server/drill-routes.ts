/**
 * The drill module's routes under `/api/v1/drill`: agents' reports (SDK, no admin token),
 * fault injection, stop and status, and plans (store, list, show, diff, apply, rollback).
 * Changes need an operator token (the operator role or admin) and are audited with the
 * author the caller names (the token's name when it names none).
 */
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { authorize, callerName } from '../../server/access.js';
import type { ApiModule } from '../../server/http-api.js';
import { WithDefault } from '../../server/route-schema.js';
import type { AgentReport } from '../drill-agent.js';
import type { FaultRequest } from '../fault-spec.js';
import type { PlanSpec } from '../plan-spec.js';
import type { Actor, ConfigPort } from './config-port.js';
import {
  appsWithFaults,
  drillStatus,
  injectFaults,
  pruneReports,
  saveReport,
  stopFaults,
  sweepFaults,
} from './fault-store.js';
import { cancelSchedule, listSchedules, runDueSchedules, schedulePlan } from './plan-schedules.js';
import {
  applyPlan,
  deletePlan,
  diffPlan,
  getPlan,
  listPlans,
  planRuns,
  putPlan,
  rollbackPlan,
} from './plan-store.js';

const base = '/api/v1/drill';
const NAME = Type.String({
  pattern: '^[A-Za-z0-9_.-]{1,128}$',
  takes: '1-128 letters, digits or _ . -',
});
const author = Type.Optional(Type.String({ minLength: 1, maxLength: 128 }));
/** Injecting and stopping faults and managing plans is operations: the operator role. */
const operator = { auth: 'operator' as const };
const comment = WithDefault(Type.String({ maxLength: 1024 }), '');
const HeldFaults = Type.Array(Type.Unsafe<AgentReport['active'][number]>({ type: 'object' }), {
  maxItems: 1000,
});

function actor(request: FastifyRequest, named: string | undefined): Actor {
  const agent = request.headers['user-agent'];
  return {
    author: named ?? callerName(request),
    source: `${request.ip}${typeof agent === 'string' ? ` ${agent.slice(0, 128)}` : ''}`,
  };
}

/** The drill module's routes and its sweeper of expired faults, over the config center's store. */
export function drillRoutes(cfg: ConfigPort): ApiModule {
  return (app, ctx) => {
    let sweeper: NodeJS.Timeout | undefined;
    const system: Actor = { author: 'peak-drill', source: ctx.nodeId };
    const sweep = async () => {
      for (const a of await appsWithFaults(ctx.pool)) await sweepFaults(cfg, ctx.pool, a, system);
      await pruneReports(ctx.pool);
    };
    // Scheduled plan runs: due ones looked for every second on every node (one claims each).
    let scheduler: NodeJS.Timeout | undefined;
    let scheduling: Promise<unknown> | undefined;
    const runSchedules = () => {
      scheduling ??= runDueSchedules(cfg, ctx.pool, ctx.nodeId, ctx.logger)
        .catch((err) => ctx.logger.warn({ err }, 'drill: scheduled plan runs failed'))
        .finally(() => {
          scheduling = undefined;
        });
    };
    app.addHook('onReady', async () => {
      sweeper = setInterval(() => {
        sweep().catch((err) => ctx.logger.warn({ err }, 'drill sweep failed'));
      }, 15_000);
      sweeper.unref();
      scheduler = setInterval(runSchedules, 1000);
      scheduler.unref();
    });
    app.addHook('preClose', async () => {
      clearInterval(scheduler);
      await scheduling;
    });
    app.addHook('onClose', async () => clearInterval(sweeper));

    app.post(
      `${base}/reports`,
      {
        config: { auth: 'sdk', scope: 'drill' },
        schema: {
          summary: "An agent's report: who it is and which faults it holds",
          body: Type.Object({
            app: NAME,
            instanceId: Type.String({ minLength: 1, maxLength: 256 }),
            boot: Type.String({ minLength: 1, maxLength: 64 }),
            service: Type.Optional(Type.String({ maxLength: 256 })),
            tags: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 32 }),
            active: HeldFaults,
            ended: HeldFaults,
            at: Type.Number(),
          }),
        },
      },
      async (request) => {
        // `drill:<service>` covers the instances of that service (of the app, without one).
        authorize(request, 'drill', request.body.service ?? request.body.app);
        await saveReport(ctx.pool, request.body as AgentReport);
        return { ok: true };
      },
    );

    app.get(
      `${base}/status`,
      {
        schema: {
          summary: "An app's faults and what every instance reports holding",
          querystring: Type.Object({ app: NAME }),
        },
      },
      async (request) => drillStatus(cfg, ctx.pool, request.query.app),
    );

    app.post(
      `${base}/faults`,
      {
        config: operator,
        schema: {
          summary: 'Inject faults into the live instances their scope names (all or none)',
          body: Type.Object({
            app: NAME,
            faults: Type.Array(Type.Unsafe<FaultRequest>({ type: 'object' }), {
              minItems: 1,
              maxItems: 100,
            }),
            author,
          }),
        },
      },
      async (request) =>
        injectFaults(
          cfg,
          ctx.pool,
          request.body.app,
          request.body.faults,
          actor(request, request.body.author),
        ),
    );

    app.post(
      `${base}/faults/stop`,
      {
        config: operator,
        schema: {
          summary: "Stop an app's faults: those of one drill, some ids, or all",
          body: Type.Object({
            app: NAME,
            drill: Type.Optional(NAME),
            ids: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 1000 })),
            author,
          }),
        },
      },
      async (request) => {
        const b = request.body;
        return stopFaults(
          cfg,
          ctx.pool,
          b.app,
          {
            ...(b.drill === undefined ? {} : { drill: b.drill }),
            ...(b.ids === undefined ? {} : { ids: b.ids }),
          },
          actor(request, b.author),
        );
      },
    );

    // ------------------------------------------------------------ plans
    const planParams = Type.Object({ name: NAME });
    app.get(`${base}/plans`, { schema: { summary: 'Every plan' } }, async () => ({
      plans: await listPlans(ctx.pool),
    }));
    app.put(
      `${base}/plans/:name`,
      {
        config: operator,
        schema: {
          summary: 'Store a plan (checked as a whole; nothing is applied)',
          params: planParams,
          body: Type.Object({
            plan: Type.Unsafe<PlanSpec>({ type: 'object' }),
            author,
          }),
        },
      },
      async (request) => ({
        plan: await putPlan(
          ctx.pool,
          { ...request.body.plan, name: request.params.name },
          actor(request, request.body.author),
        ),
      }),
    );
    app.get(
      `${base}/plans/:name`,
      { schema: { summary: 'A plan and its runs', params: planParams } },
      async (request) => ({
        plan: await getPlan(ctx.pool, request.params.name),
        runs: await planRuns(ctx.pool, request.params.name),
        schedules: await listSchedules(ctx.pool, { plan: request.params.name }),
      }),
    );
    const when = Type.Union([Type.String({ minLength: 1, maxLength: 64 }), Type.Number()], {
      takes: 'an ISO time (2026-12-12T20:00:00+08:00) or epoch milliseconds',
    });
    const epochMs = (v: string | number) => (typeof v === 'number' ? v : Date.parse(v));
    app.post(
      `${base}/plans/:name/schedules`,
      {
        config: operator,
        schema: {
          summary: "Schedule a plan's apply (and its rollback) or rollback for a later time",
          params: planParams,
          body: Type.Object({
            action: WithDefault(
              Type.Union([Type.Literal('apply'), Type.Literal('rollback')]),
              'apply',
            ),
            at: when,
            rollbackAt: Type.Optional(when),
            everyMs: Type.Optional(
              Type.Integer({
                minimum: 60_000,
                description: 'repeat every this many ms (a day: 86400000); the rollback too',
              }),
            ),
            author,
            comment,
          }),
        },
      },
      async (request) => {
        const b = request.body;
        return {
          schedules: await schedulePlan(
            ctx.pool,
            request.params.name,
            {
              action: b.action,
              at: epochMs(b.at),
              ...(b.rollbackAt === undefined ? {} : { rollbackAt: epochMs(b.rollbackAt) }),
              ...(b.everyMs === undefined ? {} : { everyMs: b.everyMs }),
              comment: b.comment,
            },
            actor(request, b.author),
          ),
        };
      },
    );
    app.get(
      `${base}/schedules`,
      {
        schema: {
          summary: 'Scheduled plan runs, soonest first: pending and running, or all',
          querystring: Type.Object({
            plan: Type.Optional(NAME),
            all: WithDefault(Type.Boolean(), false),
          }),
        },
      },
      async (request) => ({
        schedules: await listSchedules(ctx.pool, {
          ...(request.query.plan === undefined ? {} : { plan: request.query.plan }),
          all: request.query.all,
        }),
      }),
    );
    app.delete(
      `${base}/schedules/:id`,
      {
        config: operator,
        schema: {
          summary: 'Cancel a pending scheduled plan run',
          params: Type.Object({ id: Type.Integer({ minimum: 1 }) }),
          querystring: Type.Object({ author }),
        },
      },
      async (request) => ({
        schedule: await cancelSchedule(
          ctx.pool,
          request.params.id,
          actor(request, request.query.author),
        ),
      }),
    );
    app.delete(
      `${base}/plans/:name`,
      {
        config: operator,
        schema: { summary: 'Delete a plan (its runs stay)', params: planParams },
      },
      async (request) => {
        await deletePlan(ctx.pool, request.params.name);
        return { deleted: request.params.name };
      },
    );
    app.get(
      `${base}/plans/:name/diff`,
      { schema: { summary: 'What applying the plan would change', params: planParams } },
      async (request) => ({ changes: await diffPlan(cfg, ctx.pool, request.params.name) }),
    );
    app.post(
      `${base}/plans/:name/apply`,
      {
        config: operator,
        schema: {
          summary: 'Apply a plan: every change in one config transaction, or none',
          params: planParams,
          body: Type.Object({ author, comment }),
        },
      },
      async (request) =>
        applyPlan(
          cfg,
          ctx.pool,
          request.params.name,
          actor(request, request.body.author),
          request.body.comment,
        ),
    );
    app.post(
      `${base}/plans/:name/rollback`,
      {
        config: operator,
        schema: {
          summary: "Roll a plan's last apply back to the exact versions before it",
          params: planParams,
          body: Type.Object({
            author,
            comment,
            force: WithDefault(Type.Boolean(), false),
          }),
        },
      },
      async (request) =>
        rollbackPlan(cfg, ctx.pool, request.params.name, actor(request, request.body.author), {
          force: request.body.force,
          comment: request.body.comment,
        }),
    );
  };
}
