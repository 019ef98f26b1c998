/**
 * Registry routes. SDK-facing (`auth: 'sdk'`, grant `register:<service>`): register, renew
 * a lease, patch own weight/tags/status, deregister; an app touches only the instances it
 * registered itself, of services its grants name. Admin: set an instance online or offline
 * (`peak rpc offline|online`), remove a registration (`peak rpc rm`: refused for an instance
 * in traffic unless forced). Reads (any credential): services, instances (`peak rpc ls`)
 * and the watch stream (SSE) consumers discover providers by.
 */
import { type Static, Type } from '@sinclair/typebox';
import { ErrorCodes, InvalidArgumentError, PeakError } from '../../core/errors.js';
import { authorize, callerApp } from '../../server/access.js';
import type { ApiModule } from '../../server/http-api.js';
import { StringEnum, WithDefault } from '../../server/route-schema.js';
import { parseServiceKey, serviceKey } from '../service-instance.js';
import { RegistryHub } from './registry-hub.js';
import {
  deleteInstance,
  instanceRegistrations,
  listAll,
  listInstances,
  patchInstance,
  registeredByOther,
  renewLease,
  upsertInstance,
} from './registry-store.js';

/** Lease granted to a registration unless it asks for another, ms. */
export const DEFAULT_LEASE_MS = 15_000;
/** How often each node removes expired instances, ms. */
export const SWEEP_MS = 1000;

const lease = Type.Integer({ minimum: 1000, maximum: 600_000, description: 'lease, ms' });
const weight = Type.Integer({ minimum: 0, maximum: 1_000_000 });
const tags = Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 32 });
const status = StringEnum(['up', 'offline']);

/** What a service instance registers (the SDK's `HttpRegistry.register`). */
const registration = Type.Object({
  instanceId: Type.String({
    pattern: '^[A-Za-z0-9_.:@-]{1,128}$',
    takes: '1-128 letters, digits or _ . : @ -',
  }),
  service: Type.String({
    pattern: '^[A-Za-z][A-Za-z0-9_.-]{0,127}$',
    takes: 'a letter, then up to 127 letters, digits or _ . -',
  }),
  version: Type.String({
    pattern: '^[A-Za-z0-9_.-]{1,64}$',
    takes: '1-64 letters, digits or _ . -',
  }),
  group: Type.String({
    pattern: '^[A-Za-z0-9_.-]{1,64}$',
    takes: '1-64 letters, digits or _ . -',
  }),
  host: Type.String({ minLength: 1, maxLength: 255 }),
  port: Type.Integer({ minimum: 1, maximum: 65535 }),
  weight,
  tags: WithDefault(tags, []),
  metadata: WithDefault(Type.Record(Type.String(), Type.String({ maxLength: 1024 })), {}),
  status: Type.Optional(status),
  startedAt: Type.Optional(Type.Integer({ minimum: 1, description: 'epoch ms' })),
  leaseMs: Type.Optional(lease),
});

/** A change to one instance: by the instance itself (SDK) or by an admin. */
const patch = Type.Object({
  key: Type.Optional(Type.String({ description: 'group/name:version, when the id is ambiguous' })),
  weight: Type.Optional(weight),
  tags: Type.Optional(tags),
  status: Type.Optional(status),
});

