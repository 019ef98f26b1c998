/**
 * Scaling policies under `/api/v1/scale/policies`: a policy is the config item
 * `scale/<service>` of its app; storing one here checks it whole (each problem with its
 * path, nothing stored on a problem) and publishes it with the policy schema, so a later
 * `peak config set` of the item is checked too. Every version is in the config audit.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { ErrorCodes, PeakError } from '../../core/errors.js';
import type { ApiModule } from '../../server/http-api.js';
import {
  checkScalePolicy,
  POLICY_GROUP,
  SCALE_POLICY_SCHEMA,
  type ScalePolicy,
} from '../scale-policy.js';
import type { Actor, ScaleConfigPort } from './scale-ports.js';
import { NAME } from './scale-routes.js';

const base = '/api/v1/scale/policies';

function actor(request: FastifyRequest, named: string | undefined): Actor {
  return { author: named ?? 'admin', source: request.ip };
}

/** The policy routes, over the config center's store. */
export function policyRoutes(config: ScaleConfigPort): ApiModule {
  return (app, ctx) => {
    app.put(
      `${base}/:service`,
      {
        config: { auth: 'operator' },
        schema: {
          summary: "Stores a service's scaling policy (config item scale/<service> of its app)",
          params: Type.Object({ service: NAME }),
          body: Type.Object({
            app: NAME,
            policy: Type.Unsafe<ScalePolicy>({ type: 'object' }),
            author: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
          }),
        },
      },
      async (request) => {
        const { app: appName, policy, author } = request.body;
        const problems = checkScalePolicy(policy);
        if (problems.length > 0)
          throw new PeakError(
            ErrorCodes.SCALE_INVALID,
            `policy of ${request.params.service}: ${problems.map((p) => `${p.path} ${p.reason}`).join('; ')}`,
            { details: { problems } },
          );
        const r = await config.publish(
          ctx.pool,
          { app: appName, group: POLICY_GROUP, key: request.params.service },
          {
            format: 'json',
            value: JSON.stringify(policy, null, 2),
            schema: SCALE_POLICY_SCHEMA as never,
            comment: 'scaling policy',
          },
          actor(request, author),
        );
        return { service: request.params.service, policy, version: r.version };
      },
    );

    app.get(
      `${base}/:service`,
      {
        schema: {
          summary: "A service's scaling policy as stored",
          params: Type.Object({ service: NAME }),
          querystring: Type.Object({ app: NAME }),
        },
      },
      async (request) => {
        const item = await config.get(ctx.pool, {
          app: request.query.app,
          group: POLICY_GROUP,
          key: request.params.service,
        });
        if (item === undefined)
          throw new PeakError(
            ErrorCodes.SCALE_NOT_FOUND,
            `no scaling policy for ${request.params.service} in app ${request.query.app} (config item ${POLICY_GROUP}/${request.params.service})`,
          );
        return {
          service: request.params.service,
          policy: JSON.parse(item.value) as ScalePolicy,
          version: item.version,
        };
      },
    );
  };
}
