/**
 * `peak server` as a real process on the embedded default: first start, restart with the
 * same folder, recovery after kill -9 (of the server alone, and of the server with its
 * PostgreSQL), and a clean SIGTERM exit that leaves no PostgreSQL behind.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { killGroup, type PeakProcess, postgresPidsFor, spawnPeak } from './support/peak-process.js';
import { waitFor } from './support/wait.js';

interface Ready {
  url: string;
  adminToken?: string;
  postgres: { mode: string; pid: number };
  schemaVersion: number;
}

async function startServer(dataDir: string): Promise<{ p: PeakProcess; ready: Ready }> {
  const p = spawnPeak([
    'server',
    '--data',
    dataDir,
    '--port',
    '0',
    '--json',
    '--log-level',
    'warn',
  ]);
  const ready = (await p.waitFor('ready')) as unknown as Ready;
  return { p, ready };
}

describe('peak server process (embedded PostgreSQL)', { timeout: 240_000 }, () => {
  let dataDir: string;
  const started: PeakProcess[] = [];

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-lifecycle-'));
  });

  after(async () => {
    for (const p of started) killGroup(p.child);
    for (const pid of await postgresPidsFor(dataDir)) process.kill(pid, 'SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  });

  let firstToken = '';
  let localCredential = '';

  it('starts on the embedded default and answers /health and /ready', async () => {
    const { p, ready } = await startServer(dataDir);
    started.push(p);
    assert.equal(ready.postgres.mode, 'embedded');
    assert.match(ready.adminToken ?? '', /^peak_[A-Za-z0-9_-]{43}$/);
    firstToken = ready.adminToken!;
    const health = await fetch(`${ready.url}/health`);
    assert.equal(health.status, 200);
    const body = (await (await fetch(`${ready.url}/ready`)).json()) as Record<string, unknown>;
    assert.deepEqual(body, {
      status: 'ready',
      schemaVersion: ready.schemaVersion,
      postgres: 'embedded',
    });
    for (const file of ['admin-token', 'postgres-password', 'credentials/local']) {
      const mode = (await stat(path.join(dataDir, file))).mode & 0o777;
      assert.equal(mode, 0o600, `${file} mode ${mode.toString(8)}`);
    }
    // The local app's credential (the CLI's and quick tries') works for SDK calls.
    localCredential = (await readFile(path.join(dataDir, 'credentials', 'local'), 'utf8')).trim();
    const topics = await fetch(`${ready.url}/api/v1/mq/topics`, {
      headers: { authorization: `Bearer ${localCredential}` },
    });
    assert.equal(topics.status, 200);
    // The token is shown once: it never reaches the logs.
    assert.ok(!p.stderr().includes(firstToken));
    assert.ok(!p.stderr().includes(localCredential));
  });

  it('recovers after kill -9 of the server together with its PostgreSQL', async () => {
    const previous = started.at(-1)!;
    // Both die at once (a machine-level kill): PostgreSQL runs in its own process group
    // (so a terminal's Ctrl-C reaches only the server), so it is killed by its pid.
    const pgPids = await postgresPidsFor(dataDir);
    killGroup(previous.child, 'SIGKILL');
    for (const pid of pgPids) process.kill(pid, 'SIGKILL');
    await previous.exited;
    await waitFor('PostgreSQL gone', async () => (await postgresPidsFor(dataDir)).length === 0);
    const { p, ready } = await startServer(dataDir);
    started.push(p);
    assert.equal(ready.adminToken, undefined, 'the token is not shown again');
    assert.equal(
      (await readFile(path.join(dataDir, 'credentials', 'local'), 'utf8')).trim(),
      localCredential,
      'the local credential is kept across restarts',
    );
    assert.equal((await fetch(`${ready.url}/ready`)).status, 200);
    // State survived the crash: the first token still authenticates (and rotating retires it).
    const rotate = (token: string) =>
      fetch(`${ready.url}/api/v1/admin/token/rotate`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
      });
    const res = await rotate(firstToken);
    assert.equal(res.status, 200);
    const { token } = (await res.json()) as { token: string };
    assert.notEqual(token, firstToken);
    assert.equal((await rotate(firstToken)).status, 403);
  });

  it('recovers when only the node process dies and its PostgreSQL keeps running', async () => {
    const previous = started.at(-1)!;
    const pgPid = (previous.events.find((e) => e.event === 'ready') as unknown as Ready).postgres
      .pid;
    process.kill(previous.child.pid!, 'SIGKILL');
    await previous.exited;
    assert.ok((await postgresPidsFor(dataDir)).includes(pgPid), 'PostgreSQL outlived its server');
    const { p, ready } = await startServer(dataDir);
    started.push(p);
    assert.notEqual(ready.postgres.pid, pgPid);
    assert.equal((await fetch(`${ready.url}/ready`)).status, 200);
    assert.deepEqual(await postgresPidsFor(dataDir), [ready.postgres.pid]);
  });

  it('exits 0 on SIGTERM, finishing cleanly and leaving no PostgreSQL behind', async () => {
    const current = started.at(-1)!;
    current.child.kill('SIGTERM');
    const { code } = await current.exited;
    assert.equal(code, 0, current.stderr());
    // clean: every shutdown step finished within its own bound, none was forced.
    assert.deepEqual(current.events.at(-1), { event: 'stopped', clean: true });
    await waitFor(
      'no PostgreSQL left',
      async () => (await postgresPidsFor(dataDir)).length === 0,
      5000,
    );
  });

  it('exits 0 on SIGINT too, and the lock is released for the next start', async () => {
    const { p, ready } = await startServer(dataDir);
    assert.equal((await fetch(`${ready.url}/ready`)).status, 200);
    p.child.kill('SIGINT');
    assert.equal((await p.exited).code, 0);
    await assert.rejects(stat(path.join(dataDir, 'server.lock')), { code: 'ENOENT' });
  });

  it('a Ctrl-C to the whole process group (as a terminal sends) stops cleanly, PostgreSQL last', async () => {
    const { p, ready } = await startServer(dataDir);
    assert.equal((await fetch(`${ready.url}/ready`)).status, 200);
    killGroup(p.child, 'SIGINT');
    assert.equal((await p.exited).code, 0, p.stderr());
    // PostgreSQL did not get the signal: the server drained and stopped it, nothing forced.
    assert.deepEqual(p.events.at(-1), { event: 'stopped', clean: true });
    assert.ok(!/ECONNRESET|terminating connection/.test(p.stderr()), p.stderr());
    assert.deepEqual(await postgresPidsFor(dataDir), []);
    await assert.rejects(stat(path.join(dataDir, 'server.lock')), { code: 'ENOENT' });
  });
});