const instanceParams = Type.Object({ id: Type.String({ description: 'the instance id' }) });
const keyQuery = Type.Object({
  key: Type.Optional(Type.String({ description: 'a service key, group/name:version' })),
});

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
  /** After an app's change touched nothing: PEAK_FORBIDDEN when the instance is another app's. */
  const refuseForeign = async (id: string, owner: string | undefined) => {
    if (owner === undefined || !(await registeredByOther(ctx.pool, id, owner))) return;
    throw new PeakError(
      ErrorCodes.FORBIDDEN,
      `instance '${id}' is registered by another app; app '${owner}' may change only the instances it registered`,
      { details: { instanceId: id } },
    );
  };
  const hub = new RegistryHub(ctx.pool, ctx.logger.child({ component: 'registry' }));
  app.addHook('onReady', async () => hub.start(SWEEP_MS));
  // End SSE streams before the HTTP server waits for in-flight requests.
  app.addHook('preClose', async () => hub.stop());
  const sdk = { config: { auth: 'sdk' as const, scope: 'register' as const } };

  app.post(
    '/api/v1/registry/instances',
    {
      ...sdk,
      schema: {
        summary: 'Register an instance (or refresh its registration) with a lease',
        body: registration,
      },
    },
    async (request) => {
      const r = request.body;
      authorize(request, 'register', r.service);
      const key = serviceKey(r.service, r.version, r.group);
      const leaseMs = r.leaseMs ?? DEFAULT_LEASE_MS;
      const owner = callerApp(request);
      const stored = await upsertInstance(
        ctx.pool,
        key,
        { ...r, startedAt: r.startedAt ?? Date.now() },
        leaseMs,
        owner,
      );
      if (!stored) {
        throw new PeakError(
          ErrorCodes.FORBIDDEN,
          `instance '${r.instanceId}' of ${key} is registered by another app; app '${owner}' may change only the instances it registered (pick another instance id)`,
          { details: { instanceId: r.instanceId, key } },
        );
      }
      return { key, instanceId: r.instanceId, leaseMs };
    },
  );

  app.put(
    '/api/v1/registry/instances/:id/lease',
    {
      ...sdk,
      schema: {
        summary: "Renew an instance's lease (404 when it has expired: register again)",
        params: instanceParams,
        body: Type.Object({ leaseMs: Type.Optional(lease) }),
      },
    },
    async (request) => {
      const leaseMs = request.body.leaseMs ?? DEFAULT_LEASE_MS;
      const owner = callerApp(request);
      const renewed = await renewLease(ctx.pool, request.params.id, leaseMs, owner);
      if (renewed === 0) {
        await refuseForeign(request.params.id, owner);
        throw new PeakError(
          ErrorCodes.NOT_FOUND,
          `instance '${request.params.id}' is not registered${owner === undefined ? '' : ` by app '${owner}'`} (its lease may have expired); register it again`,
          { details: { instanceId: request.params.id } },
        );
      }
      return { renewed, leaseMs };
    },
  );

  const applyPatch = async (id: string, p: Static<typeof patch>, owner: string | undefined) => {
    if (p.key !== undefined) checkKey(p.key);
    const changed = await patchInstance(ctx.pool, id, p.key, p, owner);
    if (changed === 0) {
      await refuseForeign(id, owner);
      throw new PeakError(
        ErrorCodes.NOT_FOUND,
        `instance '${id}' is not registered${p.key ? ` for ${p.key}` : ''}${owner === undefined ? '' : ` by app '${owner}'`}; see 'peak rpc ls'`,
        {
          details: { instanceId: id },
        },
      );
    }
    return { changed };
  };

  app.patch(
    '/api/v1/registry/instances/:id',
    {
      ...sdk,
      schema: {
        summary: 'Change its own weight, tags or status (by the instance)',
        params: instanceParams,
        body: patch,
      },
    },
    async (request) => applyPatch(request.params.id, request.body, callerApp(request)),
  );

  // Admin: `peak rpc offline|online <instance>`, `peak rpc weight`.
  app.post(
    '/api/v1/registry/instances/:id/admin',
    {
      config: { auth: 'operator' },
      schema: {
        summary: "Change an instance's weight, tags or status (peak rpc offline|online|weight)",
        params: instanceParams,
        body: patch,
      },
    },
    async (request) => applyPatch(request.params.id, request.body, undefined),
  );

  // Admin: `peak rpc rm <instance>`. An instance in traffic is refused unless forced: take it
  // offline first, so its consumers drop it before it disappears. A live process whose
  // registration is removed registers again at its next lease renewal.
  app.delete(
    '/api/v1/registry/instances/:id/admin',
    {
      config: { auth: 'operator' },
      schema: {
        summary: "Remove an instance's registrations (peak rpc rm; one up needs force)",
        params: instanceParams,
        querystring: Type.Object({
          key: Type.Optional(
            Type.String({ description: 'only this service key (group/name:version)' }),
          ),
          force: WithDefault(
            Type.Boolean({ description: 'remove it even while it is up (in traffic)' }),
            false,
          ),
        }),
      },
    },
    async (request) => {
      const id = request.params.id;
      const key = request.query.key === undefined ? undefined : checkKey(request.query.key);
      const rows = await instanceRegistrations(ctx.pool, id, key);
      if (rows.length === 0) {
        throw new PeakError(
          ErrorCodes.REGISTRY_NOT_FOUND,
          `instance '${id}' is not registered${key === undefined ? '' : ` for ${key}`}; see 'peak rpc ls'`,
          { details: { instanceId: id } },
        );
      }
      const up = rows.filter((r) => r.status === 'up').map((r) => r.serviceKey);
      if (up.length > 0 && !request.query.force) {
        throw new PeakError(
          ErrorCodes.REGISTRY_INSTANCE_UP,
          `instance '${id}' is up (in traffic) for ${up.join(', ')}; take it out first ('peak rpc offline ${id}'), or pass --force`,
          { details: { instanceId: id, up } },
        );
      }
      return { removed: await deleteInstance(ctx.pool, id, key) };
    },
  );

  app.delete(
    '/api/v1/registry/instances/:id',
    {
      ...sdk,
      schema: {
        summary: 'Deregister an instance',
        params: instanceParams,
        querystring: keyQuery,
      },
    },
    async (request) => {
      const key = request.query.key === undefined ? undefined : checkKey(request.query.key);
      const owner = callerApp(request);
      const removed = await deleteInstance(ctx.pool, request.params.id, key, owner);
      if (removed === 0) await refuseForeign(request.params.id, owner);
      return { removed };
    },
  );

  app.get(
    '/api/v1/registry/instances',
    {
      schema: {
        summary: 'Instances, of one service (?key=) or of all',
        querystring: keyQuery,
      },
    },
    async (request) => {
      const key = request.query.key;
      return {
        instances:
          key === undefined
            ? await listAll(ctx.pool)
            : await listInstances(ctx.pool, checkKey(key)),
      };
    },
  );

  app.get(
    '/api/v1/registry/services',
    { schema: { summary: 'Services with their counts of up and offline instances' } },
    async () => {
      const all = await listAll(ctx.pool);
      const byKey = new Map<
        string,
        {
          key: string;
          service: string;
          version: string;
          group: string;
          up: number;
          offline: number;
        }
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
    },
  );

  app.get(
    '/api/v1/registry/watch',
    {
      schema: {
        summary: "Server-Sent Events: each watched service's instances, then every change",
        querystring: Type.Object({
          key: Type.Array(Type.String(), {
            minItems: 1,
            maxItems: 1000,
            takes: '1-1000 ?key=group/name:version parameters',
          }),
        }),
      },
    },
    async (request, reply) => {
      const keys = request.query.key.map(checkKey);
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
