/**
 * The gateway's control-plane routes under `/api/v1/gateway`: routes, apps, keys,
 * subscriptions and quota usage for operators (reads need a viewer token or better, changes
 * the admin token); and what `peak gateway` processes call: the change stream (it
 * carries key secrets, so it needs the admin token although it is a GET), quota leases and
 * nonce claims.
 */
import { Type } from '@sinclair/typebox';
import { ErrorCodes, PeakError } from '../../core/errors.js';
import type { ApiModule } from '../../server/http-api.js';
import { StringEnum, WithDefault } from '../../server/route-schema.js';
import { GatewayApp, GatewayName, GatewayQuota, GatewayRoute } from '../gateway-objects.js';
import { routeMatches } from '../route-words.js';
import { GatewayHub } from './gateway-hub.js';
import {
  claimNonces,
  createKey,
  decideSubscription,
  deleteApp,
  deleteRoute,
  getApp,
  getRoute,
  leaseQuota,
  listApps,
  listKeys,
  listRoutes,
  listSubscriptions,
  putApp,
  putRoutes,
  quotaUsage,
  recordQuotaUse,
  requestSubscription,
  returnQuota,
  revokeKey,
  setQuota,
  sweep,
} from './gateway-store.js';

const base = '/api/v1/gateway';
const nameParams = Type.Object({ name: GatewayName });
const appParams = Type.Object({ app: GatewayName });
const subParams = Type.Object({ app: GatewayName, api: GatewayName });
const note = Type.Optional(Type.String({ maxLength: 1024 }));
const DAY = Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$', takes: 'a date YYYY-MM-DD' });

/** Calls of an app's API counted in a UTC day and month: given back, or metered. */
const quotaUnits = (minimum: number) =>
  Type.Object(
    {
      app: GatewayName,
      api: GatewayName,
      units: Type.Integer({ minimum, maximum: 1_000_000_000 }),
      day: DAY,
      month: DAY,
    },
    { additionalProperties: false },
  );

function sameName(inUrl: string, inBody: string, what: string): void {
  if (inUrl !== inBody)
    throw new PeakError(
      ErrorCodes.GATEWAY_INVALID,
      `the ${what} in the URL ('${inUrl}') and in the body ('${inBody}') differ`,
      {
        details: { input: 'name' },
      },
    );
}

/** Reads of the gateway's setup: operators only (app credentials have no business here). */
const VIEWER = { auth: 'viewer' } as const;

