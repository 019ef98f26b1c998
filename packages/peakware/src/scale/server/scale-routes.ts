/**
 * The scale module's routes under `/api/v1/scale`: supervisors' reports (an app credential
 * with a `scale` grant covering every service the report names; the answer is their
 * orders), an app's status, and setting a service's count by hand (operator; recorded in the
 * decision history like the evaluator's own).
 */
import { Type } from '@sinclair/typebox';
import type pg from 'pg';
import { authorize } from '../../server/access.js';
import type { ApiModule } from '../../server/http-api.js';
import { WithDefault } from '../../server/route-schema.js';
import type { SupervisorReport } from '../supervisor-report.js';
import { decisionHistory, recordDecision } from './decision-store.js';
import {
  type GrayGroup,
  liveInstances,
  ordersFor,
  saveReport,
  scaleStatus,
} from './supervisor-store.js';

const base = '/api/v1/scale';
/** Names of apps, services and versions. */
export const NAME = Type.String({
  pattern: '^[A-Za-z0-9_.-]{1,128}$',
  takes: '1-128 letters, digits or _ . -',
});
const Instance = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 256 }),
  service: NAME,
  version: NAME,
  pid: Type.Integer({ minimum: 0 }),
  state: Type.Union([
    Type.Literal('starting'),
    Type.Literal('running'),
    Type.Literal('stopping'),
    Type.Literal('backoff'),
  ]),
  restarts: Type.Integer({ minimum: 0 }),
  startedAt: Type.Number(),
  cpuPercent: Type.Optional(Type.Number({ minimum: 0 })),
  adopted: Type.Boolean(),
});

/** The supervisor routes; the evaluator and releases add theirs in their own files. */
export function supervisorRoutes(gray: GrayGroupsSource): ApiModule {
  return (app, ctx) => {
    app.post(
      `${base}/reports`,
      {
        config: { auth: 'sdk', scope: 'scale' },
        schema: {
          summary: "A supervisor's report of its instances; answered with what it should run",
          body: Type.Object({
            supervisorId: Type.String({ minLength: 1, maxLength: 256 }),
            app: NAME,
            host: Type.String({ minLength: 1, maxLength: 256 }),
            pid: Type.Integer({ minimum: 0 }),
            services: Type.Array(
              Type.Object({
                name: NAME,
                version: NAME,
                command: Type.String({ minLength: 1, maxLength: 4096 }),
                instances: Type.Integer({ minimum: 0, maximum: 1000 }),
              }),
              { maxItems: 256 },
            ),
            instances: Type.Array(Instance, { maxItems: 4096 }),
          }),
        },
      },
      async (request) => {
        const report = request.body as SupervisorReport;
        const named = new Set([
          ...report.services.map((s) => s.name),
          ...report.instances.map((i) => i.service),
        ]);
        for (const service of named) authorize(request, 'scale', service);
        await saveReport(ctx.pool, report);
        return ordersFor(ctx.pool, report, await gray(ctx.pool, report.app));
      },
    );

    app.get(
      `${base}/status`,
      {
        schema: {
          summary: "An app's supervisors, services and instances",
          querystring: Type.Object({ app: NAME }),
        },
      },
      async (request) => scaleStatus(ctx.pool, request.query.app),
    );

    app.get(
      `${base}/history`,
      {
        schema: {
          summary: "An app's scaling decisions with their figures, newest first",
          querystring: Type.Object({
            app: NAME,
            service: Type.Optional(NAME),
            limit: WithDefault(Type.Integer({ minimum: 1, maximum: 1000 }), 50),
          }),
        },
      },
      async (request) => ({ decisions: await decisionHistory(ctx.pool, request.query) }),
    );

    app.put(
      `${base}/services/:service/instances`,
      {
        config: { auth: 'operator' },
        schema: {
          summary:
            "Sets a supervised service's instance count by hand (the evaluator may change it)",
          params: Type.Object({ service: NAME }),
          body: Type.Object({
            app: NAME,
            count: Type.Integer({ minimum: 0, maximum: 1000 }),
            author: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
          }),
        },
      },
      async (request) => {
        const { app: appName, count, author } = request.body;
        const { service } = request.params;
        const current = (await liveInstances(ctx.pool, appName, service)).filter(
          (i) => i.state !== 'stopping',
        ).length;
        await ctx.pool.query(
          `INSERT INTO peak.scale_services (app, service, desired, last_change_at)
           VALUES ($1, $2, $3, now())
           ON CONFLICT (app, service) DO UPDATE SET desired = $3, last_change_at = now()`,
          [appName, service, count],
        );
        const decision = await recordDecision(ctx.pool, {
          app: appName,
          service,
          action: count > current ? 'out' : count < current ? 'in' : 'hold',
          current,
          desired: count,
          reason: `set by hand (${author ?? 'admin'})`,
          figures: {},
          node: ctx.nodeId,
        });
        return { decision };
      },
    );
  };
}

/** The gray groups of an app's releases in progress (the release module's, passed in). */
export type GrayGroupsSource = (pool: pg.Pool, app: string) => Promise<GrayGroup[]>;
