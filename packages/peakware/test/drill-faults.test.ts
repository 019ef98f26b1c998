/**
 * Fault drills across processes: a real control plane and instance processes (config
 * client + DrillAgent + an HTTP server behind httpFaultHandler). Each fault kind takes
 * effect on the instances its scope names and no other, and is gone after its duration,
 * after a stop, after a restart of the instance (even with the fault in its config
 * snapshot file) and after the control plane disappears. No timing is asserted: the
 * waits are bounds for a loaded machine.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AdminClient } from '../src/admin/index.js';
import type { DrillReport, FaultRequest } from '../src/drill/index.js';
import { PeakServer } from '../src/server/index.js';
import { useLocalCredential } from './support/credentials.js';
import { runPeak } from './support/peak-process.js';
import { waitFor } from './support/wait.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const APP = 'drilltest';

interface Instance {
  child: ChildProcess;
  port: number;
  boot: string;
}

function spawnInstance(env: Record<string, string>): Promise<Instance> {
  const child = spawn(process.execPath, [path.join(here, 'drill-fixture-instance.js')], {
    env: { ...process.env, PEAK_APP: APP, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`instance did not start: ${err}`));
    }, 20_000);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      const line = JSON.parse(out.slice(0, nl)) as { port: number; boot: string };
      resolve({ child, port: line.port, boot: line.boot });
    });
  });
}

async function stopInstance(i: Instance): Promise<void> {
  if (i.child.exitCode !== null || i.child.signalCode !== null) return;
  const exited = new Promise((r) => i.child.once('exit', r));
  i.child.kill('SIGKILL');
  await exited;
}

/** The status of GET <path> on an instance, or 'dropped' when the connection is cut. */
async function hit(i: Instance, p: string): Promise<number | 'dropped'> {
  try {
    const res = await fetch(`http://127.0.0.1:${i.port}${p}`, {
      signal: AbortSignal.timeout(10_000),
    });
    await res.text();
    return res.status;
  } catch {
    return 'dropped';
  }
}

