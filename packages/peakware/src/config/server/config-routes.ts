/**
 * Config center routes. Reads and the watch stream (SSE) take any operator token, or an app
 * credential whose `read-config:<app>/<item>` grants cover what is read (a whole app's
 * entries and watch need `<app>/*`); the audit trail is for operators. Every change
 * (publish, rollback, gray, promote, abort, remove) needs an operator token (role operator or admin)
 * and is audited with the
 * author the caller names (`author` in the body, default `admin`) and where it came from
 * (address and user agent).
 */
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { ErrorCodes, PeakError } from '../../core/errors.js';
import { authorize } from '../../server/access.js';
import type { ApiModule } from '../../server/http-api.js';
import { StringEnum, WithDefault } from '../../server/route-schema.js';
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
  removeItem,
  rollback,
  startGray,
} from './config-store.js';

const NAME = { pattern: '^[A-Za-z0-9_.-]{1,128}$', takes: '1-128 letters, digits or _ . -' };
const author = Type.Optional(
  Type.String({ minLength: 1, maxLength: 128, description: 'who makes the change' }),
);
const comment = WithDefault(Type.String({ maxLength: 1024 }), '');
const format = WithDefault(StringEnum(['json', 'text']), 'json');
const version = Type.Integer({ minimum: 0 });

const publishBody = Type.Object({
  value: Type.String({ description: 'the value, as text (JSON text for format json)' }),
  format,
  schema: Type.Optional(
    Type.Unsafe<ConfigSchema | null>({
      type: ['object', 'null'],
      description:
        'a JSON Schema for the value, or a built-in kind { "$peak": "guard-rules" | "rpc-routes" | "lb-weights" }; null removes it; absent keeps the one in force',
    }),
  ),
  expectedVersion: Type.Optional(
    Type.Integer({ minimum: 0, description: 'refuse (409) unless the item is at this version' }),
  ),
  comment,
  author,
});
const rollbackBody = Type.Object({
  toVersion: Type.Integer({ minimum: 1 }),
  expectedVersion: Type.Optional(version),
  comment,
  author,
});
const grayBody = Type.Object({
  value: Type.String(),
  format,
  tags: WithDefault(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 32 }), []),
  instanceIds: WithDefault(
    Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { maxItems: 1000 }),
    [],
  ),
  comment,
  author,
});
const promoteBody = Type.Object({ comment, author });
const abortBody = Type.Object({ author });

const itemParams = Type.Object({
  app: Type.String(NAME),
  group: Type.String(NAME),
  key: Type.String(NAME),
});
type ItemParams = Static<typeof itemParams>;

const limit = (fallback: number) =>
  WithDefault(Type.Integer({ minimum: 1, description: 'at most 1000 are returned' }), fallback);
const instanceView = {
  app: Type.Optional(Type.String({ description: 'the app' })),
  instance: Type.Optional(Type.String({ description: 'the instance id, for gray releases' })),
  tag: Type.Optional(
    Type.Array(Type.String(), { maxItems: 32, description: "the instance's tags, for gray" }),
  ),
};

function actor(request: FastifyRequest, named: string | undefined): Actor {
  const agent = request.headers['user-agent'];
  return {
    author: named ?? 'admin',
    source: `${request.ip}${typeof agent === 'string' ? ` ${agent.slice(0, 128)}` : ''}`,
  };
}

function ref(params: ItemParams): ItemRef {
  return checkRef({ app: params.app, group: params.group, key: params.key });
}

/** Route config of the reads: any operator token, or an app with a read-config grant. */
const READ = { config: { auth: 'read' as const, scope: 'read-config' as const } };

/** Refuses an app whose grants do not cover item `r`. */
function mayRead(request: FastifyRequest, r: ItemRef): ItemRef {
  authorize(request, 'read-config', `${r.app}/${r.group}/${r.key}`);
  return r;
}

/** Refuses an app whose grants do not cover all of app `appName`'s items. */
function mayReadApp(request: FastifyRequest, appName: string): void {
  authorize(request, 'read-config', `${appName}/*`);
}

