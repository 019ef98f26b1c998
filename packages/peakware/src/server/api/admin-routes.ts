/**
 * Admin operations: token rotation. Every route here is mutating, so it needs the token.
 * The old token stops working at once on this node (the authenticator forgets it) and
 * within the credential cache's 5 s on the others.
 */
import path from 'node:path';
import { Type } from '@sinclair/typebox';
import { rotateAdminToken } from '../admin-token.js';
import type { Authenticator } from '../authenticator.js';
import { DataFiles } from '../data-folder.js';
import type { ApiModule } from '../http-api.js';

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
  };
}
