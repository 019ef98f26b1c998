/** Admin operations: token rotation. Every route here is mutating, so it needs the token. */
import path from 'node:path';
import { Type } from '@sinclair/typebox';
import { rotateAdminToken } from '../admin-token.js';
import { DataFiles } from '../data-folder.js';
import type { ApiModule } from '../http-api.js';

export const adminRoutes: ApiModule = (app, ctx) => {
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
    ctx.logger.warn({ from: request.ip }, 'admin token rotated; earlier tokens no longer work');
    return { token, file: path.join(ctx.dataDir, DataFiles.adminToken) };
  });
};
