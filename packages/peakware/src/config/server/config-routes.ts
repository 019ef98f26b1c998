/**
 * Config center routes. Reads and the watch stream (SSE) are open to SDKs; every change
 * (publish, rollback, gray, promote, abort) needs the admin token and is audited with the
 * author the caller names (`author` in the body, default `admin`) and where it came from
 * (address and user agent).
 */
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ErrorCodes, InvalidArgumentError, PeakError } from '../../core/errors.js';
import type { ApiModule } from '../../server/http-api.js';
import { effectiveEntry } from '../config-entry.js';
import type { ConfigSchema } from '../config-schema.js';
import { lineDiff } from '../line-diff.js';
import { ConfigHub } from './config-hub.js';
import {
  type Actor,
  abortGray,
  checkRef,
  getItem,
  getVersion,
  history,
  type ItemRef,
  listApps,
  promoteGray,
  publish,
  readAudit,
  readItems,
  rollback,
  startGray,
} from './config-store.js';

const author = z.string().min(1).max(128).optional();
const comment = z.string().max(1024).default('');
const format = z.enum(['json', 'text']).default('json');
const version = z.number().int().min(0);
const schema = z.union([z.record(z.string(), z.unknown()), z.null()]).optional();

const publishBody = z.object({
  value: z.string(),
  format,
  schema,
  expectedVersion: version.optional(),
  comment,
  author,
});
const rollbackBody = z.object({
  toVersion: version.min(1),
  expectedVersion: version.optional(),
  comment,
  author,
});
const grayBody = z.object({
  value: z.string(),
  format,
  tags: z.array(z.string().min(1).max(64)).max(32).default([]),
  instanceIds: z.array(z.string().min(1).max(128)).max(1000).default([]),
  comment,
  author,
});
const promoteBody = z.object({ comment, author }).optional();

function parse<T>(s: z.ZodType<T>, body: unknown, what: string): T {
  const r = s.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new InvalidArgumentError(
      `${what}: ${issue?.path.map(String).join('.') || '(body)'}: ${issue?.message ?? 'invalid'}`,
      { details: { input: issue?.path.map(String).join('.') ?? '' } },
    );
  }
  return r.data;
}

function actor(request: FastifyRequest, named: string | undefined): Actor {
  const agent = request.headers['user-agent'];
  return {
    author: named ?? 'admin',
    source: `${request.ip}${typeof agent === 'string' ? ` ${agent.slice(0, 128)}` : ''}`,
  };
}

type ItemParams = { Params: { app: string; group: string; key: string } };

function ref(request: FastifyRequest<ItemParams>): ItemRef {
  return checkRef({
    app: request.params.app,
    group: request.params.group,
    key: request.params.key,
  });
}

function list(raw: string | string[] | undefined): string[] {
  return Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
}

function positiveInt(raw: string | undefined, what: string, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1)
    throw new InvalidArgumentError(`${what} must be a positive integer, got '${raw}'`, {
      details: { input: what },
    });
  return n;
}

