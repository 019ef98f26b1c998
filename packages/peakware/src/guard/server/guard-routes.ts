/**
 * The guard's control-plane routes:
 *
 * - `POST /api/v1/guard/cluster/token` (SDK, grant `guard-token[:<namespace>]`): the cluster
 *   token server; grants tokens of a shared per-second budget (see
 *   guard/cluster-token-server.ts).
 * - `POST /api/v1/guard/report` (SDK, grant `guard-token[:<app>]`): a service instance
 *   pushes its per-second metrics and the rules it has in force.
 * - `GET /api/v1/guard/rules`, `GET /api/v1/guard/stats?resource=`, `GET /api/v1/guard/cluster`:
 *   what `peak guard rules`, `peak guard stats` and `peak guard cluster` show.
 *
 * Budgets are counted by one node, the leader (server/guard-token-service.ts); the other
 * nodes forward token requests to it (`PEAK_GUARD_TOKEN_SERVER=off` keeps a node from
 * leading). Metric reports are held in the memory of the node that received them (bounded).
 */
import { Type } from '@sinclair/typebox';
import { InvalidArgumentError } from '../../core/errors.js';
import { authorize } from '../../server/access.js';
import type { ApiModule } from '../../server/http-api.js';
import { StringEnum, WithDefault } from '../../server/route-schema.js';
import type { GuardRules } from '../rule-types.js';
import { GuardReportStore } from './guard-report-store.js';
import { FORWARDED_HEADER, GuardTokenService } from './guard-token-service.js';

const name = Type.String({ minLength: 1, maxLength: 200 });

/** A guard's request for cluster tokens (the hot SDK route of cluster flow control). */
const tokenRequest = Type.Object(
  {
    namespace: name,
    flowId: name,
    clientId: name,
    count: Type.Number({
      minimum: 0,
      maximum: 1e9,
      description: "the rule's threshold per second",
    }),
    thresholdType: WithDefault(StringEnum(['global', 'avg-local']), 'global'),
    acquire: Type.Integer({ minimum: 1, maximum: 100000, description: 'tokens wanted' }),
  },
  { additionalProperties: false },
);

const metric = Type.Object({
  resource: Type.String({ minLength: 1, maxLength: 500 }),
  second: Type.Number({ description: 'epoch second' }),
  pass: Type.Number({ minimum: 0 }),
  block: Type.Number({ minimum: 0 }),
  success: Type.Number({ minimum: 0 }),
  error: Type.Number({ minimum: 0 }),
  rtAvg: WithDefault(Type.Number({ minimum: 0 }), 0),
  rtMin: WithDefault(Type.Number({ minimum: 0 }), 0),
  concurrency: WithDefault(Type.Number(), 0),
});

/** One instance's per-second metrics and the rules it has in force. */
const report = Type.Object({
  app: name,
  instance: name,
  rules: WithDefault(
    Type.Unsafe<GuardRules>({ type: 'object', description: 'the guard rules in force' }),
    {},
  ),
  metrics: Type.Array(metric, { maxItems: 20000 }),
});

/** The guard's routes (cluster token server, metric reports, rules and stats). */
export const guardRoutes: ApiModule = (app, ctx) => {
  const service = new GuardTokenService({
    pool: ctx.pool,
    nodeId: ctx.nodeId,
    logger: ctx.logger,
    lead: ctx.settings.guard.tokenServer,
  });
  app.addHook('onClose', () => service.close());
  const reports = new GuardReportStore();

  app.post(
    '/api/v1/guard/cluster/token',
    {
      config: { auth: 'sdk', scope: 'guard-token' },
      schema: {
        summary:
          "Take tokens of a cluster flow rule's shared per-second budget (forwarded to the leader)",
        body: tokenRequest,
      },
    },
    async (request) => {
      authorize(request, 'guard-token', request.body.namespace);
      const forwardedBy = request.headers[FORWARDED_HEADER];
      return service.grant(
        request.body,
        typeof forwardedBy === 'string' ? forwardedBy : undefined,
        request.headers.authorization,
      );
    },
  );

  app.post(
    '/api/v1/guard/report',
    {
      config: { auth: 'sdk', scope: 'guard-token' },
      schema: {
        summary: "An instance's per-second metrics and the rules it has in force",
        body: report,
      },
    },
    async (request) => {
      authorize(request, 'guard-token', request.body.app);
      const accepted = reports.accept(request.body);
      if (!accepted) {
        throw new InvalidArgumentError(
          'guard report refused: this node tracks too many apps or instances already (bounded memory); retire old instances or use another node',
        );
      }
      return { accepted: true };
    },
  );

  app.get(
    '/api/v1/guard/cluster',
    { schema: { summary: 'The cluster token server: which node leads, the budgets it counts' } },
    async () => ({
      nodeId: ctx.nodeId,
      leading: service.leading,
      leaderNodeId: (await service.leaderNodeId()) ?? null,
      // The budgets this node counts (empty unless it leads).
      budgets: service.tokens.list(),
    }),
  );

  app.get(
    '/api/v1/guard/rules',
    {
      schema: {
        summary: 'The rules each reporting instance has in force',
        querystring: Type.Object({ app: Type.Optional(Type.String()) }),
      },
    },
    async (request) => ({ instances: reports.rules(request.query.app) }),
  );

  app.get(
    '/api/v1/guard/stats',
    {
      schema: {
        summary: "One resource's per-second figures summed over the reporting instances",
        querystring: Type.Object({
          resource: Type.String({
            minLength: 1,
            takes: 'a resource name, e.g. ?resource=GET%20/orders',
          }),
          app: Type.Optional(Type.String()),
          seconds: WithDefault(Type.Integer({ minimum: 1, maximum: 300 }), 60),
        }),
      },
    },
    async (request) => {
      const { resource, seconds, app: appName } = request.query;
      return { resource, seconds, rows: reports.stats(resource, seconds, appName) };
    },
  );
};
