/**
 * Bad input to `peak server` and its API: each gets one clear error line and a non-zero
 * exit (or a JSON error with a fitting status), and nothing is left running. Also covers
 * the external-PostgreSQL path (a second node on the first node's database) and the
 * refusal of a schema newer than the code.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { PeakServer } from '../src/server/index.js';
import { bearer, useLocalCredential } from './support/credentials.js';
import { killGroup, postgresPidsFor, runPeak, spawnPeak } from './support/peak-process.js';

/**
 * The error is one line (the last on stderr but for the command's `Usage:` line after a
 * usage error, or the line naming the refused token's source; logs may precede it) and
 * has no stack.
 */
function oneErrorLine(stderr: string, code: string): void {
  const lines = stderr.trim().split('\n');
  const errors = lines.filter((l) => l.startsWith('peak: error: '));
  assert.equal(errors.length, 1, `expected one error line, got:\n${stderr}`);
  const after = lines.slice(lines.indexOf(errors[0]!) + 1);
  assert.ok(
    after.every((l) => l.startsWith('Usage: peak ') || l.startsWith('peak: the server (')),
    `only the usage or the token's source after the error:\n${stderr}`,
  );
  assert.ok(after.length <= 1, stderr);
  assert.ok(errors[0]!.endsWith(`[${code}]`), errors[0]);
  assert.ok(!/\n\s+at /.test(stderr), `no stack trace without --verbose:\n${stderr}`);
}