/** The config center's routes and its push hub (started and stopped with the HTTP server). */
export const configRoutes: ApiModule = (app, ctx) => {
  const hub = new ConfigHub(ctx.pool, ctx.logger.child({ component: 'config' }));
  app.addHook('onReady', async () => hub.start());
  app.addHook('preClose', async () => hub.stop());

  const base = '/api/v1/config';
  const item = `${base}/items/:app/:group/:key`;

  app.get(`${base}/apps`, { schema: { summary: 'Apps with config items' } }, async () => ({
    apps: await listApps(ctx.pool),
  }));

  app.get(
    `${base}/items`,
    {
      ...READ,
      schema: {
        summary: "An app's items, with any gray release in progress",
        querystring: Type.Object({ app: Type.String({ description: 'the app' }) }),
      },
    },
    async (request) => {
      const appName = request.query.app;
      checkRef({ app: appName, group: 'g', key: 'k' });
      mayReadApp(request, appName);
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
    },
  );

  // What one instance sees of an app (the polling path, and a one-shot read for SDKs).
  app.get(
    `${base}/entries`,
    {
      ...READ,
      schema: {
        summary: 'What one instance sees of an app (gray releases applied)',
        querystring: Type.Object(instanceView),
      },
    },
    async (request) => {
      const appName = request.query.app ?? '';
      checkRef({ app: appName, group: 'g', key: 'k' });
      mayReadApp(request, appName);
      const tags = new Set(request.query.tag ?? []);
      const rows = await readItems(ctx.pool, appName);
      return {
        app: appName,
        entries: rows.map((r) => effectiveEntry(r, request.query.instance, tags)),
      };
    },
  );

  app.get(
    item,
    {
      ...READ,
      schema: { summary: 'One item: its value, version and gray release', params: itemParams },
    },
    async (request) => {
      const r = mayRead(request, ref(request.params));
      const found = await getItem(ctx.pool, r);
      if (found === undefined) {
        throw new PeakError(
          ErrorCodes.CONFIG_NOT_FOUND,
          `config item ${r.app}/${r.group}/${r.key} does not exist; see 'peak config get ${r.app}'`,
          { details: { ...r } },
        );
      }
      return { ...found.item, gray: found.gray };
    },
  );

  app.put(
    item,
    {
      config: { auth: 'operator' },
      schema: {
        summary: 'Publish a new version (checked against its schema; pushed to every watcher)',
        params: itemParams,
        body: publishBody,
      },
    },
    async (request) => {
      const r = ref(request.params);
      const b = request.body;
      return publish(
        ctx.pool,
        r,
        {
          format: b.format,
          value: b.value,
          ...(b.schema === undefined ? {} : { schema: b.schema }),
          ...(b.expectedVersion === undefined ? {} : { expectedVersion: b.expectedVersion }),
          comment: b.comment,
        },
        actor(request, b.author),
      );
    },
  );

  app.delete(
    item,
    {
      config: { auth: 'operator' },
      schema: {
        summary:
          'Remove an item (peak config rm): its versions and audit trail stay; watchers are told it is gone',
        params: itemParams,
        querystring: Type.Object({
          expectedVersion: Type.Optional(
            Type.Integer({
              minimum: 1,
              description: 'refuse (409) unless the item is at this version',
            }),
          ),
          comment,
          author,
        }),
      },
    },
    async (request) => {
      const q = request.query;
      return removeItem(
        ctx.pool,
        ref(request.params),
        {
          ...(q.expectedVersion === undefined ? {} : { expectedVersion: q.expectedVersion }),
          comment: q.comment,
        },
        actor(request, q.author),
      );
    },
  );

  app.get(
    `${item}/history`,
    {
      ...READ,
      schema: {
        summary: "An item's versions, newest first",
        params: itemParams,
        querystring: Type.Object({ limit: limit(50) }),
      },
    },
    async (request) => {
      const n = Math.min(1000, request.query.limit);
      return { versions: await history(ctx.pool, mayRead(request, ref(request.params)), n) };
    },
  );

  app.get(
    `${item}/versions/:version`,
    {
      ...READ,
      schema: {
        summary: 'One version of an item',
        params: Type.Object({ ...itemParams.properties, version: Type.Integer({ minimum: 1 }) }),
      },
    },
    async (request) =>
      getVersion(ctx.pool, mayRead(request, ref(request.params)), request.params.version),
  );

  app.get(
    `${item}/diff`,
    {
      ...READ,
      schema: {
        summary: 'A line diff between two versions (default: the current one and the one before)',
        params: itemParams,
        querystring: Type.Object({
          from: Type.Optional(Type.Integer({ minimum: 1 })),
          to: Type.Optional(Type.Integer({ minimum: 1 })),
        }),
      },
    },
    async (request) => {
      const r = mayRead(request, ref(request.params));
      const found = await getItem(ctx.pool, r);
      if (found === undefined) await history(ctx.pool, r, 1); // throws the not-found error
      const current = found?.item.version ?? 1;
      const to = request.query.to ?? current;
      const from = request.query.from ?? Math.max(1, to - 1);
      const [a, b] = await Promise.all([
        getVersion(ctx.pool, r, from),
        getVersion(ctx.pool, r, to),
      ]);
      return { from, to, diff: lineDiff(pretty(a.value, a.format), pretty(b.value, b.format)) };
    },
  );

  app.post(
    `${item}/rollback`,
    {
      config: { auth: 'operator' },
      schema: {
        summary: 'Publish an earlier version again, as a new version',
        params: itemParams,
        body: rollbackBody,
      },
    },
    async (request) => {
      const b = request.body;
      return rollback(
        ctx.pool,
        ref(request.params),
        b.toVersion,
        b.expectedVersion,
        b.comment || `rollback to version ${b.toVersion}`,
        actor(request, b.author),
      );
    },
  );

  app.post(
    `${item}/gray`,
    {
      config: { auth: 'operator' },
      schema: {
        summary: 'Start a gray release: a value for the instances with these tags or ids only',
        params: itemParams,
        body: grayBody,
      },
    },
    async (request) => {
      const b = request.body;
      return startGray(
        ctx.pool,
        ref(request.params),
        {
          format: b.format,
          value: b.value,
          tags: b.tags,
          instanceIds: b.instanceIds,
          comment: b.comment,
        },
        actor(request, b.author),
      );
    },
  );

  app.post(
    `${item}/gray/promote`,
    {
      config: { auth: 'operator' },
      schema: {
        summary: "Promote the gray value: it becomes the item's next version for everyone",
        params: itemParams,
        body: promoteBody,
      },
    },
    async (request) =>
      promoteGray(
        ctx.pool,
        ref(request.params),
        request.body.comment,
        actor(request, request.body.author),
      ),
  );

  app.post(
    `${item}/gray/abort`,
    {
      config: { auth: 'operator' },
      schema: {
        summary: 'Abort the gray release: every instance sees the released value again',
        params: itemParams,
        body: abortBody,
      },
    },
    async (request) =>
      abortGray(ctx.pool, ref(request.params), actor(request, request.body.author)),
  );

  app.get(
    `${base}/audit`,
    {
      config: { auth: 'viewer' },
      schema: {
        summary: 'The audit trail of changes, newest first',
        querystring: Type.Object({
          app: Type.Optional(Type.String()),
          group: Type.Optional(Type.String()),
          key: Type.Optional(Type.String()),
          limit: limit(100),
        }),
      },
    },
    async (request) => {
      const q = request.query;
      const n = Math.min(1000, q.limit);
      return {
        audit: await readAudit(
          ctx.pool,
          {
            ...(q.app === undefined ? {} : { app: q.app }),
            ...(q.group === undefined ? {} : { group: q.group }),
            ...(q.key === undefined ? {} : { key: q.key }),
          },
          n,
        ),
      };
    },
  );

  app.get(
    `${base}/watch`,
    {
      ...READ,
      schema: {
        summary: 'Server-Sent Events: what one instance sees of an app, then every change',
        querystring: Type.Object(instanceView),
      },
    },
    async (request, reply) => {
      const appName = request.query.app ?? '';
      checkRef({ app: appName, group: 'g', key: 'k' });
      mayReadApp(request, appName);
      const tags = request.query.tag ?? [];
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
};

function pretty(value: string, fmt: 'json' | 'text'): string {
  if (fmt === 'text') return value;
  try {
    return JSON.stringify(JSON.parse(value), null, 2);
  } catch {
    return value;
  }
}
