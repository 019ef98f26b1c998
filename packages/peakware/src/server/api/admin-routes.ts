/**
 * Admin operations: the admin token's rotation, and operator tokens of a role (create, list,
 * revoke). Every route here needs the admin role. A rotated or revoked token stops working
 * at once on this node (the authenticator forgets it) and within the credential cache's
 * 5 s on the others.
 */
import path from 'node:path';
import { Type } from '@sinclair/typebox';
import { callerName } from '../access.js';
import { rotateAdminToken } from '../admin-token.js';
import type { Authenticator } from '../authenticator.js';
import { DataFiles } from '../data-folder.js';
import type { ApiModule } from '../http-api.js';
import { createRoleToken, listRoleTokens, revokeRoleToken } from '../role-tokens.js';
import { StringEnum } from '../route-schema.js';

/** The admin-token routes; `authenticator` forgets the rotated token. */
export function adminRoutes(authenticator: Authenticator): ApiModule {
  return (app, ctx) => {
    const rotate = {
      summary:
        'Rotate the admin token: a new one is written to the data folder, the old stops working',
      body: Type.Object({}),
    };
    app.post('/api/v1/admin/token/rotate', { schema: rotate }, async (request) => {
      const token = await rotateAdminToken(
        ctx.pool,
        path.join(ctx.dataDir, DataFiles.adminToken),
        `api:${request.ip}`,
      );
      authenticator.forget();
      ctx.logger.warn({ from: request.ip }, 'admin token rotated; earlier tokens no longer work');
      return { token, file: path.join(ctx.dataDir, DataFiles.adminToken) };
    });

    const tokenName = Type.String({
      pattern: '^[a-z0-9][a-z0-9._-]{0,62}$',
      takes: 'a lowercase name: letters, digits, . _ -',
    });
    app.post(
      '/api/v1/admin/tokens',
      {
        schema: {
          summary:
            'Issue an operator token of a role (admin, operator, viewer); the token is in this answer only',
          body: Type.Object(
            { name: tokenName, role: StringEnum(['admin', 'operator', 'viewer']) },
            { additionalProperties: false },
          ),
        },
      },
      async (request) =>
        createRoleToken(ctx.pool, request.body.name, request.body.role, callerName(request)),
    );
    app.get(
      '/api/v1/admin/tokens',
      {
        config: { auth: 'admin' },
        schema: { summary: 'The working operator tokens: names and roles, never the secrets' },
      },
      async () => ({ tokens: await listRoleTokens(ctx.pool) }),
    );
    app.post(
      '/api/v1/admin/tokens/:name/revoke',
      {
        schema: {
          summary: 'Revoke an operator token by name (the admin token is rotated instead)',
          params: Type.Object({ name: tokenName }),
          body: Type.Object({}),
        },
      },
      async (request) => {
        await revokeRoleToken(ctx.pool, request.params.name);
        authenticator.forget();
        return { revoked: request.params.name };
      },
    );
  };
}