describe('peak server: bad input and the external PostgreSQL path', { timeout: 240_000 }, () => {
  let dataDir: string;
  let scratch: string;
  let server: PeakServer;
  let externalUrl: string;

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-errors-'));
    scratch = await mkdtemp(path.join(os.tmpdir(), 'peak-scratch-'));
    server = await PeakServer.start({ dataDir, port: 0 });
    useLocalCredential(server);
    const info = server.info.postgres;
    assert.equal(info.mode, 'embedded');
    if (info.mode !== 'embedded') return;
    const password = (await readFile(path.join(dataDir, 'postgres-password'), 'utf8')).trim();
    externalUrl = `postgres://peak:${encodeURIComponent(password)}@${info.host}:${info.port}/postgres`;
  });

  after(async () => {
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
    await rm(scratch, { recursive: true, force: true });
  });

  it('refuses an unknown flag with exit 2 and one line', async () => {
    const r = await runPeak(['server', '--prot', '80']);
    assert.equal(r.code, 2);
    oneErrorLine(r.stderr, 'PEAK_USAGE');
    assert.match(r.stderr, /--prot/);
    assert.match(r.stderr, /^Usage: peak server \[options\]$/m);
  });

  it('shows a stack trace only with --verbose', async () => {
    const r = await runPeak(['server', '--port', 'eighty', '--verbose']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--port must be a whole number from 0 to 65535, got '[^']*'/);
    assert.match(r.stderr, /\n\s+at /);
  });

  it('refuses a malformed --postgres URL', async () => {
    const r = await runPeak([
      'server',
      '--data',
      scratch,
      '--postgres',
      'mysql://x@y/z',
      '--port',
      '0',
    ]);
    assert.equal(r.code, 1);
    oneErrorLine(r.stderr, 'PEAK_DB_URL_INVALID');
    const env = await runPeak(['server', '--data', scratch, '--port', '0'], {
      PEAK_POSTGRES_URL: 'not a url',
    });
    assert.equal(env.code, 1);
    oneErrorLine(env.stderr, 'PEAK_DB_URL_INVALID');
  });

  it('says what is wrong with an unreachable or wrongly credentialed PostgreSQL', async () => {
    const probe = createServer().listen(0, '127.0.0.1');
    await new Promise((r) => probe.once('listening', r));
    const closedPort = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));
    const refused = await runPeak([
      'server',
      '--data',
      scratch,
      '--port',
      '0',
      '--postgres',
      `postgres://u:secret@127.0.0.1:${closedPort}/db`,
    ]);
    assert.equal(refused.code, 1);
    oneErrorLine(refused.stderr, 'PEAK_DB_UNREACHABLE');
    assert.match(refused.stderr, /connection refused/);
    assert.ok(!refused.stderr.includes('secret'), 'the password is never printed');

    const badPassword = externalUrl.replace(/:[^:@/]+@/, ':wrong-password@');
    const denied = await runPeak([
      'server',
      '--data',
      scratch,
      '--port',
      '0',
      '--postgres',
      badPassword,
    ]);
    assert.equal(denied.code, 1);
    oneErrorLine(denied.stderr, 'PEAK_DB_UNREACHABLE');
    assert.match(denied.stderr, /authentication failed/);
  });

  it('refuses a data folder it cannot use', async () => {
    const file = path.join(scratch, 'a-file');
    await writeFile(file, 'x');
    const r = await runPeak(['server', '--data', path.join(file, 'sub'), '--port', '0']);
    assert.equal(r.code, 1);
    oneErrorLine(r.stderr, 'PEAK_DATA_FOLDER');
    assert.match(r.stderr, /pass --data/);
  });

  it('refuses a data folder another server holds', async () => {
    const r = await runPeak(['server', '--data', dataDir, '--port', '0']);
    assert.equal(r.code, 1);
    oneErrorLine(r.stderr, 'PEAK_DATA_FOLDER');
    assert.match(r.stderr, new RegExp(`in use by another peak server \\(pid ${process.pid}\\)`));
  });

  it('refuses a port in use, and leaves no PostgreSQL behind', async () => {
    const other = await mkdtemp(path.join(os.tmpdir(), 'peak-port-'));
    try {
      const r = await runPeak(['server', '--data', other, '--port', String(server.info.port)]);
      assert.equal(r.code, 1);
      oneErrorLine(r.stderr, 'PEAK_PORT_IN_USE');
      assert.match(r.stderr, /--port/);
      assert.deepEqual(await postgresPidsFor(other), []);
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });

  it('requires the admin token on mutating routes: 401 without, 403 wrong', async () => {
    const url = `${server.info.url}/api/v1/admin/token/rotate`;
    const none = await fetch(url, { method: 'POST' });
    assert.equal(none.status, 401);
    const body = (await none.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'PEAK_UNAUTHENTICATED');
    assert.match(body.error.message, /Authorization: Bearer/);
    const wrong = await fetch(url, {
      method: 'POST',
      headers: { authorization: 'Bearer peak_nope' },
    });
    assert.equal(wrong.status, 403);
    assert.equal(
      ((await wrong.json()) as { error: { code: string } }).error.code,
      'PEAK_FORBIDDEN',
    );
  });

  it('rotates the token from the CLI; a wrong token is refused there too', async () => {
    const wrong = await runPeak([
      'token',
      'rotate',
      '--server',
      server.info.url,
      '--token',
      'peak_x',
    ]);
    assert.equal(wrong.code, 1);
    oneErrorLine(wrong.stderr, 'PEAK_FORBIDDEN');
    assert.match(wrong.stderr, /refused the admin token from --token\/PEAK_TOKEN/);
    const before = (await readFile(path.join(dataDir, 'admin-token'), 'utf8')).trim();
    const ok = await runPeak([
      'token',
      'rotate',
      '--server',
      server.info.url,
      '--data',
      dataDir,
      '--json',
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    const { token } = JSON.parse(ok.stdout) as { token: string };
    assert.notEqual(token, before);
    assert.equal((await readFile(path.join(dataDir, 'admin-token'), 'utf8')).trim(), token);
    const missing = await runPeak([
      'token',
      'rotate',
      '--server',
      server.info.url,
      '--data',
      scratch,
    ]);
    assert.equal(missing.code, 1);
    oneErrorLine(missing.stderr, 'PEAK_UNAUTHENTICATED');
  });

  it('answers unknown routes and bad bodies with JSON errors', async () => {
    const nf = await fetch(`${server.info.url}/api/v1/nope`);
    assert.equal(nf.status, 404);
    assert.equal(((await nf.json()) as { error: { code: string } }).error.code, 'PEAK_NOT_FOUND');
    const token = (await readFile(path.join(dataDir, 'admin-token'), 'utf8')).trim();
    const bad = await fetch(`${server.info.url}/api/v1/admin/token/rotate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{"not json',
    });
    assert.equal(bad.status, 400);
    assert.equal(
      ((await bad.json()) as { error: { code: string } }).error.code,
      'PEAK_INVALID_ARGUMENT',
    );
    assert.equal((await fetch(`${server.info.url}/ready`)).status, 200, 'still serving');
  });

  it('runs a second node on an external PostgreSQL (the first node’s database)', async () => {
    const nodeDir = await mkdtemp(path.join(os.tmpdir(), 'peak-node2-'));
    const p = spawnPeak([
      'server',
      '--data',
      nodeDir,
      '--port',
      '0',
      '--json',
      '--postgres',
      externalUrl,
    ]);
    try {
      const ready = (await p.waitFor('ready')) as {
        url: string;
        postgres: { mode: string; url: string };
      };
      assert.equal(ready.postgres.mode, 'external');
      assert.ok(!ready.postgres.url.includes(externalUrl.split(':')[2]!.split('@')[0]!));
      const { nodes } = (await (
        await fetch(`${ready.url}/api/v1/nodes`, { headers: bearer() })
      ).json()) as {
        nodes: { nodeId: string }[];
      };
      assert.equal(nodes.length, 2);
      const status = await runPeak(['status', '--server', ready.url, '--json']);
      assert.equal(status.code, 0, status.stderr);
      assert.equal((JSON.parse(status.stdout) as { ready: boolean }).ready, true);
      p.child.kill('SIGTERM');
      assert.equal((await p.exited).code, 0);
    } finally {
      killGroup(p.child);
      await rm(nodeDir, { recursive: true, force: true });
    }
  });

  it('refuses to start on a schema newer than it knows', async () => {
    const client = new pg.Client({ connectionString: externalUrl });
    await client.connect();
    try {
      await client.query(
        "INSERT INTO peak.schema_migrations (version, name) VALUES (999, 'from-the-future')",
      );
      const nodeDir = await mkdtemp(path.join(os.tmpdir(), 'peak-node3-'));
      const r = await runPeak([
        'server',
        '--data',
        nodeDir,
        '--port',
        '0',
        '--postgres',
        externalUrl,
      ]);
      await rm(nodeDir, { recursive: true, force: true });
      assert.equal(r.code, 1);
      oneErrorLine(r.stderr, 'PEAK_SCHEMA_TOO_NEW');
      assert.match(r.stderr, /version 999/);
    } finally {
      await client.query('DELETE FROM peak.schema_migrations WHERE version = 999');
      await client.end();
    }
  });
});
