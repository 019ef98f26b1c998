/**
 * Every HTTP route of the control plane, taken from the server's own route table, called
 * four ways: with no credential, a wrong one, an out-of-scope one and a right one. The
 * table below states each route's decision (who may call it) and a request that succeeds;
 * a route the server has that the table does not name fails the test, so a new route
 * cannot land without someone deciding who may call it.
 *
 * - `public`: 2xx with no credential.
 * - `read`: 401 without, 403 with a wrong one, 2xx with an app credential (an app out of
 *   scope gets 403 where the route checks a grant, or an answer without the others' data).
 * - `sdk`: 401, 403, 403 for an app whose grants do not name the resource, 2xx in scope.
 * - `viewer` / `operator` / `admin`: 401, 403, 403 for an app credential, 2xx with the token.
 *
 * Wrong credentials are sent from their own loopback address each (127.1.x.y), so the
 * per-address limit on failed authentications never answers 429 here.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AdminClient } from '../src/admin/admin-client.js';
import { PeakServer, type RouteEntry } from '../src/server/index.js';

interface Answer {
  status: number;
  json: unknown;
}

/** One request; `stream` resolves at the response headers and drops the connection. */
function call(
  base: string,
  method: string,
  target: string,
  options: {
    token?: string | undefined;
    body?: unknown;
    contentType?: string;
    localAddress?: string;
    stream?: boolean;
  } = {},
): Promise<Answer> {
  const url = new URL(target, base);
  const payload =
    options.body === undefined
      ? undefined
      : Buffer.from(typeof options.body === 'string' ? options.body : JSON.stringify(options.body));
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method,
      agent: false,
      ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
      headers: {
        ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }),
        ...(payload === undefined
          ? {}
          : {
              'content-type': options.contentType ?? 'application/json',
              'content-length': payload.length,
            }),
      },
    });
    req.setTimeout(15_000, () => req.destroy(new Error(`${method} ${target}: no answer`)));
    req.on('error', reject);
    req.on('response', (res) => {
      if (options.stream === true && res.statusCode === 200) {
        resolve({ status: 200, json: undefined });
        res.destroy();
        req.destroy();
        return;
      }
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown = text;
        try {
          json = text.length === 0 ? undefined : JSON.parse(text);
        } catch {
          // Prometheus text, not JSON
        }
        resolve({ status: res.statusCode ?? 0, json });
      });
    });
    req.end(payload);
  });
}

type Auth = RouteEntry['auth'];

/** One route's decision and a request that succeeds. */
interface Case {
  auth: Auth;
  scope?: RouteEntry['scope'];
  /** The path (with query) to call. */
  path: string | (() => string);
  body?: unknown;
  contentType?: string;
  /** Runs before the right credential's call (what the call needs to exist). */
  before?: () => Promise<void>;
  /**
   * What an app out of scope gets: 403 (the default for sdk routes and read routes with a
   * grant), `open` (a read any app may make), or `filtered` (2xx without others' data,
   * checked by `hidden`).
   */
  outOfScope?: 403 | 'open' | 'filtered';
  /** For `filtered`: true when the answer shows nothing of the route's resource. */
  hidden?: (json: unknown) => boolean;
  /** True when the answer to the right credential shows the resource (it sees its own). */
  shown?: (json: unknown) => boolean;
  stream?: boolean;
}

const now = () => Date.now();
const traceId = 'ab'.repeat(16);

