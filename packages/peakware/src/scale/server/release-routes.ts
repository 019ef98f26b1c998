/**
 * Releases under `/api/v1/scale/releases`: start one (checked whole; at most one per
 * service), show a service's newest with its log, list an app's, and pause, resume or
 * abort one by hand. Each change is an admin call (audited by the HTTP layer) and a step
 * of the release's own log; weight changes are config versions in the config audit.
 */
import { Type } from '@sinclair/typebox';
import { ErrorCodes, PeakError } from '../../core/errors.js';
import type { ApiModule } from '../../server/http-api.js';
import { WithDefault } from '../../server/route-schema.js';
import { checkReleaseRequest, type ReleaseRequest } from '../release-spec.js';
import { endWithOldVersion } from './release-runner.js';
import { createRelease, latestRelease, listReleases, updateRelease } from './release-store.js';
import type { Actor, ScaleModuleDeps } from './scale-ports.js';
import { NAME } from './scale-routes.js';
import { SUPERVISOR_LIVE_MS, supervisors } from './supervisor-store.js';

const base = '/api/v1/scale/releases';
const author = Type.Optional(Type.String({ minLength: 1, maxLength: 128 }));

/** The release routes. */
export function releaseRoutes(deps: ScaleModuleDeps): ApiModule {
  return (app, ctx) => {
    const actorOf = (named: string | undefined, ip: string): Actor => ({
      author: named ?? 'admin',
      source: ip,
    });

    app.post(
      base,
      {
        schema: {
          summary:
            'Starts a release: a gray group of the new version, traffic by weight steps, analysis',
          body: Type.Unsafe<ReleaseRequest>({
            type: 'object',
            required: ['app', 'service', 'version', 'command'],
          }),
        },
      },
      async (request) => {
        const req = request.body;
        const settings = checkReleaseRequest(req);
        let fromVersion: string | undefined;
        for (const s of await supervisors(ctx.pool, req.app)) {
          if (s.age_ms > SUPERVISOR_LIVE_MS) continue;
          const svc = s.services.find((x) => x.name === req.service);
          if (svc !== undefined) fromVersion = svc.version;
        }
        if (fromVersion === undefined)
          throw new PeakError(
            ErrorCodes.SCALE_NOT_FOUND,
            `no live supervisor runs ${req.service} of app ${req.app}: start 'peak supervise' on an app file naming it`,
          );
        const { rows } = await ctx.pool.query<{ primary_version: string | null }>(
          'SELECT primary_version FROM peak.scale_services WHERE app = $1 AND service = $2',
          [req.app, req.service],
        );
        fromVersion = rows[0]?.primary_version ?? fromVersion;
        if (fromVersion === req.version)
          throw new PeakError(
            ErrorCodes.SCALE_INVALID,
            `release version: ${req.version} is already the primary version of ${req.service}`,
            { details: { path: 'version' } },
          );
        return {
          release: await createRelease(ctx.pool, req, settings, fromVersion, req.author ?? 'admin'),
        };
      },
    );

    app.get(
      `${base}/:service`,
      {
        schema: {
          summary: "A service's newest release with every step it took",
          params: Type.Object({ service: NAME }),
          querystring: Type.Object({ app: NAME }),
        },
      },
      async (request) => ({
        release: await latestRelease(ctx.pool, request.query.app, request.params.service),
      }),
    );

    app.get(
      base,
      {
        schema: {
          summary: "An app's releases, newest first",
          querystring: Type.Object({
            app: NAME,
            limit: WithDefault(Type.Integer({ minimum: 1, maximum: 1000 }), 50),
          }),
        },
      },
      async (request) => ({
        releases: await listReleases(ctx.pool, request.query.app, request.query.limit),
      }),
    );

    app.post(
      `${base}/:service/:action`,
      {
        config: { auth: 'operator' },
        schema: {
          summary: 'Pauses, resumes or aborts the release of a service in progress',
          params: Type.Object({
            service: NAME,
            action: Type.Union([
              Type.Literal('pause'),
              Type.Literal('resume'),
              Type.Literal('abort'),
            ]),
          }),
          body: Type.Object({
            app: NAME,
            author,
            reason: Type.Optional(Type.String({ maxLength: 512 })),
          }),
        },
      },
      async (request) => {
        const { service, action } = request.params;
        const { app: appName, reason } = request.body;
        const who = actorOf(request.body.author, request.ip);
        const r = await latestRelease(ctx.pool, appName, service);
        const refuse = (why: string) =>
          new PeakError(
            ErrorCodes.SCALE_CONFLICT,
            `release #${r.id} of ${service} is ${r.state}: ${why}`,
          );
        const note = reason === undefined || reason === '' ? '' : ` (${reason})`;
        if (action === 'abort') {
          if (
            !(await endWithOldVersion(
              deps,
              ctx.pool,
              r,
              'aborted',
              `by ${who.author}${note}`,
              {},
              who,
            ))
          )
            throw refuse('only a running or paused release can be aborted');
        } else if (action === 'pause') {
          const paused = await updateRelease(
            ctx.pool,
            r.id,
            ['running'],
            { state: 'paused' },
            {
              kind: 'pause',
              message: `paused by ${who.author}${note}`,
              detail: {},
              author: who.author,
            },
          );
          if (!paused) throw refuse('only a running release can be paused');
        } else {
          const resumed = await updateRelease(
            ctx.pool,
            r.id,
            ['paused'],
            { state: 'running', stepStarted: true },
            {
              kind: 'resume',
              message: `resumed by ${who.author}${note}; the step's window starts again`,
              detail: {},
              author: who.author,
            },
          );
          if (!resumed) throw refuse('only a paused release can be resumed');
        }
        return { release: await latestRelease(ctx.pool, appName, service) };
      },
    );
  };
}