/** The config center's routes and its push hub (started and stopped with the HTTP server). */
export const configRoutes: ApiModule = (app, ctx) => {
  const hub = new ConfigHub(ctx.pool, ctx.logger.child({ component: 'config' }));
  app.addHook('onReady', async () => hub.start());
  app.addHook('preClose', async () => hub.stop());

  void app.register(async (scope) => {
    const base = '/api/v1/config';
    const item = `${base}/items/:app/:group/:key`;

    scope.get(`${base}/apps`, async () => ({ apps: await listApps(ctx.pool) }));

    scope.get<{ Querystring: { app?: string } }>(`${base}/items`, async (request) => {
      const appName = request.query.app;
      if (appName === undefined)
        throw new InvalidArgumentError('name the app: ?app=<app>', { details: { input: 'app' } });
      checkRef({ app: appName, group: 'g', key: 'k' });
      const rows = await readItems(ctx.pool, appName);
      if (rows.length === 0) {
        const apps = (await listApps(ctx.pool)).map((a) => a.app);
        throw new PeakError(
          ErrorCodes.CONFIG_NOT_FOUND,
          `app '${appName}' has no config items; known apps: ${apps.slice(0, 20).join(', ') || 'none'} (publish one with 'peak config set ${appName}/<group>/<key> <value>')`,
          { details: { app: appName } },
        );
      }
      return { items: rows.map((r) => ({ ...r.item, gray: r.gray })) };
    });

    // What one instance sees of an app (the polling path, and a one-shot read for SDKs).
    scope.get<{ Querystring: { app?: string; instance?: string; tag?: string | string[] } }>(
      `${base}/entries`,
      async (request) => {
        const appName = request.query.app ?? '';
        checkRef({ app: appName, group: 'g', key: 'k' });
        const tags = new Set(list(request.query.tag));
        const rows = await readItems(ctx.pool, appName);
        return {
          app: appName,
          entries: rows.map((r) => effectiveEntry(r, request.query.instance, tags)),
        };
      },
    );

    scope.get<ItemParams>(item, async (request) => {
      const r = ref(request);
      const found = await getItem(ctx.pool, r);
      if (found === undefined) {
        throw new PeakError(
          ErrorCodes.CONFIG_NOT_FOUND,
          `config item ${r.app}/${r.group}/${r.key} does not exist; see 'peak config get ${r.app}'`,
          { details: { ...r } },
        );
      }
      return { ...found.item, gray: found.gray };
    });

    scope.put<ItemParams>(item, async (request) => {
      const r = ref(request);
      const b = parse(publishBody, request.body, 'publish');
      return publish(
        ctx.pool,
        r,
        {
          format: b.format,
          value: b.value,
          ...(b.schema === undefined ? {} : { schema: b.schema as ConfigSchema | null }),
          ...(b.expectedVersion === undefined ? {} : { expectedVersion: b.expectedVersion }),
          comment: b.comment,
        },
        actor(request, b.author),
      );
    });

    scope.get<ItemParams & { Querystring: { limit?: string } }>(
      `${item}/history`,
      async (request) => {
        const limit = Math.min(1000, positiveInt(request.query.limit, 'limit', 50));
        return { versions: await history(ctx.pool, ref(request), limit) };
      },
    );

    scope.get<ItemParams & { Params: { version: string } }>(
      `${item}/versions/:version`,
      async (request) =>
        getVersion(ctx.pool, ref(request), positiveInt(request.params.version, 'version', 1)),
    );

    scope.get<ItemParams & { Querystring: { from?: string; to?: string } }>(
      `${item}/diff`,
      async (request) => {
        const r = ref(request);
        const found = await getItem(ctx.pool, r);
        if (found === undefined) await history(ctx.pool, r, 1); // throws the not-found error
        const current = found?.item.version ?? 1;
        const to = positiveInt(request.query.to, 'to', current);
        const from = positiveInt(request.query.from, 'from', Math.max(1, to - 1));
        const [a, b] = await Promise.all([
          getVersion(ctx.pool, r, from),
          getVersion(ctx.pool, r, to),
        ]);
        return { from, to, diff: lineDiff(pretty(a.value, a.format), pretty(b.value, b.format)) };
      },
    );

    scope.post<ItemParams>(`${item}/rollback`, async (request) => {
      const b = parse(rollbackBody, request.body, 'rollback');
      return rollback(
        ctx.pool,
        ref(request),
        b.toVersion,
        b.expectedVersion,
        b.comment || `rollback to version ${b.toVersion}`,
        actor(request, b.author),
      );
    });

    scope.post<ItemParams>(`${item}/gray`, async (request) => {
      const b = parse(grayBody, request.body, 'gray');
      return startGray(
        ctx.pool,
        ref(request),
        {
          format: b.format,
          value: b.value,
          tags: b.tags,
          instanceIds: b.instanceIds,
          comment: b.comment,
        },
        actor(request, b.author),
      );
    });

    scope.post<ItemParams>(`${item}/gray/promote`, async (request) => {
      const b = parse(promoteBody, request.body, 'promote');
      return promoteGray(ctx.pool, ref(request), b?.comment ?? '', actor(request, b?.author));
    });

    scope.post<ItemParams>(`${item}/gray/abort`, async (request) => {
      const b = parse(promoteBody, request.body, 'abort');
      return abortGray(ctx.pool, ref(request), actor(request, b?.author));
    });

    scope.get<{ Querystring: { app?: string; group?: string; key?: string; limit?: string } }>(
      `${base}/audit`,
      async (request) => {
        const q = request.query;
        const limit = Math.min(1000, positiveInt(q.limit, 'limit', 100));
        return {
          audit: await readAudit(
            ctx.pool,
            {
              ...(q.app === undefined ? {} : { app: q.app }),
              ...(q.group === undefined ? {} : { group: q.group }),
              ...(q.key === undefined ? {} : { key: q.key }),
            },
            limit,
          ),
        };
      },
    );

    scope.get<{ Querystring: { app?: string; instance?: string; tag?: string | string[] } }>(
      `${base}/watch`,
      async (request, reply) => {
        const appName = request.query.app ?? '';
        checkRef({ app: appName, group: 'g', key: 'k' });
        const tags = list(request.query.tag);
        if (tags.length > 32)
          throw new InvalidArgumentError('watch takes at most 32 ?tag= parameters', {
            details: { input: 'tag' },
          });
        reply.hijack();
        reply.raw.writeHead(200, {
          'content-type': 'text/event-stream',
          'cache-control': 'no-cache',
          connection: 'keep-alive',
          'x-accel-buffering': 'no',
        });
        reply.raw.write(`: peak config node ${ctx.nodeId}\n\n`);
        try {
          await hub.watch(reply.raw, appName, request.query.instance, tags);
        } catch (err) {
          ctx.logger.warn({ err }, 'config watch failed');
          reply.raw.end();
        }
      },
    );
  });
};

function pretty(value: string, fmt: 'json' | 'text'): string {
  if (fmt === 'text') return value;
  try {
    return JSON.stringify(JSON.parse(value), null, 2);
  } catch {
    return value;
  }
}
