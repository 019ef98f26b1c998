/**
 * Registry routes. SDK-facing (no admin token, `auth: 'sdk'`): register, renew a lease,
 * patch own weight/tags/status, deregister, watch (SSE). Admin: set an instance online or
 * offline (`peak rpc offline|online`). Read: services and instances (`peak rpc ls`).
 */
import { z } from 'zod';
import { ErrorCodes, InvalidArgumentError, PeakError } from '../../core/errors.js';
import type { ApiModule } from '../../server/http-api.js';
import { parseServiceKey, serviceKey } from '../service-instance.js';
import { RegistryHub } from './registry-hub.js';
import {
  deleteInstance,
  listAll,
  listInstances,
  patchInstance,
  renewLease,
  upsertInstance,
} from './registry-store.js';

/** Lease granted to a registration unless it asks for another, ms. */
export const DEFAULT_LEASE_MS = 15_000;
/** How often each node removes expired instances, ms. */
export const SWEEP_MS = 1000;

const token = z
  .string()
  .regex(/^[A-Za-z0-9_.:@-]{1,128}$/, 'use 1-128 letters, digits or _ . : @ -');

const registration = z.object({
  instanceId: token,
  service: z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]{0,127}$/),
  version: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/),
  group: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/),
  host: z.string().min(1).max(255),
  port: z.number().int().min(1).max(65535),
  weight: z.number().int().min(0).max(1_000_000),
  tags: z.array(z.string().min(1).max(64)).max(32).default([]),
  metadata: z.record(z.string(), z.string().max(1024)).default({}),
  status: z.enum(['up', 'offline']).optional(),
  startedAt: z.number().int().positive().optional(),
  leaseMs: z.number().int().min(1000).max(600_000).optional(),
});

const patch = z.object({
  key: z.string().optional(),
  weight: z.number().int().min(0).max(1_000_000).optional(),
  tags: z.array(z.string().min(1).max(64)).max(32).optional(),
  status: z.enum(['up', 'offline']).optional(),
});

function parse<T>(schema: z.ZodType<T>, body: unknown, what: string): T {
  const r = schema.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new InvalidArgumentError(
      `${what}: ${issue?.path.map(String).join('.') || '(body)'}: ${issue?.message ?? 'invalid'}`,
      {
        details: {
          issues: r.error.issues
            .slice(0, 5)
            .map((i) => ({ path: i.path.map(String), message: i.message })),
        },
      },
    );
  }
  return r.data;
}

function checkKey(key: string): string {
  if (parseServiceKey(key) === undefined) {
    throw new InvalidArgumentError(`'${key}' is not a service key; expected group/name:version`, {
      details: { input: 'key' },
    });
  }
  return key;
}

/** The registry's routes and its push hub (LISTEN/NOTIFY → SSE) on this node. */
export const registryRoutes: ApiModule = (app, ctx) => {
  const hub = new RegistryHub(ctx.pool, ctx.logger.child({ component: 'registry' }));
  app.addHook('onReady', async () => hub.start(SWEEP_MS));
  // End SSE streams before the HTTP server waits for in-flight requests.
  app.addHook('preClose', async () => hub.stop());
  const sdk = { config: { auth: 'sdk' as const } };

  app.post('/api/v1/registry/instances', sdk, async (request) => {
    const r = parse(registration, request.body, 'registration');
    const key = serviceKey(r.service, r.version, r.group);
    const leaseMs = r.leaseMs ?? DEFAULT_LEASE_MS;
    await upsertInstance(ctx.pool, key, { ...r, startedAt: r.startedAt ?? Date.now() }, leaseMs);
    return { key, instanceId: r.instanceId, leaseMs };
  });

  app.put<{ Params: { id: string }; Body: { leaseMs?: number } }>(
    '/api/v1/registry/instances/:id/lease',
    sdk,
    async (request) => {
      const leaseMs =
        parse(
          z.object({ leaseMs: z.number().int().min(1000).max(600_000).optional() }).optional(),
          request.body,
          'lease',
        )?.leaseMs ?? DEFAULT_LEASE_MS;
      const renewed = await renewLease(ctx.pool, request.params.id, leaseMs);
      if (renewed === 0) {
        throw new PeakError(
          ErrorCodes.NOT_FOUND,
          `instance '${request.params.id}' is not registered (its lease may have expired); register it again`,
          { details: { instanceId: request.params.id } },
        );
      }
      return { renewed, leaseMs };
    },
  );

  const applyPatch = async (id: string, body: unknown) => {
    const p = parse(patch, body, 'patch');
    if (p.key !== undefined) checkKey(p.key);
    const changed = await patchInstance(ctx.pool, id, p.key, p);
    if (changed === 0) {
      throw new PeakError(
        ErrorCodes.NOT_FOUND,
        `instance '${id}' is not registered${p.key ? ` for ${p.key}` : ''}; see 'peak rpc ls'`,
        {
          details: { instanceId: id },
        },
      );
    }
    return { changed };
  };

  app.patch<{ Params: { id: string } }>('/api/v1/registry/instances/:id', sdk, async (request) =>
    applyPatch(request.params.id, request.body),
  );

  // Admin: `peak rpc offline|online <instance>`, `peak rpc weight`.
  app.post<{ Params: { id: string } }>('/api/v1/registry/instances/:id/admin', async (request) =>
    applyPatch(request.params.id, request.body),
  );

  app.delete<{ Params: { id: string }; Querystring: { key?: string } }>(
    '/api/v1/registry/instances/:id',
    sdk,
    async (request) => {
      const key = request.query.key === undefined ? undefined : checkKey(request.query.key);
      const removed = await deleteInstance(ctx.pool, request.params.id, key);
      return { removed };
    },
  );

  app.get<{ Querystring: { key?: string } }>('/api/v1/registry/instances', async (request) => {
    const key = request.query.key;
    return {
      instances:
        key === undefined ? await listAll(ctx.pool) : await listInstances(ctx.pool, checkKey(key)),
    };
  });

  app.get('/api/v1/registry/services', async () => {
    const all = await listAll(ctx.pool);
    const byKey = new Map<
      string,
      { key: string; service: string; version: string; group: string; up: number; offline: number }
    >();
    for (const i of all) {
      const key = serviceKey(i.service, i.version, i.group);
      const s = byKey.get(key) ?? {
        key,
        service: i.service,
        version: i.version,
        group: i.group,
        up: 0,
        offline: 0,
      };
      if (i.status === 'up') s.up++;
      else s.offline++;
      byKey.set(key, s);
    }
    return { services: [...byKey.values()] };
  });

  app.get<{ Querystring: { key?: string | string[] } }>(
    '/api/v1/registry/watch',
    async (request, reply) => {
      const raw = request.query.key;
      const keys = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]).map(checkKey);
      if (keys.length === 0 || keys.length > 1000) {
        throw new InvalidArgumentError('watch needs 1-1000 ?key=group/name:version parameters', {
          details: { input: 'key' },
        });
      }
      reply.hijack();
      reply.raw.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      reply.raw.write(`: peak registry node ${ctx.nodeId}\n\n`);
      try {
        await hub.watch(reply.raw, keys);
      } catch (err) {
        ctx.logger.warn({ err }, 'registry watch failed');
        reply.raw.end();
      }
    },
  );
};
