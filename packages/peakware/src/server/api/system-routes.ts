/**
 * Liveness, readiness and node info (public: load balancers and `peak status` call them
 * with no credential), and the list of control-plane nodes (host names and pids: any
 * credential).
 */
import { PEAKWARE_VERSION } from '../../core/version.js';
import type { RpcEndpointInfo } from '../control-plane-rpc.js';
import type { ApiModule } from '../http-api.js';
import { schemaVersion } from '../migrator.js';

/** How long a node may miss heartbeats before it is no longer listed as live. */
export const NODE_STALE_MS = 15_000;

export const systemRoutes: ApiModule = (app, ctx) => {
  app.get(
    '/health',
    {
      config: { auth: 'public' },
      schema: { summary: 'Liveness: answers while the process serves HTTP' },
    },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/ready',
    {
      config: { auth: 'public' },
      schema: {
        summary:
          'Readiness: 200 when the database answers at the expected schema version, else 503',
      },
    },
    async (_request, reply) => {
      try {
        const version = await Promise.race([
          schemaVersion(ctx.pool),
          new Promise<never>((_, reject) =>
            setTimeout(() => reject(new Error('database did not answer within 2 s')), 2000).unref(),
          ),
        ]);
        if (version < ctx.schemaVersion) {
          return reply.status(503).send({
            status: 'not-ready',
            reason: `schema peak is at version ${version}, expected ${ctx.schemaVersion}`,
          });
        }
        return { status: 'ready', schemaVersion: version, postgres: ctx.postgresMode };
      } catch (err) {
        return reply.status(503).send({
          status: 'not-ready',
          reason: `database unreachable: ${(err as Error).message}`,
        });
      }
    },
  );

  app.get(
    '/api/v1/info',
    {
      config: { auth: 'public' },
      schema: { summary: 'This node: version, id, schema, roles, uptime' },
    },
    async () => ({
      name: 'peak',
      version: PEAKWARE_VERSION,
      nodeId: ctx.nodeId,
      schemaVersion: ctx.schemaVersion,
      postgres: ctx.postgresMode,
      roles: ctx.roles,
      startedAt: new Date(ctx.startedAt).toISOString(),
      uptimeSeconds: Math.round((Date.now() - ctx.startedAt) / 1000),
    }),
  );

  app.get(
    '/api/v1/rpc',
    {
      schema: {
        summary:
          "Where this node's RPC port listens (the SDK's hot calls use it instead of HTTP when they can reach it)",
      },
    },
    async (request): Promise<RpcEndpointInfo> => {
      const at = ctx.rpcEndpoint?.();
      if (at === undefined) {
        return { available: false, reason: 'this node runs without it (PEAK_RPC_PORT=off)' };
      }
      if (request.protocol === 'https' && !at.tls) {
        // A client that chose TLS is not sent to a plaintext port.
        return { available: false, reason: 'this node serves HTTPS and its RPC port has no TLS' };
      }
      // Bound to every address: the client reaches it by the name it used for this request.
      const wildcard = at.host === '0.0.0.0' || at.host === '::';
      return {
        available: true,
        host: wildcard ? request.hostname.replace(/^\[(.*)\]$/, '$1') : at.host,
        port: at.port,
        tls: at.tls,
      };
    },
  );

  app.get(
    '/api/v1/nodes',
    { schema: { summary: 'The live control-plane nodes (heartbeat within 15 s)' } },
    async () => {
      const { rows } = await ctx.pool.query<{
        node_id: string;
        http_url: string;
        version: string;
        hostname: string;
        pid: number;
        started_at: Date;
        last_seen_at: Date;
      }>(
        `SELECT node_id, http_url, version, hostname, pid, started_at, last_seen_at
         FROM peak.nodes
        WHERE last_seen_at > now() - make_interval(secs => $1)
        ORDER BY started_at`,
        [NODE_STALE_MS / 1000],
      );
      return {
        nodes: rows.map((r) => ({
          nodeId: r.node_id,
          httpUrl: r.http_url,
          version: r.version,
          hostname: r.hostname,
          pid: r.pid,
          startedAt: r.started_at.toISOString(),
          lastSeenAt: r.last_seen_at.toISOString(),
          self: r.node_id === ctx.nodeId,
        })),
      };
    },
  );
};
