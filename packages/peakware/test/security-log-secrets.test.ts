/**
 * No secret ever reaches a log line: a control plane logging at `trace` is driven through
 * every path that issues, presents or refuses a credential (the admin token and its
 * rotation, operator tokens, app credentials and their rotation, signed identities, a
 * secured topic's secrets and signed messages, gateway keys, console sessions, wrong and
 * out-of-scope credentials), and every line it wrote is searched for every secret issued.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { AdminClient } from '../src/admin/admin-client.js';
import { createLogger } from '../src/core/logger.js';
import { toWire } from '../src/mq/wire-encoding.js';
import { PeakServer } from '../src/server/index.js';

describe('no secret in any log line', { timeout: 120_000 }, () => {
  let dataDir: string;
  let server: PeakServer;
  const lines: string[] = [];
  const secrets = new Map<string, string>();

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-log-secrets-'));
    const destination = new PassThrough();
    destination.on('data', (d: Buffer) => lines.push(...d.toString('utf8').split('\n')));
    server = await PeakServer.start({
      dataDir,
      port: 0,
      logger: createLogger({ level: 'trace', destination }),
    });
  });

  after(async () => {
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('drives every credential path and finds none of the secrets in the log', async () => {
    const url = server.info.url;
    const first = server.info.adminToken!;
    secrets.set('admin token', first);
    secrets.set('local app credential', server.credential());
    const admin = () => new AdminClient({ servers: url, token: secrets.get('admin token')! });
    const raw = (method: string, route: string, token: string | undefined, body?: unknown) =>
      fetch(`${url}${route}`, {
        method,
        headers: {
          ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      }).then(async (r) => ({ status: r.status, text: await r.text() }));

    const app = await admin().apps.create('logs.app', ['produce:logs.*', 'register:logs.*']);
    secrets.set('app credential', app.credential);
    const rotated = await admin().apps.rotate('logs.app', { overlapSeconds: 60 });
    secrets.set('rotated app credential', rotated.credential);
    const viewer = await admin().system.createToken('logs-viewer', 'viewer');
    secrets.set('viewer token', viewer.token);
    const identity = await raw('POST', '/api/v1/identity', app.credential, {});
    assert.equal(identity.status, 200, identity.text);
    secrets.set('signed identity', (JSON.parse(identity.text) as { token: string }).token);
    const topic = await admin().mq.createTopic({ name: 'logs.secured', secured: true });
    secrets.set('produce secret', topic.produceSecret!);
    secrets.set('consume secret', topic.consumeSecret!);
    const wire = toWire('logs.secured', { body: 'x' }, { secret: topic.produceSecret! });
    const sent = (): Promise<{ status: number }> =>
      raw('POST', '/api/v1/mq/topics/logs.secured/messages', app.credential, { messages: [wire] });
    assert.equal((await sent()).status, 200);
    assert.equal((await sent()).status, 409, 'the replay is refused (and logged)');
    await admin().gateway.putApp({ name: 'logs-gw' });
    secrets.set('gateway key secret', (await admin().gateway.createKey('logs-gw')).secret);
    const login = await raw('POST', '/api/v1/console/session', undefined, {
      token: first,
      name: 'logs',
    });
    assert.equal(login.status, 200, login.text);
    secrets.set('console CSRF token', (JSON.parse(login.text) as { csrfToken: string }).csrfToken);
    // Refused ones: a wrong credential, a near miss of a real one, a role too low, out of scope.
    await raw('POST', '/api/v1/mq/topics', 'peak_wrong-credential-attempt', { name: 'x' });
    const nearMiss = `${first.slice(0, -4)}AAAA`;
    secrets.set('near miss of the admin token', nearMiss);
    await raw('POST', '/api/v1/mq/topics', nearMiss, { name: 'x' });
    await raw('POST', '/api/v1/mq/topics', viewer.token, { name: 'x' });
    await raw('POST', '/api/v1/registry/instances', app.credential, {
      instanceId: 'i',
      service: 'other.svc',
      version: '1',
      group: 'default',
      host: '127.0.0.1',
      port: 1,
    });
    await admin().system.revokeToken('logs-viewer');
    const next = await admin().system.rotateToken();
    secrets.set('rotated admin token', next.token);

    assert.ok(lines.length > 50, `the server logged ${lines.length} lines`);
    const found: string[] = [];
    for (const [what, secret] of secrets) {
      // The whole secret, and any 16-character piece of it.
      for (let at = 0; at + 16 <= secret.length; at += 8) {
        const piece = secret.slice(at, at + 16);
        const line = lines.find((l) => l.includes(piece));
        if (line !== undefined) {
          found.push(`${what}: ${line.slice(0, 300)}`);
          break;
        }
      }
    }
    assert.deepEqual(found, []);
  });
});