describe('fault drills across processes', { timeout: 240_000 }, () => {
  let dataDir: string;
  let server: PeakServer;
  let admin: AdminClient;
  let a: Instance;
  let b: Instance;
  const all: Instance[] = [];

  const fault = (f: Partial<FaultRequest>): FaultRequest => ({
    kind: 'error',
    point: 'http',
    durationMs: 120_000,
    drill: 'test',
    ...f,
  });
  const becomes = async (i: Instance, p: string, want: number | 'dropped', what: string) => {
    let last: number | 'dropped' = 0;
    await waitFor(
      () => `${what}: GET ${p} answered ${last}, not ${want}`,
      async () => {
        last = await hit(i, p);
        return last === want;
      },
      20_000,
    );
  };

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-drill-'));
    server = await PeakServer.start({ dataDir, port: 0 });
    useLocalCredential(server);
    const token = (await readFile(server.info.adminTokenFile, 'utf8')).trim();
    admin = new AdminClient({ servers: server.info.url, token });
    const env = { PEAK_SERVER: server.info.url };
    a = await spawnInstance({
      ...env,
      PEAK_INSTANCE: 'web-a',
      PEAK_TAGS: 'canary',
      PEAK_SNAPSHOT: path.join(dataDir, 'a-config.json'),
    });
    b = await spawnInstance({ ...env, PEAK_INSTANCE: 'web-b' });
    all.push(a, b);
    await waitFor('both instances reporting', async () => {
      const s = await admin.drill.status(APP);
      return s.instances.filter((i) => i.live).length === 2;
    });
  });

  after(async () => {
    await Promise.all(all.map(stopInstance));
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('refuses a fault no live instance matches, and a malformed one', async () => {
    await assert.rejects(admin.drill.inject(APP, [fault({ scope: { instances: ['nobody'] } })]), {
      code: 'PEAK_DRILL_NO_TARGET',
    });
    await assert.rejects(admin.drill.inject(APP, [fault({ kind: 'delay' })]), {
      code: 'PEAK_DRILL_INVALID',
    });
  });

  it('each kind takes effect on the scoped instances only', async () => {
    await admin.drill.inject(APP, [
      fault({
        match: { route: '/error' },
        code: 'PEAK_RPC_UNAVAILABLE',
        scope: { instances: ['web-a'] },
      }),
      fault({ kind: 'exception', match: { route: '/exception' }, scope: { tags: ['canary'] } }),
      fault({
        kind: 'timeout',
        delayMs: 20,
        match: { route: '/timeout' },
        scope: { tags: ['canary'] },
      }),
      fault({ kind: 'drop', match: { route: '/drop' }, scope: { tags: ['canary'] } }),
      fault({
        kind: 'delay',
        delayMs: 20,
        match: { route: '/delay' },
        scope: { tags: ['canary'] },
      }),
    ]);
    await becomes(a, '/error', 503, 'error on web-a');
    await becomes(a, '/exception', 500, 'exception on web-a');
    await becomes(a, '/timeout', 504, 'timeout on web-a');
    await becomes(a, '/drop', 'dropped', 'drop on web-a');
    assert.equal(await hit(a, '/other'), 200, 'an unmatched route is untouched');
    for (const p of ['/error', '/exception', '/timeout', '/drop', '/delay'])
      assert.equal(await hit(b, p), 200, `web-b is out of scope (${p})`);
    await waitFor('the delay fault counted hits on web-a', async () => {
      await hit(a, '/delay');
      const s = await admin.drill.status(APP);
      const mine = s.instances.find((i) => i.boot === a.boot);
      return mine?.active.some((f) => f.kind === 'delay' && f.hits > 0) === true;
    });
    const s = await admin.drill.status(APP);
    assert.equal(s.instances.find((i) => i.boot === b.boot)?.active.length, 0);
  });

  it('is gone after a stop', async () => {
    const r = await admin.drill.stop(APP, { drill: 'test' });
    assert.equal(r.stopped.length, 5);
    for (const p of ['/error', '/exception', '/timeout', '/drop'])
      await becomes(a, p, 200, `stopped ${p}`);
    await waitFor('web-a reports the faults ended by the stop', async () => {
      const mine = (await admin.drill.status(APP)).instances.find((i) => i.boot === a.boot);
      return (
        mine?.active.length === 0 &&
        mine.ended.filter((f) => f.ended?.reason === 'stopped').length === 5
      );
    });
  });

  it('is gone after its duration', async () => {
    await admin.drill.inject(APP, [fault({ match: { route: '/short' }, durationMs: 1500 })]);
    await becomes(a, '/short', 500, 'short fault on web-a');
    await becomes(a, '/short', 200, 'short fault expired on web-a');
    await becomes(b, '/short', 200, 'short fault expired on web-b');
    await waitFor('web-a reports the fault expired', async () => {
      const mine = (await admin.drill.status(APP)).instances.find((i) => i.boot === a.boot);
      return mine?.ended.some((f) => f.ended?.reason === 'expired') === true;
    });
  });

  it('is gone after a restart, even with the fault in the config snapshot file', async () => {
    await admin.drill.inject(APP, [
      fault({ match: { route: '/sticky' }, scope: { instances: ['web-a'] } }),
    ]);
    await becomes(a, '/sticky', 500, 'sticky fault on web-a');
    await waitFor("the fault table in web-a's config snapshot file", async () =>
      (await readFile(path.join(dataDir, 'a-config.json'), 'utf8')).includes('/sticky'),
    );
    await stopInstance(a);
    a = await spawnInstance({
      PEAK_SERVER: server.info.url,
      PEAK_INSTANCE: 'web-a',
      PEAK_TAGS: 'canary',
      PEAK_SNAPSHOT: path.join(dataDir, 'a-config.json'),
    });
    all.push(a);
    await waitFor('the restarted web-a reports', async () =>
      (await admin.drill.status(APP)).instances.some((i) => i.boot === a.boot && i.live),
    );
    assert.equal(await hit(a, '/sticky'), 200);
    const mine = (await admin.drill.status(APP)).instances.find((i) => i.boot === a.boot);
    assert.equal(mine?.active.length, 0);
    await admin.drill.stop(APP);
  });

  it('peak drill run aborts and reverts when a check breaks, with a timeline', async () => {
    const file = path.join(dataDir, 'drill.json');
    const probe = `node -e "fetch('http://127.0.0.1:${b.port}/ck').then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1))"`;
    await writeFile(
      file,
      JSON.stringify({
        name: 'ck-drill',
        app: APP,
        checks: [{ kind: 'custom', name: 'web-b answers', command: probe }],
        steps: [
          {
            name: 'break web-b',
            holdMs: 60_000,
            faults: [fault({ match: { route: '/ck' }, scope: { instances: ['web-b'] } })],
          },
        ],
        checkEveryMs: 300,
        recoverMs: 20_000,
      }),
    );
    const r = await runPeak([
      'drill',
      'run',
      file,
      '--server',
      server.info.url,
      '--data',
      dataDir,
      '--json',
    ]);
    assert.equal(r.code, 1, `an aborted drill exits 1: ${r.stderr}`);
    const report = JSON.parse(r.stdout) as DrillReport;
    assert.equal(report.outcome, 'aborted');
    assert.equal(report.broken?.check, 'custom web-b answers');
    assert.ok(report.recoveryMs !== null);
    assert.deepEqual(
      [...new Set(report.timeline.map((e) => e.what))],
      ['check-before', 'inject', 'check', 'abort', 'stop', 'recovered'],
    );
    assert.equal(await hit(b, '/ck'), 200);
    const status = await runPeak(['drill', 'status', '--app', APP, '--server', server.info.url]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /web-b[^\n]*\n(?:.*\n)*?\s+ended\s+f-\w+\s+stopped/);
  });

  it('is gone when the control plane disappears', async () => {
    await admin.drill.inject(APP, [fault({ match: { route: '/cp' } })]);
    await becomes(a, '/cp', 500, 'fault on web-a');
    await becomes(b, '/cp', 500, 'fault on web-b');
    await server.stop();
    await becomes(a, '/cp', 200, 'web-a reverted without its control plane');
    await becomes(b, '/cp', 200, 'web-b reverted without its control plane');
  });
});