describe('every route of the route table, four ways', { timeout: 240_000 }, () => {
  let dataDir: string;
  let server: PeakServer;
  let admin: AdminClient;
  let right: string;
  let other: string;
  let halfId = '';
  let messageId = '';
  const adminToken = async () => (await readFile(server.info.adminTokenFile, 'utf8')).trim();

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-route-auth-'));
    server = await PeakServer.start({ dataDir, port: 0 });
    admin = new AdminClient({ servers: server.info.url, token: adminToken });
    right = (
      await admin.apps.create('auth.right', [
        'register:auth.svc',
        'produce:auth.topic',
        'consume:auth.topic/auth-group',
        'read-config:authapp/*',
        'telemetry:auth.*',
        'guard-token:auth',
      ])
    ).credential;
    other = (
      await admin.apps.create('auth.other', [
        'register:other.svc',
        'produce:other.topic',
        'consume:other.topic/other',
        'read-config:other/*',
        'telemetry:other.*',
        'guard-token:other',
      ])
    ).credential;
    await admin.mq.createTopic({ name: 'auth.topic', queues: 1 });
    const sent = await call(server.info.url, 'POST', '/api/v1/mq/topics/auth.topic/messages', {
      token: right,
      body: { messages: [{ body: 'aGk=', keys: ['auth-key'] }] },
    });
    messageId = (sent.json as { ids: string[] }).ids[0]!;
    for (const value of ['1', '2']) {
      await admin.config.publish({ app: 'authapp', group: 'g', key: 'k' }, { value });
    }
    await admin.alerts.putRule('auth-rule', {
      kind: 'error-rate',
      service: 'auth.svc',
      threshold: 0.5,
    });
  });

  after(async () => {
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  const item = '/api/v1/config/items/authapp/g/k';
  const startGray = () =>
    admin.config.gray({ app: 'authapp', group: 'g', key: 'k' }, { value: '3', tags: ['canary'] });
  const CASES: Record<string, Case> = {
    'GET /health': { auth: 'public', path: '/health' },
    'GET /ready': { auth: 'public', path: '/ready' },
    'GET /api/v1/info': { auth: 'public', path: '/api/v1/info' },
    'GET /api/v1/nodes': { auth: 'read', path: '/api/v1/nodes', outOfScope: 'open' },
    'POST /api/v1/admin/token/rotate': {
      auth: 'admin',
      path: '/api/v1/admin/token/rotate',
      body: {},
    },
    'POST /api/v1/apps': {
      auth: 'admin',
      path: '/api/v1/apps',
      body: { name: 'auth.tmp', can: ['telemetry'] },
    },
    'GET /api/v1/apps': { auth: 'viewer', path: '/api/v1/apps' },
    'PUT /api/v1/apps/:app/scopes': {
      auth: 'admin',
      path: '/api/v1/apps/auth.tmp/scopes',
      body: { can: ['telemetry', 'guard-token'] },
    },
    'POST /api/v1/apps/:app/rotate': {
      auth: 'admin',
      path: '/api/v1/apps/auth.tmp/rotate',
      body: { overlapSeconds: 0 },
    },
    'POST /api/v1/apps/:app/revoke': {
      auth: 'admin',
      path: '/api/v1/apps/auth.tmp/revoke',
      body: {},
    },
    'GET /api/v1/identity/keys': { auth: 'public', path: '/api/v1/identity/keys' },
    'POST /api/v1/identity': {
      auth: 'read',
      path: '/api/v1/identity',
      body: {},
      outOfScope: 'open',
    },
    'POST /api/v1/identity/keys/rotate': {
      auth: 'admin',
      path: '/api/v1/identity/keys/rotate',
      body: {},
    },
    'POST /api/v1/registry/instances': {
      auth: 'sdk',
      scope: 'register',
      path: '/api/v1/registry/instances',
      body: {
        instanceId: 'auth-i1',
        service: 'auth.svc',
        version: '1.0.0',
        group: 'default',
        host: '127.0.0.1',
        port: 9,
        weight: 100,
      },
    },
    'PUT /api/v1/registry/instances/:id/lease': {
      auth: 'sdk',
      scope: 'register',
      path: '/api/v1/registry/instances/auth-i1/lease',
      body: {},
    },
    'PATCH /api/v1/registry/instances/:id': {
      auth: 'sdk',
      scope: 'register',
      path: '/api/v1/registry/instances/auth-i1',
      body: { weight: 50 },
    },
    'POST /api/v1/registry/instances/:id/admin': {
      auth: 'admin',
      path: '/api/v1/registry/instances/auth-i1/admin',
      body: { status: 'up' },
    },
    'DELETE /api/v1/registry/instances/:id': {
      auth: 'sdk',
      scope: 'register',
      path: '/api/v1/registry/instances/auth-i1',
    },
    'GET /api/v1/registry/instances': {
      auth: 'read',
      path: '/api/v1/registry/instances',
      outOfScope: 'open',
    },
    'GET /api/v1/registry/services': {
      auth: 'read',
      path: '/api/v1/registry/services',
      outOfScope: 'open',
    },
    'GET /api/v1/registry/watch': {
      auth: 'read',
      path: '/api/v1/registry/watch?key=default/auth.svc:1.0.0',
      outOfScope: 'open',
      stream: true,
    },
    'POST /api/v1/guard/cluster/token': {
      auth: 'sdk',
      scope: 'guard-token',
      path: '/api/v1/guard/cluster/token',
      body: { namespace: 'auth', flowId: 'f1', clientId: 'c1', count: 10, acquire: 1 },
    },
    'POST /api/v1/guard/report': {
      auth: 'sdk',
      scope: 'guard-token',
      path: '/api/v1/guard/report',
      body: { app: 'auth', instance: 'i1', metrics: [] },
    },
    'GET /api/v1/guard/cluster': {
      auth: 'read',
      path: '/api/v1/guard/cluster',
      outOfScope: 'open',
    },
    'GET /api/v1/guard/rules': { auth: 'read', path: '/api/v1/guard/rules', outOfScope: 'open' },
    'GET /api/v1/guard/stats': {
      auth: 'read',
      path: '/api/v1/guard/stats?resource=r',
      outOfScope: 'open',
    },
    'POST /api/v1/mq/topics': {
      auth: 'admin',
      path: '/api/v1/mq/topics',
      body: { name: 'auth.t2' },
    },
    'GET /api/v1/mq/topics': { auth: 'read', path: '/api/v1/mq/topics', outOfScope: 'open' },
    'POST /api/v1/mq/topics/:topic/messages': {
      auth: 'sdk',
      scope: 'produce',
      path: '/api/v1/mq/topics/auth.topic/messages',
      body: { messages: [{ body: 'aGk=' }] },
    },
    'POST /api/v1/mq/topics/:topic/half': {
      auth: 'sdk',
      scope: 'produce',
      path: '/api/v1/mq/topics/auth.topic/half',
      body: { message: { body: 'aGk=' }, producerGroup: 'auth-pg' },
    },
    'POST /api/v1/mq/transactions/:id/:action': {
      auth: 'sdk',
      scope: 'produce',
      path: () => `/api/v1/mq/transactions/${halfId}/rollback`,
      body: {},
    },
    'POST /api/v1/mq/producer-groups/:producerGroup/checks': {
      auth: 'sdk',
      scope: 'produce',
      path: '/api/v1/mq/producer-groups/auth-pg/checks',
      body: {},
      outOfScope: 'filtered',
      hidden: (j) => (j as { checks: unknown[] }).checks.length === 0,
    },
    'POST /api/v1/mq/groups/:group/receive': {
      auth: 'sdk',
      scope: 'consume',
      path: '/api/v1/mq/groups/auth-group/receive',
      body: { topic: 'auth.topic', consumerId: 'c1', waitMs: 0 },
    },
    'POST /api/v1/mq/groups/:group/stream': {
      auth: 'sdk',
      scope: 'consume',
      path: '/api/v1/mq/groups/auth-group/stream',
      body: { topic: 'auth.topic', consumerId: 'c2' },
      stream: true,
    },
    'POST /api/v1/mq/groups/:group/ack': {
      auth: 'sdk',
      scope: 'consume',
      path: '/api/v1/mq/groups/auth-group/ack',
      body: { topic: 'auth.topic', consumerId: 'c1', receipts: [] },
    },
    'POST /api/v1/mq/groups/:group/nack': {
      auth: 'sdk',
      scope: 'consume',
      path: '/api/v1/mq/groups/auth-group/nack',
      body: { topic: 'auth.topic', consumerId: 'c1', receipts: [] },
    },
    'POST /api/v1/mq/groups/:group/leave': {
      auth: 'sdk',
      scope: 'consume',
      path: '/api/v1/mq/groups/auth-group/leave',
      body: { topic: 'auth.topic', consumerId: 'c1' },
    },
    'GET /api/v1/mq/messages/:id': {
      auth: 'read',
      path: () => `/api/v1/mq/messages/${messageId}`,
      outOfScope: 'filtered',
      hidden: (j) => (j as { message?: unknown }).message === undefined,
      shown: (j) => (j as { message?: unknown }).message !== undefined,
    },
    'GET /api/v1/mq/messages': {
      auth: 'read',
      path: '/api/v1/mq/messages?key=auth-key',
      outOfScope: 'filtered',
      hidden: (j) => (j as { messages: unknown[] }).messages.length === 0,
      shown: (j) => (j as { messages: unknown[] }).messages.length === 1,
    },
    'GET /api/v1/mq/groups/:group/dlq': {
      auth: 'read',
      path: '/api/v1/mq/groups/auth-group/dlq',
      outOfScope: 'filtered',
      hidden: (j) => (j as { messages: unknown[] }).messages.length === 0,
    },
    'POST /api/v1/mq/groups/:group/dlq/resend': {
      auth: 'admin',
      path: '/api/v1/mq/groups/auth-group/dlq/resend',
      body: { ids: 'all' },
    },
    'POST /api/v1/mq/groups/:group/reset-offset': {
      auth: 'admin',
      path: '/api/v1/mq/groups/auth-group/reset-offset',
      body: { topic: 'auth.topic', timestamp: now() - 60_000 },
    },
    'GET /api/v1/mq/stats': { auth: 'read', path: '/api/v1/mq/stats', outOfScope: 'open' },
    'GET /api/v1/config/apps': { auth: 'read', path: '/api/v1/config/apps', outOfScope: 'open' },
    'GET /api/v1/config/items': {
      auth: 'read',
      scope: 'read-config',
      path: '/api/v1/config/items?app=authapp',
    },
    'GET /api/v1/config/entries': {
      auth: 'read',
      scope: 'read-config',
      path: '/api/v1/config/entries?app=authapp',
    },
    'GET /api/v1/config/items/:app/:group/:key': {
      auth: 'read',
      scope: 'read-config',
      path: item,
    },
    'PUT /api/v1/config/items/:app/:group/:key': {
      auth: 'admin',
      path: item,
      body: { value: '4' },
    },
    'GET /api/v1/config/items/:app/:group/:key/history': {
      auth: 'read',
      scope: 'read-config',
      path: `${item}/history`,
    },
    'GET /api/v1/config/items/:app/:group/:key/versions/:version': {
      auth: 'read',
      scope: 'read-config',
      path: `${item}/versions/1`,
    },
    'GET /api/v1/config/items/:app/:group/:key/diff': {
      auth: 'read',
      scope: 'read-config',
      path: `${item}/diff`,
    },
    'POST /api/v1/config/items/:app/:group/:key/rollback': {
      auth: 'admin',
      path: `${item}/rollback`,
      body: { toVersion: 1 },
    },
    'POST /api/v1/config/items/:app/:group/:key/gray': {
      auth: 'admin',
      path: `${item}/gray`,
      body: { value: '5', tags: ['canary'] },
    },
    'POST /api/v1/config/items/:app/:group/:key/gray/promote': {
      auth: 'admin',
      path: `${item}/gray/promote`,
      body: {},
      before: async () => {
        await startGray().catch(() => undefined);
      },
    },
    'POST /api/v1/config/items/:app/:group/:key/gray/abort': {
      auth: 'admin',
      path: `${item}/gray/abort`,
      body: {},
      before: async () => {
        await startGray();
      },
    },
    'GET /api/v1/config/audit': { auth: 'viewer', path: '/api/v1/config/audit' },
    'GET /api/v1/config/watch': {
      auth: 'read',
      scope: 'read-config',
      path: '/api/v1/config/watch?app=authapp',
      stream: true,
    },
    'POST /api/v1/telemetry/spans': {
      auth: 'sdk',
      scope: 'telemetry',
      path: '/api/v1/telemetry/spans',
      body: {
        spans: [
          {
            traceId,
            spanId: 'cd'.repeat(8),
            name: 'GET /x',
            kind: 'server',
            service: 'auth.svc',
            startUs: now() * 1000,
            durationUs: 5,
          },
        ],
      },
    },
    'POST /api/v1/telemetry/metrics': {
      auth: 'sdk',
      scope: 'telemetry',
      path: '/api/v1/telemetry/metrics',
      body: { service: 'auth.svc', instance: 'i1', metrics: [] },
    },
    'GET /api/v1/telemetry/metrics/live': {
      auth: 'read',
      path: '/api/v1/telemetry/metrics/live',
      outOfScope: 'open',
    },
    'GET /api/v1/telemetry/traces/:traceId': {
      auth: 'read',
      path: `/api/v1/telemetry/traces/${traceId}`,
      outOfScope: 'open',
    },
    'GET /api/v1/telemetry/traces': {
      auth: 'read',
      path: '/api/v1/telemetry/traces',
      outOfScope: 'open',
    },
    'GET /api/v1/telemetry/topology': {
      auth: 'read',
      path: '/api/v1/telemetry/topology',
      outOfScope: 'open',
    },
    'GET /api/v1/telemetry/endpoints': {
      auth: 'read',
      path: '/api/v1/telemetry/endpoints',
      outOfScope: 'open',
    },
    'GET /api/v1/telemetry/slow-sql': {
      auth: 'read',
      path: '/api/v1/telemetry/slow-sql',
      outOfScope: 'open',
    },
    'PUT /api/v1/telemetry/alerts/rules/:name': {
      auth: 'admin',
      path: '/api/v1/telemetry/alerts/rules/auth-rule-2',
      body: { kind: 'error-rate', service: 'auth.svc', threshold: 0.5 },
    },
    'DELETE /api/v1/telemetry/alerts/rules/:name': {
      auth: 'admin',
      path: '/api/v1/telemetry/alerts/rules/auth-rule-2',
    },
    'POST /api/v1/telemetry/alerts/rules/:name/silence': {
      auth: 'admin',
      path: '/api/v1/telemetry/alerts/rules/auth-rule/silence',
      body: { minutes: 5 },
    },
    'GET /api/v1/telemetry/alerts/rules': {
      auth: 'read',
      path: '/api/v1/telemetry/alerts/rules',
      outOfScope: 'open',
    },
    'GET /api/v1/telemetry/alerts/evaluator': {
      auth: 'read',
      path: '/api/v1/telemetry/alerts/evaluator',
      outOfScope: 'open',
    },
    'GET /api/v1/telemetry/alerts/events': {
      auth: 'read',
      path: '/api/v1/telemetry/alerts/events',
      outOfScope: 'open',
    },
    'GET /metrics': { auth: 'public', path: '/metrics' },
    'GET /api/v1/openapi.json': { auth: 'public', path: '/api/v1/openapi.json' },
    'POST /v1/traces': {
      auth: 'sdk',
      scope: 'telemetry',
      path: '/v1/traces',
      body: {
        resourceSpans: [
          {
            resource: { attributes: [{ key: 'service.name', value: { stringValue: 'auth.svc' } }] },
            scopeSpans: [
              {
                spans: [
                  {
                    traceId,
                    spanId: 'ef'.repeat(8),
                    name: 'job',
                    kind: 1,
                    startTimeUnixNano: String(BigInt(now()) * 1_000_000n),
                    endTimeUnixNano: String(BigInt(now()) * 1_000_000n + 5_000_000n),
                  },
                ],
              },
            ],
          },
        ],
      },
    },
  };

  it('names every route of the route table with the decision the server applies', () => {
    const missing: string[] = [];
    const differ: string[] = [];
    for (const route of server.routes()) {
      const id = `${route.method} ${route.url}`;
      const c = CASES[id];
      if (c === undefined) {
        missing.push(id);
        continue;
      }
      if (c.auth !== route.auth || c.scope !== route.scope) {
        differ.push(
          `${id}: the server says ${route.auth}${route.scope ? `/${route.scope}` : ''}, this table ${c.auth}${c.scope ? `/${c.scope}` : ''}`,
        );
      }
    }
    assert.deepEqual(
      missing,
      [],
      'routes with no decision in this table: decide who may call each (config.auth, config.scope) and add a case',
    );
    assert.deepEqual(differ, []);
    const known = new Set(server.routes().map((r) => `${r.method} ${r.url}`));
    assert.deepEqual(
      Object.keys(CASES).filter((k) => !known.has(k)),
      [],
      'cases for routes the server does not have',
    );
  });

  it('answers 401 without a credential, 403 with a wrong or out-of-scope one, 2xx with a right one', async () => {
    const problems: string[] = [];
    let address = 0;
    // Before the transaction route runs, a half message of auth.topic waits for it.
    const half = await call(server.info.url, 'POST', '/api/v1/mq/topics/auth.topic/half', {
      token: right,
      body: { message: { body: 'aGk=' }, producerGroup: 'auth-pg' },
    });
    halfId = (half.json as { id: string }).id;
    for (const route of server.routes()) {
      const id = `${route.method} ${route.url}`;
      const c = CASES[id]!;
      const target = typeof c.path === 'function' ? c.path() : c.path;
      const send = (token: string | undefined, localAddress?: string) =>
        call(server.info.url, route.method, target, {
          token,
          body: c.body,
          ...(c.contentType === undefined ? {} : { contentType: c.contentType }),
          ...(localAddress === undefined ? {} : { localAddress }),
          ...(c.stream === true ? { stream: true } : {}),
        });
      const expect = (what: string, got: Answer, want: number | 'ok') => {
        const pass = want === 'ok' ? got.status >= 200 && got.status < 300 : got.status === want;
        if (!pass)
          problems.push(`${id} ${what}: ${got.status} ${JSON.stringify(got.json)?.slice(0, 300)}`);
      };
      if (c.auth === 'public') {
        expect('with no credential', await send(undefined), 'ok');
        continue;
      }
      address++;
      expect('with no credential', await send(undefined), 401);
      expect(
        'with a wrong credential',
        await send('peakapp_wrong', `127.1.${address >> 8}.${address & 255}`),
        403,
      );
      const appCaller = c.auth === 'read' || c.auth === 'sdk' ? other : right;
      const outcome = c.auth === 'read' || c.auth === 'sdk' ? (c.outOfScope ?? 403) : 403;
      const outside = await send(appCaller);
      if (outcome === 'open') {
        expect('with another app', outside, 'ok');
      } else if (outcome === 'filtered') {
        expect('out of scope', outside, 'ok');
        if (outside.status < 300 && !c.hidden!(outside.json)) {
          problems.push(
            `${id} out of scope: shows data it should hide: ${JSON.stringify(outside.json)}`,
          );
        }
      } else {
        expect('out of scope', outside, 403);
      }
      await c.before?.();
      const token = c.auth === 'read' || c.auth === 'sdk' ? right : await adminToken();
      const inside = await send(token);
      expect('with the right credential', inside, 'ok');
      if (c.shown !== undefined && inside.status < 300 && !c.shown(inside.json)) {
        problems.push(
          `${id}: the right credential does not see its own: ${JSON.stringify(inside.json)}`,
        );
      }
    }
    assert.deepEqual(problems, []);
  });
});