/** The gateway module's routes, its push hub and its sweeper. */
export const gatewayRoutes: ApiModule = (app, ctx) => {
  const hub = new GatewayHub(ctx.pool, ctx.logger.child({ component: 'gateway' }));
  let sweeper: NodeJS.Timeout | undefined;
  app.addHook('onReady', async () => {
    await hub.start();
    sweeper = setInterval(() => {
      sweep(ctx.pool).catch((err) => ctx.logger.warn({ err }, 'gateway sweep failed'));
    }, 60_000);
    sweeper.unref();
  });
  app.addHook('preClose', async () => {
    clearInterval(sweeper);
    await hub.stop();
  });

  // ------------------------------------------------------------ routes
  app.get(
    `${base}/routes`,
    {
      config: VIEWER,
      schema: {
        summary:
          'Gateway routes: every one, or those whose name, API, method, host, path or target hold `match`, at most `limit`',
        querystring: Type.Object(
          {
            match: Type.Optional(Type.String({ maxLength: 200 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => {
      const all = await listRoutes(ctx.pool);
      const { match, limit } = request.query;
      const matching = match === undefined ? all : all.filter((r) => routeMatches(r, match));
      return {
        routes: limit === undefined ? matching : matching.slice(0, limit),
        total: all.length,
        matching: matching.length,
      };
    },
  );
  app.get(
    `${base}/routes/:name`,
    { config: VIEWER, schema: { summary: 'One gateway route', params: nameParams } },
    async (request) => getRoute(ctx.pool, request.params.name),
  );
  app.put(
    `${base}/routes/:name`,
    {
      schema: {
        summary: 'Create or replace a route (pushed to every gateway at once)',
        params: nameParams,
        body: GatewayRoute,
      },
    },
    async (request) => {
      sameName(request.params.name, request.body.name, 'route name');
      const rev = await putRoutes(ctx.pool, [request.body]);
      return { route: request.body, rev };
    },
  );
  app.post(
    `${base}/routes/batch`,
    {
      schema: {
        summary: 'Create, replace and delete many routes in one change',
        body: Type.Object(
          {
            routes: WithDefault(Type.Array(GatewayRoute, { maxItems: 5000 }), []),
            delete: WithDefault(Type.Array(GatewayName, { maxItems: 5000 }), []),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => ({
      rev: await putRoutes(ctx.pool, request.body.routes, request.body.delete),
    }),
  );
  app.delete(
    `${base}/routes/:name`,
    { schema: { summary: 'Delete a route', params: nameParams } },
    async (request) => {
      await deleteRoute(ctx.pool, request.params.name);
      return { deleted: request.params.name };
    },
  );

  // ------------------------------------------------------------ apps and keys
  app.get(
    `${base}/apps`,
    { config: VIEWER, schema: { summary: 'Every app (gateway consumer)' } },
    async () => ({
      apps: await listApps(ctx.pool),
    }),
  );
  app.get(
    `${base}/apps/:app`,
    { config: VIEWER, schema: { summary: 'One app', params: appParams } },
    async (request) => getApp(ctx.pool, request.params.app),
  );
  app.put(
    `${base}/apps/:app`,
    { schema: { summary: 'Create or replace an app', params: appParams, body: GatewayApp } },
    async (request) => {
      sameName(request.params.app, request.body.name, 'app name');
      return putApp(ctx.pool, request.body);
    },
  );
  app.delete(
    `${base}/apps/:app`,
    { schema: { summary: 'Delete an app, its keys and its subscriptions', params: appParams } },
    async (request) => {
      await deleteApp(ctx.pool, request.params.app);
      return { deleted: request.params.app };
    },
  );
  app.get(
    `${base}/apps/:app/keys`,
    {
      config: VIEWER,
      schema: { summary: "An app's keys (secrets are never listed)", params: appParams },
    },
    async (request) => ({
      keys: await listKeys(ctx.pool, request.params.app),
    }),
  );
  app.post(
    `${base}/apps/:app/keys`,
    {
      schema: {
        summary:
          'Issue a key to an app (the secret is in this answer only); with overlapSeconds, a rotation',
        params: appParams,
        body: Type.Object(
          {
            overlapSeconds: Type.Optional(
              Type.Integer({
                minimum: 0,
                maximum: 90 * 86_400,
                description: 'the other keys expire this long from now',
              }),
            ),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) =>
      createKey(ctx.pool, request.params.app, Date.now(), request.body.overlapSeconds),
  );
  app.delete(
    `${base}/keys/:id`,
    {
      schema: {
        summary: 'Revoke a key at once',
        params: Type.Object({ id: Type.String({ pattern: '^gk_[A-Za-z0-9_-]{1,64}$' }) }),
      },
    },
    async (request) => revokeKey(ctx.pool, request.params.id),
  );

  // ------------------------------------------------------------ subscriptions and quotas
  app.get(
    `${base}/subscriptions`,
    {
      config: VIEWER,
      schema: {
        summary: 'Subscriptions, optionally of one app, one API or in one status',
        querystring: Type.Object({
          app: Type.Optional(GatewayName),
          api: Type.Optional(GatewayName),
          status: Type.Optional(StringEnum(['pending', 'approved', 'rejected', 'revoked'])),
        }),
      },
    },
    async (request) => ({ subscriptions: await listSubscriptions(ctx.pool, request.query) }),
  );
  app.post(
    `${base}/subscriptions`,
    {
      schema: {
        summary: 'An app asks to call an API (pending until an admin approves)',
        body: Type.Object(
          { app: GatewayName, api: GatewayName, note },
          { additionalProperties: false },
        ),
      },
    },
    async (request) =>
      requestSubscription(
        ctx.pool,
        request.body.app,
        request.body.api,
        Date.now(),
        request.body.note,
      ),
  );
  for (const [verb, status] of [
    ['approve', 'approved'],
    ['reject', 'rejected'],
    ['revoke', 'revoked'],
  ] as const) {
    app.post(
      `${base}/subscriptions/:app/:api/${verb}`,
      {
        schema: {
          summary: `${verb[0]!.toUpperCase()}${verb.slice(1)} a subscription`,
          params: subParams,
          body: Type.Object(
            { note, ...(verb === 'approve' ? { quota: Type.Optional(GatewayQuota) } : {}) },
            { additionalProperties: false },
          ),
        },
      },
      async (request) => {
        const body = request.body as {
          note?: string;
          quota?: { perDay?: number; perMonth?: number };
        };
        return decideSubscription(
          ctx.pool,
          request.params.app,
          request.params.api,
          status,
          Date.now(),
          {
            note: body.note,
            quota: body.quota,
          },
        );
      },
    );
  }
  app.put(
    `${base}/subscriptions/:app/:api/quota`,
    {
      schema: {
        summary: "Set a subscription's quota (calls per UTC day and/or month)",
        params: subParams,
        body: GatewayQuota,
      },
    },
    async (request) => setQuota(ctx.pool, request.params.app, request.params.api, request.body),
  );
  app.get(
    `${base}/quota`,
    {
      config: VIEWER,
      schema: {
        summary:
          'Quota usage this UTC day and month, per app and API (exact once gateways gave back unused leases)',
        querystring: Type.Object({
          app: Type.Optional(GatewayName),
          api: Type.Optional(GatewayName),
        }),
      },
    },
    async (request) => ({ usage: await quotaUsage(ctx.pool, Date.now(), request.query) }),
  );

  // ------------------------------------------------------------ what gateways call
  app.get(
    `${base}/watch`,
    {
      config: { auth: 'admin' },
      schema: {
        summary:
          'Server-Sent Events for peak gateway: the changes after rev `since` (a snapshot for 0), then every change; carries secrets',
        querystring: Type.Object({ since: WithDefault(Type.Integer({ minimum: 0 }), 0) }),
      },
    },
    async (request, reply) => {
      reply.hijack();
      reply.raw.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      reply.raw.write(`: peak gateway node ${ctx.nodeId}\n\n`);
      try {
        await hub.watch(reply.raw, request.query.since);
      } catch (err) {
        ctx.logger.warn({ err }, 'gateway watch failed');
        reply.raw.end();
      }
    },
  );
  app.post(
    `${base}/quota/lease`,
    {
      schema: {
        summary: "Take calls of an app's quota for an API (for peak gateway)",
        body: Type.Object(
          {
            app: GatewayName,
            api: GatewayName,
            want: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) =>
      leaseQuota(ctx.pool, request.body.app, request.body.api, request.body.want, Date.now()),
  );
  app.post(
    `${base}/quota/return`,
    {
      schema: {
        summary: 'Give back leased calls that were not used (for peak gateway)',
        body: quotaUnits(0),
      },
    },
    async (request) => {
      const b = request.body;
      await returnQuota(ctx.pool, b.app, b.api, b.units, b.day, b.month);
      return { returned: b.units };
    },
  );
  app.post(
    `${base}/quota/use`,
    {
      schema: {
        summary:
          'Count calls a gateway admitted for subscriptions without a quota (for peak gateway: metering)',
        body: Type.Object(
          { uses: Type.Array(quotaUnits(1), { minItems: 1, maxItems: 10_000 }) },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => {
      const { uses } = request.body;
      await recordQuotaUse(ctx.pool, uses);
      return { counted: uses.reduce((n, u) => n + u.units, 0) };
    },
  );
  app.post(
    `${base}/nonces`,
    {
      schema: {
        summary: 'Record signature nonces; answers which were fresh (for peak gateway)',
        body: Type.Object(
          {
            ttlMs: Type.Integer({ minimum: 1000, maximum: 7 * 86_400_000 }),
            items: Type.Array(
              Type.Object(
                {
                  key: Type.String({ minLength: 1, maxLength: 128 }),
                  nonce: Type.String({ minLength: 1, maxLength: 128 }),
                },
                { additionalProperties: false },
              ),
              { maxItems: 10_000 },
            ),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => ({
      fresh: await claimNonces(ctx.pool, request.body.items, request.body.ttlMs),
    }),
  );
};
