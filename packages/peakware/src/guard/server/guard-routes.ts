/**
 * The guard's control-plane routes:
 *
 * - `POST /api/v1/guard/cluster/token` (SDK): the cluster token server; grants tokens of a
 *   shared per-second budget (see guard/cluster-token-server.ts).
 * - `POST /api/v1/guard/report` (SDK): a service instance pushes its per-second metrics and
 *   the rules it has in force.
 * - `GET /api/v1/guard/rules`, `GET /api/v1/guard/stats?resource=`, `GET /api/v1/guard/cluster`:
 *   what `peak guard rules`, `peak guard stats` and `peak guard cluster` show.
 *
 * Budgets are counted by one node, the leader (server/guard-token-service.ts); the other
 * nodes forward token requests to it (`PEAK_GUARD_TOKEN_SERVER=off` keeps a node from
 * leading). Metric reports are held in the memory of the node that received them (bounded).
 */
import { InvalidArgumentError } from '../../core/errors.js';
import type { ApiModule } from '../../server/http-api.js';
import type { TokenRequest } from './cluster-token-server.js';
import { type GuardReport, GuardReportStore } from './guard-report-store.js';
import { FORWARDED_HEADER, GuardTokenService } from './guard-token-service.js';

const name = { type: 'string', minLength: 1, maxLength: 200 } as const;

const tokenSchema = {
  body: {
    type: 'object',
    required: ['namespace', 'flowId', 'clientId', 'count', 'acquire'],
    additionalProperties: false,
    properties: {
      namespace: name,
      flowId: name,
      clientId: name,
      count: { type: 'number', minimum: 0, maximum: 1e9 },
      thresholdType: { type: 'string', enum: ['global', 'avg-local'] },
      acquire: { type: 'integer', minimum: 1, maximum: 100000 },
    },
  },
} as const;

const metric = {
  type: 'object',
  required: ['resource', 'second', 'pass', 'block', 'success', 'error'],
  properties: {
    resource: { type: 'string', minLength: 1, maxLength: 500 },
    second: { type: 'number' },
    pass: { type: 'number', minimum: 0 },
    block: { type: 'number', minimum: 0 },
    success: { type: 'number', minimum: 0 },
    error: { type: 'number', minimum: 0 },
    rtAvg: { type: 'number', minimum: 0, default: 0 },
    rtMin: { type: 'number', minimum: 0, default: 0 },
    concurrency: { type: 'number', default: 0 },
  },
} as const;

const reportSchema = {
  body: {
    type: 'object',
    required: ['app', 'instance', 'metrics'],
    properties: {
      app: name,
      instance: name,
      rules: { type: 'object', default: {} },
      metrics: { type: 'array', maxItems: 20000, items: metric },
    },
  },
} as const;

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
    { config: { auth: 'sdk' }, schema: tokenSchema },
    async (request) => {
      const body = request.body as TokenRequest;
      const forwardedBy = request.headers[FORWARDED_HEADER];
      return service.grant(
        { ...body, thresholdType: body.thresholdType ?? 'global' },
        typeof forwardedBy === 'string' ? forwardedBy : undefined,
      );
    },
  );

  app.post(
    '/api/v1/guard/report',
    { config: { auth: 'sdk' }, schema: reportSchema },
    async (request) => {
      const accepted = reports.accept(request.body as GuardReport);
      if (!accepted) {
        throw new InvalidArgumentError(
          'guard report refused: this node tracks too many apps or instances already (bounded memory); retire old instances or use another node',
        );
      }
      return { accepted: true };
    },
  );

  app.get('/api/v1/guard/cluster', async () => ({
    nodeId: ctx.nodeId,
    leading: service.leading,
    leaderNodeId: (await service.leaderNodeId()) ?? null,
    // The budgets this node counts (empty unless it leads).
    budgets: service.tokens.list(),
  }));

  app.get('/api/v1/guard/rules', async (request) => {
    const query = request.query as { app?: string };
    return { instances: reports.rules(query.app) };
  });

  app.get('/api/v1/guard/stats', async (request) => {
    const query = request.query as { resource?: string; app?: string; seconds?: string };
    if (query.resource === undefined || query.resource.length === 0) {
      throw new InvalidArgumentError(
        'guard stats: the query parameter resource is required, e.g. ?resource=GET%20/orders',
        {
          details: { input: 'resource' },
        },
      );
    }
    const seconds = query.seconds === undefined ? 60 : Number(query.seconds);
    if (!Number.isInteger(seconds) || seconds < 1 || seconds > 300) {
      throw new InvalidArgumentError(
        `guard stats: seconds must be an integer 1-300, got ${query.seconds}`,
        {
          details: { input: 'seconds' },
        },
      );
    }
    return {
      resource: query.resource,
      seconds,
      rows: reports.stats(query.resource, seconds, query.app),
    };
  });
};
