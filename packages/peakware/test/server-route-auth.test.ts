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
 * - `viewer` / `operator` / `admin`: 401, 403, 403 for an app credential and for a token of
 *   the role below (a viewer's for operator routes, an operator's for admin ones), 2xx with a
 *   token of the role the route needs.
 * - `self`: the route checks a credential of its own (the console's login and logout); its
 *   case says how (`self`).
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
import {
  constantRate,
  customStep,
  defineScenario,
  type StressReport,
  startRun,
} from '../src/stress/index.js';

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
  /** The body, or a function making it when the call is sent (from what `before` made). */
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
  /** For `self` routes: calls the route the ways it is checked; answers the problems. */
  self?: () => Promise<string[]>;
  /** What the right credential (or anyone, on a public route) gets when not a 2xx (an unsupported OTLP signal: 501). */
  answers?: number;
}

const now = () => Date.now();
const traceId = 'ab'.repeat(16);

describe('every route of the route table, four ways', { timeout: 240_000 }, () => {
  let dataDir: string;
  let server: PeakServer;
  let admin: AdminClient;
  let right: string;
  let other: string;
  const roleTokens: Record<'viewer' | 'operator', string> = { viewer: '', operator: '' };
  let halfId = '';
  let messageId = '';
  let stressReport: StressReport;
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
        'drill',
        'stress',
        'txn',
        'scale:auth.*',
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
        'scale:other.*',
        // Grants of the kinds whose pattern is optional, for other targets than the walk's.
        'drill:other.svc',
        'stress:other-*',
        'txn:other.*',
      ])
    ).credential;
    for (const role of ['viewer', 'operator'] as const) {
      roleTokens[role] = (await admin.system.createToken(`walk-${role}`, role)).token;
    }
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
    // A real run's report (one second, five calls of nothing), for the stress routes.
    const run = startRun(
      defineScenario({
        name: 'walk',
        load: constantRate(5, 1),
        steps: [customStep('noop', async () => true)],
        stress: false,
      }),
      { runId: 'walk-done' },
    );
    stressReport = await run.done;
    await admin.stress.createRun({ id: 'walk-done', scenario: 'walk', model: constantRate(5, 1) });
    await admin.stress.finish('walk-done', stressReport);
    // A message the abort route drops; prepared now, so another app's abort finds it and is refused.
    const prepared = await call(server.info.url, 'POST', '/api/v1/txn/msgs', {
      token: right,
      body: walkMsg('walk-msg-2'),
    });
    assert.equal(prepared.status, 200, JSON.stringify(prepared.json));
  });

  after(async () => {
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  const item = '/api/v1/config/items/authapp/g/k';
  const gw = '/api/v1/gateway';
  const gwRoute = {
    name: 'auth-r',
    method: 'GET' as const,
    path: '/auth',
    target: { kind: 'http' as const, urls: ['http://127.0.0.1:9'] },
  };
  const gwRouteExists = () => admin.gateway.putRoute(gwRoute).then(() => undefined);
  const gwAppExists = () => admin.gateway.putApp({ name: 'auth-gw' }).then(() => undefined);
  const gwSubscribed = async () => {
    await gwAppExists();
    await gwRouteExists();
    await admin.gateway.requestSubscription('auth-gw', 'auth-r').catch(() => undefined);
  };
  let gwKeyId = 'gk_none';
  const session = '/api/v1/console/session';
  let selfAddress = 0;
  let walkScheduleId = 0;
  /** The console session routes, checked by hand: they take a token in the body or a cookie. */
  const consoleSession = async (method: string): Promise<string[]> => {
    const problems: string[] = [];
    const want = (what: string, got: Answer, status: number) => {
      if (got.status !== status) {
        problems.push(`${method} ${session} ${what}: ${got.status} ${JSON.stringify(got.json)}`);
      }
    };
    selfAddress++;
    if (method === 'POST') {
      const wrong = await call(server.info.url, 'POST', session, {
        body: { token: 'peak_wrong', name: 'walker' },
        localAddress: `127.2.0.${selfAddress}`,
      });
      want('with a wrong token', wrong, 403);
      const app = await call(server.info.url, 'POST', session, {
        body: { token: right, name: 'walker' },
        localAddress: `127.2.1.${selfAddress}`,
      });
      want('with an app credential', app, 403);
      want(
        'with the admin token',
        await call(server.info.url, 'POST', session, {
          body: { token: await adminToken(), name: 'walker' },
        }),
        200,
      );
      return problems;
    }
    want('with no cookie', await call(server.info.url, method, session), 401);
    const login = await new Promise<{ cookie: string; csrf: string }>((resolve, reject) => {
      const req = http.request(new URL(session, server.info.url), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
      });
      req.on('error', reject);
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const cookie = String(res.headers['set-cookie']?.[0] ?? '').split(';')[0]!;
          const json = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { csrfToken: string };
          resolve({ cookie, csrf: json.csrfToken });
        });
      });
      void adminToken().then((token) => req.end(JSON.stringify({ token, name: 'walker' })));
    });
    const withCookie = (headers: Record<string, string>) =>
      new Promise<number>((resolve, reject) => {
        const req = http.request(new URL(session, server.info.url), {
          method,
          headers: { cookie: login.cookie, ...headers },
        });
        req.on('error', reject);
        req.on('response', (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.end();
      });
    if (method === 'DELETE') {
      const noCsrf = await withCookie({});
      if (noCsrf !== 403) problems.push(`DELETE ${session} without its CSRF token: ${noCsrf}`);
    }
    const ok = await withCookie({ 'x-peak-csrf': login.csrf });
    if (ok !== 200) problems.push(`${method} ${session} with the cookie: ${ok}`);
    return problems;
  };
  const drill = '/api/v1/drill';
  const stress = '/api/v1/stress';
  const txn = '/api/v1/txn';
  const drillReport = () => ({
    app: 'authapp',
    instanceId: 'auth-i1',
    boot: 'walk-boot',
    service: 'auth.svc',
    tags: [],
    active: [],
    ended: [],
    at: now(),
  });
  const walkPlan = (name: string) => ({
    name,
    app: 'authapp',
    changes: [{ kind: 'flag' as const, name, value: true, baseline: false }],
  });
  const svcCall = (method: string) => ({ service: 'default/auth.svc:1.0.0', method });
  const walkMsg = (gid: string) => ({
    gid,
    topic: 'auth.topic',
    message: { body: 'aGk=' },
    check: svcCall('placed'),
    checkAfterMs: 60_000,
  });
  const scale = '/api/v1/scale';
  const scaleReport = () => ({
    supervisorId: 'walk-host/authapp',
    app: 'authapp',
    host: 'walk-host',
    pid: 1,
    services: [{ name: 'auth.svc', version: 'v1', command: 'true', instances: 0 }],
    instances: [],
  });
  /** A live supervisor of auth.svc (a release needs one). */
  const supervisorReported = async () => {
    const sent = await call(server.info.url, 'POST', `${scale}/reports`, {
      token: right,
      body: scaleReport(),
    });
    assert.equal(sent.status, 200, JSON.stringify(sent.json));
  };
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
    'POST /api/v1/admin/tokens': {
      auth: 'admin',
      path: '/api/v1/admin/tokens',
      body: { name: 'walk-tmp', role: 'viewer' },
    },
    'GET /api/v1/admin/tokens': { auth: 'admin', path: '/api/v1/admin/tokens' },
    'POST /api/v1/admin/tokens/:name/revoke': {
      auth: 'admin',
      path: '/api/v1/admin/tokens/walk-tmp/revoke',
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
      auth: 'operator',
      path: '/api/v1/registry/instances/auth-i1/admin',
      body: { status: 'up' },
    },
    'DELETE /api/v1/registry/instances/:id/admin': {
      auth: 'operator',
      path: '/api/v1/registry/instances/auth-i2/admin?force=true',
      // An instance of its own, so auth-i1 stays for the routes after this one.
      before: async () => {
        const r = await call(server.info.url, 'POST', '/api/v1/registry/instances', {
          token: right,
          body: {
            instanceId: 'auth-i2',
            service: 'auth.svc',
            version: '1.0.0',
            group: 'default',
            host: '127.0.0.1',
            port: 9,
            weight: 100,
          },
        });
        assert.ok(r.status < 300, JSON.stringify(r.json));
      },
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
    'GET /api/v1/mq/databases': {
      auth: 'read',
      path: '/api/v1/mq/databases',
      outOfScope: 'open',
    },
    'DELETE /api/v1/mq/topics/:topic': {
      auth: 'operator',
      path: '/api/v1/mq/topics/auth.rm-topic',
      // A topic of its own, so auth.topic stays for the routes after this one.
      before: async () => {
        await admin.mq.createTopic({ name: 'auth.rm-topic', queues: 1 });
      },
    },
    'DELETE /api/v1/mq/groups/:group': {
      auth: 'operator',
      path: '/api/v1/mq/groups/auth-rm-group?topic=auth.topic&force=true',
      // A group of its own (offsets from a reset), so auth-group stays.
      before: async () => {
        await admin.mq.resetOffset('auth-rm-group', 'auth.topic', Date.now());
      },
    },
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
      auth: 'operator',
      path: '/api/v1/mq/groups/auth-group/dlq/resend',
      body: { ids: 'all' },
    },
    'POST /api/v1/mq/groups/:group/reset-offset': {
      auth: 'operator',
      path: '/api/v1/mq/groups/auth-group/reset-offset',
      body: { topic: 'auth.topic', timestamp: now() - 60_000 },
    },
    'GET /api/v1/mq/stats': { auth: 'read', path: '/api/v1/mq/stats', outOfScope: 'open' },
    'GET /api/v1/rpc': { auth: 'read', path: '/api/v1/rpc', outOfScope: 'open' },
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
      auth: 'operator',
      path: item,
      body: { value: '4' },
    },
    'DELETE /api/v1/config/items/:app/:group/:key': {
      auth: 'operator',
      path: '/api/v1/config/items/authapp/g/rm',
      // An item of its own, so authapp/g/k stays for the routes after this one.
      before: async () => {
        await admin.config.publish({ app: 'authapp', group: 'g', key: 'rm' }, { value: '1' });
      },
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
      auth: 'operator',
      path: `${item}/rollback`,
      body: { toVersion: 1 },
    },
    'POST /api/v1/config/items/:app/:group/:key/gray': {
      auth: 'operator',
      path: `${item}/gray`,
      body: { value: '5', tags: ['canary'] },
    },
    'POST /api/v1/config/items/:app/:group/:key/gray/promote': {
      auth: 'operator',
      path: `${item}/gray/promote`,
      body: {},
      before: async () => {
        await startGray().catch(() => undefined);
      },
    },
    'POST /api/v1/config/items/:app/:group/:key/gray/abort': {
      auth: 'operator',
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
      auth: 'operator',
      path: '/api/v1/telemetry/alerts/rules/auth-rule-2',
      body: { kind: 'error-rate', service: 'auth.svc', threshold: 0.5 },
    },
    'DELETE /api/v1/telemetry/alerts/rules/:name': {
      auth: 'operator',
      path: '/api/v1/telemetry/alerts/rules/auth-rule-2',
    },
    'POST /api/v1/telemetry/alerts/rules/:name/silence': {
      auth: 'operator',
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
    'GET /api/v1/gateway/routes': { auth: 'viewer', path: `${gw}/routes` },
    'GET /api/v1/gateway/routes/:name': {
      auth: 'viewer',
      path: `${gw}/routes/auth-r`,
      before: gwRouteExists,
    },
    'PUT /api/v1/gateway/routes/:name': {
      auth: 'admin',
      path: `${gw}/routes/auth-r`,
      body: gwRoute,
    },
    'POST /api/v1/gateway/routes/batch': {
      auth: 'admin',
      path: `${gw}/routes/batch`,
      body: { routes: [{ ...gwRoute, name: 'auth-r2', path: '/auth2' }] },
    },
    'DELETE /api/v1/gateway/routes/:name': { auth: 'admin', path: `${gw}/routes/auth-r2` },
    'GET /api/v1/gateway/apps': { auth: 'viewer', path: `${gw}/apps` },
    'GET /api/v1/gateway/apps/:app': {
      auth: 'viewer',
      path: `${gw}/apps/auth-gw`,
      before: gwAppExists,
    },
    'PUT /api/v1/gateway/apps/:app': {
      auth: 'admin',
      path: `${gw}/apps/auth-gw2`,
      body: { name: 'auth-gw2' },
    },
    'DELETE /api/v1/gateway/apps/:app': { auth: 'admin', path: `${gw}/apps/auth-gw2` },
    'GET /api/v1/gateway/apps/:app/keys': {
      auth: 'viewer',
      path: `${gw}/apps/auth-gw/keys`,
      before: gwAppExists,
    },
    'POST /api/v1/gateway/apps/:app/keys': {
      auth: 'admin',
      path: `${gw}/apps/auth-gw/keys`,
      body: {},
      before: gwAppExists,
    },
    'DELETE /api/v1/gateway/keys/:id': {
      auth: 'admin',
      path: () => `${gw}/keys/${gwKeyId}`,
      before: async () => {
        await gwAppExists();
        gwKeyId = (await admin.gateway.createKey('auth-gw')).id;
      },
    },
    'GET /api/v1/gateway/subscriptions': { auth: 'viewer', path: `${gw}/subscriptions` },
    'POST /api/v1/gateway/subscriptions': {
      auth: 'admin',
      path: `${gw}/subscriptions`,
      body: { app: 'auth-gw', api: 'auth-r' },
      before: async () => {
        await gwAppExists();
        await gwRouteExists();
      },
    },
    'POST /api/v1/gateway/subscriptions/:app/:api/approve': {
      auth: 'admin',
      path: `${gw}/subscriptions/auth-gw/auth-r/approve`,
      body: {},
      before: gwSubscribed,
    },
    'POST /api/v1/gateway/subscriptions/:app/:api/reject': {
      auth: 'admin',
      path: `${gw}/subscriptions/auth-gw/auth-r/reject`,
      body: {},
      before: gwSubscribed,
    },
    'POST /api/v1/gateway/subscriptions/:app/:api/revoke': {
      auth: 'admin',
      path: `${gw}/subscriptions/auth-gw/auth-r/revoke`,
      body: {},
      before: gwSubscribed,
    },
    'PUT /api/v1/gateway/subscriptions/:app/:api/quota': {
      auth: 'admin',
      path: `${gw}/subscriptions/auth-gw/auth-r/quota`,
      body: { perDay: 100 },
      before: gwSubscribed,
    },
    'GET /api/v1/gateway/quota': { auth: 'viewer', path: `${gw}/quota` },
    // The change stream carries key secrets: the admin token only, though it is a read.
    'GET /api/v1/gateway/watch': { auth: 'admin', path: `${gw}/watch`, stream: true },
    'POST /api/v1/gateway/quota/lease': {
      auth: 'admin',
      path: `${gw}/quota/lease`,
      body: { app: 'auth-gw', api: 'auth-r', want: 1 },
      before: gwSubscribed,
    },
    'POST /api/v1/gateway/quota/return': {
      auth: 'admin',
      path: `${gw}/quota/return`,
      body: {
        app: 'auth-gw',
        api: 'auth-r',
        units: 0,
        day: new Date().toISOString().slice(0, 10),
        month: new Date().toISOString().slice(0, 10),
      },
    },
    'POST /api/v1/gateway/quota/use': {
      auth: 'admin',
      path: `${gw}/quota/use`,
      body: {
        uses: [
          {
            app: 'auth-gw',
            api: 'auth-r',
            units: 1,
            day: new Date().toISOString().slice(0, 10),
            month: `${new Date().toISOString().slice(0, 7)}-01`,
          },
        ],
      },
    },
    'POST /api/v1/gateway/nonces': {
      auth: 'admin',
      path: `${gw}/nonces`,
      body: { ttlMs: 60_000, items: [{ key: 'gk_auth', nonce: `n-${now()}` }] },
    },
    'GET /console': { auth: 'public', path: '/console' },
    'GET /console/*': { auth: 'public', path: '/console/services' },
    'POST /api/v1/console/session': {
      auth: 'self',
      path: session,
      self: () => consoleSession('POST'),
    },
    'GET /api/v1/console/session': {
      auth: 'self',
      path: session,
      self: () => consoleSession('GET'),
    },
    'DELETE /api/v1/console/session': {
      auth: 'self',
      path: session,
      self: () => consoleSession('DELETE'),
    },
    'GET /api/v1/console/audit': { auth: 'viewer', path: '/api/v1/console/audit' },
    'GET /api/v1/console/metrics': {
      auth: 'read',
      path: '/api/v1/console/metrics',
      outOfScope: 'open',
    },
    'POST /api/v1/drill/reports': {
      auth: 'sdk',
      scope: 'drill',
      path: `${drill}/reports`,
      body: drillReport(),
    },
    'GET /api/v1/drill/status': {
      auth: 'read',
      path: `${drill}/status?app=authapp`,
      outOfScope: 'open',
    },
    'POST /api/v1/drill/faults': {
      auth: 'operator',
      path: `${drill}/faults`,
      body: {
        app: 'authapp',
        faults: [{ kind: 'error', point: 'http', durationMs: 60_000, drill: 'walk' }],
      },
      // The fault needs a live instance of the app to aim at.
      before: async () => {
        const sent = await call(server.info.url, 'POST', `${drill}/reports`, {
          token: right,
          body: drillReport(),
        });
        assert.equal(sent.status, 200, JSON.stringify(sent.json));
      },
    },
    'POST /api/v1/drill/faults/stop': {
      auth: 'operator',
      path: `${drill}/faults/stop`,
      body: { app: 'authapp', drill: 'walk' },
    },
    'GET /api/v1/drill/plans': { auth: 'read', path: `${drill}/plans`, outOfScope: 'open' },
    'PUT /api/v1/drill/plans/:name': {
      auth: 'operator',
      path: `${drill}/plans/walk-plan`,
      body: { plan: walkPlan('walk-plan') },
    },
    'GET /api/v1/drill/plans/:name': {
      auth: 'read',
      path: `${drill}/plans/walk-plan`,
      outOfScope: 'open',
    },
    'DELETE /api/v1/drill/plans/:name': {
      auth: 'operator',
      path: `${drill}/plans/walk-tmp`,
      before: async () => {
        await admin.drill.putPlan(walkPlan('walk-tmp'));
      },
    },
    'GET /api/v1/drill/plans/:name/diff': {
      auth: 'read',
      path: `${drill}/plans/walk-plan/diff`,
      outOfScope: 'open',
    },
    'POST /api/v1/drill/plans/:name/apply': {
      auth: 'operator',
      path: `${drill}/plans/walk-plan/apply`,
      body: {},
    },
    'POST /api/v1/drill/plans/:name/schedules': {
      auth: 'operator',
      path: `${drill}/plans/walk-plan/schedules`,
      body: () => ({ at: Date.now() + 3_600_000 }),
    },
    'GET /api/v1/drill/schedules': {
      auth: 'read',
      path: `${drill}/schedules`,
      outOfScope: 'open',
    },
    'DELETE /api/v1/drill/schedules/:id': {
      auth: 'operator',
      path: () => `${drill}/schedules/${walkScheduleId}`,
      before: async () => {
        const [sc] = await admin.drill.schedule('walk-plan', { at: Date.now() + 3_600_000 });
        walkScheduleId = sc!.id;
      },
    },
    'POST /api/v1/drill/plans/:name/rollback': {
      auth: 'operator',
      path: `${drill}/plans/walk-plan/rollback`,
      body: {},
    },
    'POST /api/v1/stress/runs': {
      auth: 'operator',
      path: `${stress}/runs`,
      body: { id: 'walk-run', scenario: 'walk', model: constantRate(5, 1) },
    },
    'GET /api/v1/stress/runs': { auth: 'read', path: `${stress}/runs`, outOfScope: 'open' },
    'GET /api/v1/stress/runs/:id': {
      auth: 'read',
      path: `${stress}/runs/walk-run`,
      outOfScope: 'open',
    },
    'GET /api/v1/stress/runs/:id/report.html': {
      auth: 'read',
      path: `${stress}/runs/walk-done/report.html`,
      outOfScope: 'open',
    },
    'GET /api/v1/stress/runs/:id/control': {
      auth: 'read',
      path: `${stress}/runs/walk-run/control`,
      outOfScope: 'open',
    },
    'PUT /api/v1/stress/runs/:id/target': {
      auth: 'operator',
      path: `${stress}/runs/walk-run/target`,
      body: { target: 3 },
    },
    'POST /api/v1/stress/runs/:id/stop': {
      auth: 'operator',
      path: `${stress}/runs/walk-run/stop`,
      body: {},
    },
    'PUT /api/v1/stress/runs/:id/report': {
      auth: 'operator',
      path: `${stress}/runs/walk-run/report`,
      body: () => ({ report: { ...stressReport, runId: 'walk-run' } }),
    },
    'PUT /api/v1/stress/runs/:id/isolation': {
      auth: 'operator',
      path: `${stress}/runs/walk-run/isolation`,
      body: { ok: true, leaks: [] },
    },
    'GET /api/v1/stress/runs/:id/leaked-messages': {
      auth: 'read',
      path: `${stress}/runs/walk-run/leaked-messages?sinceMs=0`,
      outOfScope: 'open',
    },
    'POST /api/v1/stress/runs/:id/agents/:agent': {
      auth: 'sdk',
      scope: 'stress',
      path: `${stress}/runs/walk-agents/agents/a1`,
      body: {},
      before: async () => {
        await admin.stress.createRun({
          id: 'walk-agents',
          scenario: 'walk',
          model: constantRate(5, 1),
        });
      },
    },
    'PUT /api/v1/stress/runs/:id/agents/:agent/report': {
      auth: 'sdk',
      scope: 'stress',
      path: `${stress}/runs/walk-agents/agents/a1/report`,
      body: () => ({ ...stressReport, runId: 'walk-agents' }),
    },
    'GET /api/v1/stress/capacity': { auth: 'read', path: `${stress}/capacity`, outOfScope: 'open' },
    'PUT /api/v1/stress/capacity/:service': {
      auth: 'operator',
      path: `${stress}/capacity/auth.svc`,
      body: { instance: 'auth-i1', maxQps: 10, sla: { p99Ms: 100 }, steps: [] },
    },
    'POST /api/v1/txn/sagas': {
      auth: 'sdk',
      scope: 'txn',
      path: `${txn}/sagas`,
      body: {
        gid: 'walk-saga',
        // No provider answers: the step waits a minute before its retry, so the saga runs
        // until the stop route below stops it.
        steps: [
          {
            name: 'pay',
            action: svcCall('pay'),
            compensate: svcCall('refund'),
            retries: 100,
            retryDelayMs: 60_000,
          },
        ],
        timeoutMs: 600_000,
        wait: false,
      },
    },
    'POST /api/v1/txn/tccs': {
      auth: 'sdk',
      scope: 'txn',
      path: `${txn}/tccs`,
      body: {
        gid: 'walk-tcc',
        branches: [
          {
            name: 'hold',
            try: svcCall('hold'),
            confirm: svcCall('take'),
            cancel: svcCall('release'),
          },
        ],
        wait: false,
      },
    },
    'POST /api/v1/txn/msgs': {
      auth: 'sdk',
      scope: 'txn',
      path: `${txn}/msgs`,
      body: walkMsg('walk-msg-1'),
    },
    'POST /api/v1/txn/msgs/:gid/submit': {
      auth: 'sdk',
      scope: 'txn',
      path: `${txn}/msgs/walk-msg-1/submit`,
      body: {},
    },
    'POST /api/v1/txn/msgs/:gid/abort': {
      auth: 'sdk',
      scope: 'txn',
      path: `${txn}/msgs/walk-msg-2/abort`,
      body: {},
    },
    'GET /api/v1/txn/globals': { auth: 'read', path: `${txn}/globals`, outOfScope: 'open' },
    'GET /api/v1/txn/globals/:gid': {
      auth: 'read',
      path: `${txn}/globals/walk-msg-1`,
      outOfScope: 'open',
    },
    // A prepared two-phase message is unfinished: it may be retried (checked back at once).
    'POST /api/v1/txn/globals/:gid/retry': {
      auth: 'operator',
      path: `${txn}/globals/walk-msg-3/retry`,
      body: {},
      before: async () => {
        const prepared = await call(server.info.url, 'POST', `${txn}/msgs`, {
          token: right,
          body: walkMsg('walk-msg-3'),
        });
        assert.equal(prepared.status, 200, JSON.stringify(prepared.json));
      },
    },
    // The saga above is still running (its step waits to retry), so it can be stopped.
    'POST /api/v1/txn/globals/:gid/stop': {
      auth: 'operator',
      path: `${txn}/globals/walk-saga/stop`,
      body: {},
    },
    'GET /api/v1/txn/coordinator': {
      auth: 'read',
      path: `${txn}/coordinator`,
      outOfScope: 'open',
    },
    // The other app's scale grant (scale:other.*) does not cover auth.svc: refused by the handler.
    'POST /api/v1/scale/reports': {
      auth: 'sdk',
      scope: 'scale',
      path: `${scale}/reports`,
      body: scaleReport(),
    },
    'GET /api/v1/scale/status': {
      auth: 'read',
      path: `${scale}/status?app=authapp`,
      outOfScope: 'open',
    },
    'GET /api/v1/scale/history': {
      auth: 'read',
      path: `${scale}/history?app=authapp`,
      outOfScope: 'open',
    },
    'PUT /api/v1/scale/services/:service/instances': {
      auth: 'operator',
      path: `${scale}/services/auth.svc/instances`,
      body: { app: 'authapp', count: 0 },
    },
    'PUT /api/v1/scale/policies/:service': {
      auth: 'operator',
      path: `${scale}/policies/auth.svc`,
      body: { app: 'authapp', policy: { metric: 'cpu', target: 60, min: 0, max: 2 } },
    },
    'GET /api/v1/scale/policies/:service': {
      auth: 'read',
      path: `${scale}/policies/auth.svc?app=authapp`,
      outOfScope: 'open',
    },
    // Starting a release runs its command on the supervisors' hosts: the admin role.
    'POST /api/v1/scale/releases': {
      auth: 'admin',
      path: `${scale}/releases`,
      body: { app: 'authapp', service: 'auth.svc', version: 'v2', command: 'true' },
      before: supervisorReported,
    },
    'GET /api/v1/scale/releases/:service': {
      auth: 'read',
      path: `${scale}/releases/auth.svc?app=authapp`,
      outOfScope: 'open',
    },
    'GET /api/v1/scale/releases': {
      auth: 'read',
      path: `${scale}/releases?app=authapp`,
      outOfScope: 'open',
    },
    'POST /api/v1/scale/releases/:service/:action': {
      auth: 'operator',
      path: `${scale}/releases/auth.svc/pause`,
      body: { app: 'authapp' },
    },
    'GET /api/v1/openapi.json': { auth: 'public', path: '/api/v1/openapi.json' },
    'POST /v1/metrics': {
      auth: 'public',
      path: '/v1/metrics',
      body: { resourceMetrics: [] },
      answers: 501,
    },
    'POST /v1/logs': {
      auth: 'public',
      path: '/v1/logs',
      body: { resourceLogs: [] },
      answers: 501,
    },
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
      const send = (token: string | undefined, localAddress?: string) =>
        call(server.info.url, route.method, typeof c.path === 'function' ? c.path() : c.path, {
          token,
          body: typeof c.body === 'function' ? (c.body as () => unknown)() : c.body,
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
        expect('with no credential', await send(undefined), c.answers ?? 'ok');
        continue;
      }
      if (c.auth === 'self') {
        problems.push(...(await c.self!()));
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
      if (c.auth === 'operator' || c.auth === 'admin') {
        const below = c.auth === 'operator' ? roleTokens.viewer : roleTokens.operator;
        expect(`with a token of the role below ${c.auth}`, await send(below), 403);
      }
      await c.before?.();
      const token =
        c.auth === 'read' || c.auth === 'sdk'
          ? right
          : c.auth === 'viewer' || c.auth === 'operator'
            ? roleTokens[c.auth]
            : await adminToken();
      const inside = await send(token);
      expect('with the right credential', inside, c.answers ?? 'ok');
      if (c.shown !== undefined && inside.status < 300 && !c.shown(inside.json)) {
        problems.push(
          `${id}: the right credential does not see its own: ${JSON.stringify(inside.json)}`,
        );
      }
    }
    assert.deepEqual(problems, []);
    // Every wrong credential above was counted, and every refusal of a working one.
    const metrics = (await call(server.info.url, 'GET', '/metrics')).json as string;
    const count = (name: string) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(metrics)?.[1]);
    assert.ok(count('peak_auth_failures_total') >= address, metrics.slice(0, 200));
    assert.ok(count('peak_auth_denied_total') > 0);
  });
});
