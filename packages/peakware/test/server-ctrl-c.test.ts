/**
 * Ctrl-C in a terminal sends SIGINT to the whole foreground process group. `peak server`
 * (its embedded PostgreSQL in a group of its own) stops gracefully on the first one, even
 * with a request that never finishes in flight, and exits at once on the second, leaving
 * neither PostgreSQL nor the server lock behind. Under `npx peak server`, a SIGTERM to npm
 * (which never reaches the server) stops it too.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { holdRequest } from './support/held-request.js';
import { killGroup, type PeakProcess, postgresPidsFor, spawnPeak } from './support/peak-process.js';
import { waitFor } from './support/wait.js';

/** Pids of live processes whose command line names `text` (the server, its PostgreSQL). */
async function processesNaming(text: string): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const cmd = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    const state = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    if (cmd.includes(text) && !/\) Z /.test(state)) pids.push(Number(name));
  }
  return pids;
}

describe('peak server and Ctrl-C (SIGINT to its process group)', { timeout: 240_000 }, () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  async function start(
    shutdownTimeoutMs: number,
  ): Promise<{ p: PeakProcess; url: string; dataDir: string }> {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-ctrl-c-'));
    const p = spawnPeak([
      'server',
      ...['--data', dataDir, '--port', '0', '--json', '--log-level', 'info'],
      ...['--shutdown-timeout', String(shutdownTimeoutMs)],
    ]);
    cleanups.push(async () => {
      killGroup(p.child);
      for (const pid of await postgresPidsFor(dataDir)) process.kill(pid, 'SIGKILL');
      await rm(dataDir, { recursive: true, force: true });
    });
    const ready = await p.waitFor('ready');
    return { p, url: String(ready.url), dataDir };
  }

  async function assertNothingLeft(dataDir: string): Promise<void> {
    await waitFor('no PostgreSQL left', async () => (await postgresPidsFor(dataDir)).length === 0);
    await assert.rejects(stat(path.join(dataDir, 'server.lock')), { code: 'ENOENT' });
  }

  it('one Ctrl-C with a request stuck in flight: the stop ends that request and every module, exit 0', async () => {
    const { p, url, dataDir } = await start(4000);
    const held: net.Socket = await holdRequest(`${url}/v1/traces`);
    try {
      killGroup(p.child, 'SIGINT');
      const { code, signal } = await p.exited;
      assert.equal(code, 0, `${signal} ${p.stderr().slice(-3000)}`);
      // Not clean (the request was cut at the bound), but every module stopped before the
      // pool closed: no worker ran into an ended pool.
      assert.deepEqual(p.events.at(-1), { event: 'stopped', clean: false });
      assert.match(p.stderr(), /closing HTTP did not finish in time/);
      assert.doesNotMatch(p.stderr(), /after calling end on the pool|ECONNRESET/);
      await assertNothingLeft(dataDir);
    } finally {
      held.destroy();
    }
  });

  it('a second Ctrl-C exits at once: PostgreSQL stopped immediately, no lock left', async () => {
    // A graceful stop that would wait ten minutes for the held request.
    const { p, url, dataDir } = await start(1_200_000);
    const held = await holdRequest(`${url}/v1/traces`);
    try {
      killGroup(p.child, 'SIGINT');
      await waitFor(
        () =>
          `the graceful stop under way (exit: ${p.child.exitCode} ${p.child.signalCode}): ${p.stderr().slice(-3000)}`,
        () => p.stderr().includes('stopping gracefully'),
      );
      killGroup(p.child, 'SIGINT');
      // Bounded by the test's timeout, far below the ten-minute graceful bound.
      const { code } = await p.exited;
      assert.equal(code, 1, p.stderr());
      assert.match(p.stderr(), /second signal: exiting at once/);
      await assertNothingLeft(dataDir);
    } finally {
      held.destroy();
    }
  });

  it('under npx (npm exec), a SIGTERM to npm stops the server too: no orphan, no lock', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-npx-'));
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
    const npm = spawn(
      'npm',
      [
        'exec',
        '--no-install',
        '--',
        'peak',
        'server',
        ...['--data', dataDir, '--port', '0', '--json', '--log-level', 'warn'],
      ],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    );
    let out = '';
    npm.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
    });
    npm.stderr!.on('data', (c: Buffer) => {
      out += c.toString();
    });
    cleanups.push(async () => {
      try {
        process.kill(-npm.pid!, 'SIGKILL');
      } catch {
        // gone
      }
      for (const pid of await postgresPidsFor(dataDir)) process.kill(pid, 'SIGKILL');
      await rm(dataDir, { recursive: true, force: true });
    });
    await waitFor(
      () => `the server ready under npx: ${out}`,
      () => out.includes('"event":"ready"'),
      90_000,
    );
    process.kill(npm.pid!, 'SIGTERM');
    await waitFor(
      () => `the server gone after npm's SIGTERM: ${out}`,
      async () => {
        const lockGone = await stat(path.join(dataDir, 'server.lock')).then(
          () => false,
          () => true,
        );
        return lockGone && (await processesNaming(dataDir)).length === 0;
      },
    );
  });
});
