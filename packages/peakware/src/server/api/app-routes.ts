/**
 * Apps and their credentials (`peak app ...`, `AdminClient.apps`): credential management,
 * so every route here needs the admin role. A credential is in the answer that issued it
 * and nowhere else (never in a list, never in a log).
 */
import { Type } from '@sinclair/typebox';
import { callerName } from '../access.js';
import {
  APP_NAME,
  createApp,
  DEFAULT_ROTATION_OVERLAP_MS,
  listApps,
  revokeAppCredentials,
  rotateAppCredential,
  setAppScopes,
} from '../app-credentials.js';
import type { Authenticator } from '../authenticator.js';
import type { ApiModule } from '../http-api.js';

const ADMIN = { config: { auth: 'admin' as const } };
const appName = Type.String({
  pattern: APP_NAME.source,
  takes: 'a letter, then up to 127 letters, digits or _ . -',
});
const can = Type.Array(Type.String({ minLength: 1, maxLength: 300 }), {
  maxItems: 200,
  takes: "grants such as 'register:shop.order', 'produce:orders', 'consume:orders/points'",
});
const appParams = Type.Object({ app: appName });

/** The app routes; `authenticator` forgets its cache whenever a credential or grant changes. */
export function appRoutes(authenticator: Authenticator): ApiModule {
  return (app, ctx) => {
    app.post(
      '/api/v1/apps',
      {
        ...ADMIN,
        schema: {
          summary: 'Create an app with its grants; answers its first credential (shown once)',
          body: Type.Object({ name: appName, can }),
        },
      },
      async (request) => {
        const created = await createApp(
          ctx.pool,
          request.body.name,
          request.body.can,
          callerName(request),
        );
        ctx.logger.info(
          { app: created.app, can: created.can, by: callerName(request) },
          'app created',
        );
        return created;
      },
    );

    app.get(
      '/api/v1/apps',
      {
        config: { auth: 'viewer' },
        schema: {
          summary: 'Apps with their grants and credentials (ids and hints, never secrets)',
        },
      },
      async () => ({ apps: await listApps(ctx.pool) }),
    );

    app.put(
      '/api/v1/apps/:app/scopes',
      {
        ...ADMIN,
        schema: {
          summary: "Replace an app's grants (every node applies them within 5 s)",
          params: appParams,
          body: Type.Object({ can }),
        },
      },
      async (request) => {
        const scopes = await setAppScopes(ctx.pool, request.params.app, request.body.can);
        authenticator.forget();
        ctx.logger.info(
          { app: request.params.app, can: scopes, by: callerName(request) },
          'app grants changed',
        );
        return { app: request.params.app, can: scopes };
      },
    );

    app.post(
      '/api/v1/apps/:app/rotate',
      {
        ...ADMIN,
        schema: {
          summary:
            'Issue a new credential (shown once); the old ones keep working for overlapSeconds (default 3600)',
          params: appParams,
          body: Type.Object({
            overlapSeconds: Type.Optional(
              Type.Integer({
                minimum: 0,
                maximum: 30 * 86_400,
                description: '0 ends the old ones now',
              }),
            ),
          }),
        },
      },
      async (request) => {
        const overlapMs =
          request.body.overlapSeconds === undefined
            ? DEFAULT_ROTATION_OVERLAP_MS
            : request.body.overlapSeconds * 1000;
        const issued = await rotateAppCredential(
          ctx.pool,
          request.params.app,
          overlapMs,
          callerName(request),
        );
        authenticator.forget();
        ctx.logger.info(
          { app: issued.app, credentialId: issued.credentialId, by: callerName(request) },
          'app credential rotated',
        );
        return issued;
      },
    );

    app.post(
      '/api/v1/apps/:app/revoke',
      {
        ...ADMIN,
        schema: {
          summary: "Revoke one of an app's credentials (credentialId) or all of them, at once",
          params: appParams,
          body: Type.Object({
            credentialId: Type.Optional(
              Type.String({ pattern: '^\\d{1,18}$', takes: 'a credential id' }),
            ),
          }),
        },
      },
      async (request) => {
        const revoked = await revokeAppCredentials(
          ctx.pool,
          request.params.app,
          request.body.credentialId,
        );
        authenticator.forget();
        ctx.logger.warn(
          { app: request.params.app, revoked, by: callerName(request) },
          'app credentials revoked',
        );
        return { app: request.params.app, revoked };
      },
    );
  };
}
