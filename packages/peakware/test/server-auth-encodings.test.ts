/**
 * The auth check cannot be bypassed by spelling a path differently. For every route that
 * needs a credential (taken from the server's own route table, so a new route is covered
 * as soon as it exists), each spelling of its path — percent-encoded letters,
 * encoded slashes, doubled slashes, `..` segments, other letter case, trailing dots and
 * slashes — sent with no token must not reach the handler: it answers 401 (the router took
 * the spelling as that route) or 404/400 (it did not), never 2xx. The admin token must still
 * work afterwards, which proves no rotation slipped through.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../src/core/logger.js';
import { PeakServer, type RouteEntry } from '../src/server/index.js';

/** A concrete path for a route pattern: each `:param` becomes a plausible value. */
function concrete(pattern: string): string {
  return pattern.replace(/:([A-Za-z_]+)/g, (_m, name: string) => `x-${name}`);
}

/** Spellings of `p` a router or a proxy might take as the same path. */
function spellings(p: string): string[] {
  const out = new Set<string>();
  const segments = p.split('/').filter((s) => s.length > 0);
  // Percent-encode one letter of each segment, in lower and upper hex.
  segments.forEach((seg, i) => {
    const letter = seg.search(/[a-z]/i);
    if (letter < 0) return;
    for (const hex of [
      seg.charCodeAt(letter).toString(16),
      seg.charCodeAt(letter).toString(16).toUpperCase(),
    ]) {
      const encoded = `${seg.slice(0, letter)}%${hex}${seg.slice(letter + 1)}`;
      out.add(`/${[...segments.slice(0, i), encoded, ...segments.slice(i + 1)].join('/')}`);
    }
  });
  // Double-encoded first letter, every segment fully encoded.
  out.add(
    `/%25${segments[0]!.charCodeAt(0).toString(16)}${segments[0]!.slice(1)}/${segments.slice(1).join('/')}`,
  );
  out.add(
    `/${segments.map((s) => [...s].map((c) => `%${c.charCodeAt(0).toString(16)}`).join('')).join('/')}`,
  );
  // Encoded slashes between segments.
  out.add(`/${segments.join('%2F')}`);
  out.add(`/${segments.join('%2f')}`);
  // Doubled and leading slashes, dot segments.
  out.add(`//${segments.join('/')}`);
  out.add(`/${segments.join('//')}`);
  out.add(`/./${segments.join('/')}`);
  out.add(`/x/../${segments.join('/')}`);
  out.add(`/${segments[0]}/%2e%2e/${segments.join('/')}`);
  // Case and trailing characters.
  out.add(p.toUpperCase());
  out.add(`/${segments[0]!.toUpperCase()}/${segments.slice(1).join('/')}`);
  out.add(`${p}.`);
  out.add(`${p}/`);
  out.add(`${p}%2e`);
  out.add(`${p};x`);
  out.add(`${p}?x=1`);
  out.add(`${p}#x`);
  out.add(p);
  return [...out];
}

describe('admin check: no spelling of a path bypasses it', { timeout: 240_000 }, () => {
  let dataDir: string;
  let server: PeakServer;
  let token: string;
  const logLines: string[] = [];

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-auth-enc-'));
    const destination = new PassThrough();
    destination.on('data', (d: Buffer) => logLines.push(...d.toString().split('\n')));
    server = await PeakServer.start({
      dataDir,
      port: 0,
      logger: createLogger({ level: 'info', destination }),
    });
    token = (await readFile(server.info.adminTokenFile, 'utf8')).trim();
  });

  after(async () => {
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('the route table marks token rotation and topic creation as admin routes', () => {
    const admin = server.routes().filter((r) => r.auth === 'admin');
    const has = (method: string, url: string) =>
      admin.some((r) => r.method === method && r.url === url);
    assert.ok(has('POST', '/api/v1/admin/token/rotate'), JSON.stringify(admin));
    assert.ok(has('POST', '/api/v1/mq/topics'), JSON.stringify(admin));
  });

  it('every spelling of every route that needs a credential answers 401, 400 or 404 without one', async () => {
    const admin: RouteEntry[] = server.routes().filter((r) => r.auth !== 'public');
    assert.ok(
      admin.length >= 60,
      `expected the routes that need a credential, got ${admin.length}`,
    );
    const reached: string[] = [];
    let sent = 0;
    for (const route of admin) {
      for (const spelled of spellings(concrete(route.url))) {
        const res = await fetch(`${server.info.url}${spelled}`, {
          method: route.method,
          headers: { 'content-type': 'application/json' },
          body: route.method === 'DELETE' || route.method === 'GET' ? undefined : '{}',
        });
        await res.arrayBuffer();
        sent++;
        if (![400, 401, 404].includes(res.status)) {
          reached.push(`${route.method} ${spelled} -> ${res.status}`);
        }
      }
    }
    assert.ok(sent > admin.length * 15, `sent ${sent}`);
    assert.deepEqual(reached, [], 'these spellings reached a handler without the token');
  });

  it('the percent-encoded rotate of the report is refused and the owner keeps access', async () => {
    const res = await fetch(`${server.info.url}/%61pi/v1/admin/token/rotate`, { method: 'POST' });
    assert.equal(res.status, 401);
    const body = (await res.json()) as { error: { code: string } };
    assert.equal(body.error.code, 'PEAK_UNAUTHENTICATED');
    const topic = await fetch(`${server.info.url}/%61pi/v1/mq/topics`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'enc-bypass' }),
    });
    assert.equal(topic.status, 401);
    // The token from the data folder still works: nothing rotated it.
    const ok = await fetch(`${server.info.url}/api/v1/admin/token/rotate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(ok.status, 200);
  });

  it('audits each admin call with where it came from, and never logs the token', async () => {
    // The rotation above replaced the first token: use the current one.
    const current = (await readFile(server.info.adminTokenFile, 'utf8')).trim();
    const res = await fetch(`${server.info.url}/api/v1/mq/topics`, {
      method: 'POST',
      headers: { authorization: `Bearer ${current}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'audited' }),
    });
    assert.ok(res.ok, String(res.status));
    await new Promise((r) => setTimeout(r, 50));
    const audit = logLines
      .filter((l) => l.includes('"audit":true'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const entry = audit.find((a) => a.route === '/api/v1/mq/topics');
    assert.ok(entry, logLines.join('\n'));
    assert.equal(entry.from, '127.0.0.1');
    assert.equal(entry.status, res.status);
    for (const secret of [token, current]) {
      assert.ok(!logLines.some((l) => l.includes(secret)), 'a token reached the log');
    }
  });

  it('refuses an address after 10 wrong tokens in a minute (429), even with the right one', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      const res = await fetch(`${server.info.url}/api/v1/mq/topics`, {
        method: 'POST',
        headers: { authorization: 'Bearer peak_wrong', 'content-type': 'application/json' },
        body: '{}',
      });
      statuses.push(res.status);
      await res.arrayBuffer();
    }
    assert.deepEqual(statuses, [...Array(10).fill(403), 429, 429]);
    const current = (await readFile(server.info.adminTokenFile, 'utf8')).trim();
    const res = await fetch(`${server.info.url}/api/v1/mq/topics`, {
      method: 'POST',
      headers: { authorization: `Bearer ${current}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'late' }),
    });
    assert.equal(res.status, 429);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'PEAK_AUTH_RATE_LIMITED');
    assert.match(body.error.message, /try again in \d+ s/);
  });
});
