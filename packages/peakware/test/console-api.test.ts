/**
 * The console's control-plane half against a real `peak server`: its page at /console
 * (offline, strict CSP), login for an HttpOnly session cookie, CSRF refused, read-only
 * sessions, logout, token rotation ending sessions, the audit of every admitted call (who,
 * via what, from where), and the metrics history with its minute and hour rollups (driven by
 * an injected clock).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { AdminClient } from '../src/admin/index.js';
import { MetricsHistoryStore } from '../src/console/server/metrics-history.js';
import { silentLogger } from '../src/core/logger.js';
import { PeakServer } from '../src/server/index.js';
import { openMetricBuckets } from '../src/telemetry/server/index.js';

const HOUR = 3_600_000;

describe('console API', { timeout: 120_000 }, () => {
  let dataDir: string;
  let server: PeakServer;
  let admin: AdminClient;
  let token: string;

  const call = async (
    method: string,
    url: string,
    init: { cookie?: string; csrf?: string; body?: unknown; bearer?: string } = {},
  ) => {
    const headers: Record<string, string> = {};
    if (init.cookie !== undefined) headers.cookie = init.cookie;
    if (init.csrf !== undefined) headers['x-peak-csrf'] = init.csrf;
    if (init.bearer !== undefined) headers.authorization = `Bearer ${init.bearer}`;
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${server.info.url}${url}`, {
      method,
      headers,
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    // biome-ignore lint/suspicious/noExplicitAny: the tests read answers' fields loosely
    return { status: res.status, headers: res.headers, text, json: json as Record<string, any> };
  };

  const login = async (body: Record<string, unknown>) => {
    const res = await call('POST', '/api/v1/console/session', { body });
    const set = res.headers.get('set-cookie') ?? '';
    return { res, cookie: set.split(';')[0]!, setCookie: set };
  };

  const publish = (init: { cookie?: string; csrf?: string }, value: string) =>
    call('PUT', '/api/v1/config/items/con/db/pool', { ...init, body: { value } });

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-console-api-'));
    server = await PeakServer.start({ dataDir, port: 0 });
    token = (await readFile(server.info.adminTokenFile, 'utf8')).trim();
    admin = new AdminClient({ servers: server.info.url, token: () => token });
  });

  after(async () => {
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('serves the console page from the package, with a strict CSP, and its routes by path', async () => {
    const page = await call('GET', '/console');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    assert.match(page.text, /<script type="module" src="\/console\/assets\/app-[A-Z0-9]{8}\.js">/);
    // nothing from another origin: no CDN
    assert.doesNotMatch(page.text, /https?:\/\//);
    const script = /src="(\/console\/assets\/[^"]+)"/.exec(page.text)![1]!;
    const js = await call('GET', script);
    assert.equal(js.status, 200);
    assert.match(js.headers.get('cache-control') ?? '', /immutable/);
    assert.equal((await call('GET', '/console/services')).text, page.text);
    assert.equal((await call('GET', '/console/assets/nope.js')).status, 404);
  });

  it('exchanges the admin token for an HttpOnly session cookie; refuses a wrong token', async () => {
    const wrong = await login({ token: 'not-the-token', name: 'mallory' });
    assert.equal(wrong.res.status, 403);
    assert.equal(wrong.setCookie, '');
    const ok = await login({ token, name: 'alice' });
    assert.equal(ok.res.status, 200);
    assert.match(
      ok.setCookie,
      /^peak_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict/,
    );
    assert.equal(ok.res.json.who, 'console:alice');
    assert.equal(ok.res.json.role, 'admin');
    const me = await call('GET', '/api/v1/console/session', { cookie: ok.cookie });
    assert.equal(me.status, 200);
    assert.equal(me.json.csrfToken, ok.res.json.csrfToken);
    assert.equal((await call('GET', '/api/v1/console/session')).status, 401);
  });

  it('refuses a change made with the cookie but without its CSRF token; audits the one made with it', async () => {
    const { res, cookie } = await login({ token, name: 'bob' });
    const csrf = res.json.csrfToken as string;
    assert.equal((await publish({ cookie }, '{"max":1}')).status, 403);
    assert.equal((await publish({ cookie, csrf: 'x'.repeat(43) }, '{"max":1}')).status, 403);
    assert.equal((await publish({}, '{"max":1}')).status, 401);
    const done = await publish({ cookie, csrf }, '{"max":2}');
    assert.equal(done.status, 200, done.text);
    assert.equal(
      (await admin.config.get({ app: 'con', group: 'db', key: 'pool' })).value,
      '{"max":2}',
    );
    const audit = await admin.console.audit({ limit: 20 });
    const entry = audit.find((e) => e.route === '/api/v1/config/items/:app/:group/:key');
    assert.equal(entry?.who, 'console:bob');
    assert.equal(entry?.via, 'console-session');
    assert.equal(entry?.status, 200);
    assert.match(entry?.from ?? '', /127\.0\.0\.1/);
    const failed = audit.find((e) => e.who === 'console:mallory');
    assert.equal(failed?.status, 403);
    assert.equal(failed?.method, 'POST');
  });

  it('refuses every change of a read-only session', async () => {
    const { res, cookie } = await login({ token, name: 'vic', readOnly: true });
    assert.equal(res.json.role, 'viewer');
    const refused = await publish({ cookie, csrf: res.json.csrfToken }, '{"max":3}');
    assert.equal(refused.status, 403);
    assert.match(refused.json.error.message, /console:vic may only read \(role viewer\)/);
  });

  it('logs out (with the CSRF token), after which the cookie is refused', async () => {
    const { res, cookie } = await login({ token, name: 'lou' });
    const csrf = res.json.csrfToken as string;
    assert.equal((await call('DELETE', '/api/v1/console/session', { cookie })).status, 403);
    const out = await call('DELETE', '/api/v1/console/session', { cookie, csrf });
    assert.equal(out.status, 200);
    assert.match(out.headers.get('set-cookie') ?? '', /^peak_session=; .*Max-Age=0/);
    assert.equal((await call('GET', '/api/v1/console/session', { cookie })).status, 401);
    assert.equal((await publish({ cookie, csrf }, '{"max":4}')).status, 401);
  });

  it('ends every session when the admin token is rotated', async () => {
    const { res, cookie } = await login({ token, name: 'rot' });
    const rotated = await admin.system.rotateToken();
    token = rotated.token;
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await call('GET', '/api/v1/console/session', { cookie })).status, 401);
    assert.equal((await publish({ cookie, csrf: res.json.csrfToken }, '{"max":5}')).status, 401);
  });

  it('answers live per-second metrics from pushes', async () => {
    const now = Date.now();
    const second = Math.floor(now / 1000) * 1000;
    const metrics = Array.from({ length: 5 }, (_, i) => ({
      resource: 'live.get',
      second: second - (i + 3) * 1000,
      pass: 20,
      block: 5,
      success: 18,
      error: 2,
      rtAvg: 4,
      rtP99: 9,
    }));
    for (const instance of ['i1', 'i2']) {
      const r = await call('POST', '/api/v1/telemetry/metrics', {
        bearer: server.credential(),
        body: { service: 'live', instance, metrics },
      });
      assert.equal(r.status, 200, r.text);
    }
    const h = await admin.console.metrics({ by: 'service', service: 'live', from: now - 10_000 });
    assert.equal(h.stepSeconds, 1);
    const s = h.series[0]!;
    assert.equal(s.service, 'live');
    const i = s.t.indexOf(second - 3000);
    assert.ok(i >= 0, 'the second is in the answer');
    assert.equal(s.calls[i], 40);
    assert.equal(s.errors[i], 4);
    assert.equal(s.blocked[i], 10);
    assert.equal(s.rtAvgMs[i], 4);
    assert.equal(s.p99Ms[i], 9);
    assert.equal(s.instances[i], 2);
    // a second nobody pushed is there, empty
    assert.equal(s.calls[s.t.indexOf(second - 9000)], 0);
  });

  it("counts a service's inbound node as its total, not beside its resources", async () => {
    const now = Date.now();
    const second = Math.floor(now / 1000) * 1000 - 4000;
    const m = (resource: string, calls: number) => ({
      resource,
      second,
      pass: calls,
      block: 0,
      success: calls,
      error: 0,
      rtAvg: 1,
    });
    const r = await call('POST', '/api/v1/telemetry/metrics', {
      bearer: server.credential(),
      body: { service: 'inb', instance: 'i1', metrics: [m('__inbound__', 50), m('inb.get', 30)] },
    });
    assert.equal(r.status, 200, r.text);
    const total = await admin.console.metrics({
      by: 'service',
      service: 'inb',
      from: now - 10_000,
    });
    const s = total.series[0]!;
    assert.equal(s.calls[s.t.indexOf(second)], 50);
    const each = await admin.console.metrics({
      by: 'resource',
      service: 'inb',
      from: now - 10_000,
    });
    assert.deepEqual(each.series.map((x) => x.resource).sort(), ['__inbound__', 'inb.get']);
  });

  it('rolls seconds into minutes and minutes into hours, once, and answers each tier', async () => {
    const pool = new pg.Pool({ connectionString: server.postgresUrl(), max: 2 });
    try {
      const history = new MetricsHistoryStore(pool, openMetricBuckets(pool), silentLogger());
      const base = Math.floor(Date.now() / HOUR) * HOUR - 3 * HOUR;
      const push = async (from: number, seconds: number) => {
        const metrics = Array.from({ length: seconds }, (_, i) => ({
          resource: 'hist.get',
          second: from + i * 1000,
          pass: 10,
          block: 0,
          success: 9,
          error: 1,
          rtAvg: 2,
          rtP99: i % 60 === 7 ? 50 : 5,
        }));
        const r = await call('POST', '/api/v1/telemetry/metrics', {
          bearer: server.credential(),
          body: { service: 'hist', instance: 'h1', metrics },
        });
        assert.equal(r.status, 200, r.text);
      };
      await push(base, 120);
      await push(base + HOUR, 60);
      const first = await history.rollUp(base + 5 * 60_000);
      assert.ok(first.minutes >= 2, `rolled ${first.minutes} minutes`);
      const now = base + HOUR + 60_000 + 15_000;
      const second = await history.rollUp(now);
      assert.ok(second.minutes >= 1);
      assert.ok(second.hours >= 1);
      assert.deepEqual(await history.rollUp(now), { minutes: 0, hours: 0, pruned: 0 });

      const byMinute = await history.query(
        { from: base, to: base + HOUR + 60_000, service: 'hist', by: 'service' },
        now,
      );
      assert.equal(byMinute.stepSeconds, 60);
      const m = byMinute.series[0]!;
      assert.equal(m.calls[m.t.indexOf(base)], 10);
      assert.equal(m.errors[m.t.indexOf(base + 60_000)], 1);
      assert.equal(m.p99Ms[m.t.indexOf(base)], 50);
      assert.equal(m.calls[m.t.indexOf(base + HOUR)], 10);
      assert.equal(m.calls[m.t.indexOf(base + 30 * 60_000)], 0);

      const byHour = await history.query(
        { from: base - HOUR, to: base + HOUR, service: 'hist', step: 3600 },
        now,
      );
      const h = byHour.series[0]!;
      assert.equal(h.calls[h.t.indexOf(base)], (10 * 120) / 3600);
      assert.equal(h.p99Ms[h.t.indexOf(base)], 50);
      assert.equal(h.rtAvgMs[h.t.indexOf(base)], 2);
    } finally {
      await pool.end();
    }
  });
});
