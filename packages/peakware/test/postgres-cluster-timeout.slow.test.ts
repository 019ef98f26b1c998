/**
 * `startPostgresCluster` leaves no PostgreSQL behind when a test times out: a child
 * `node --test` runs a suite that times out while its cluster is still starting (its own
 * `after` has nothing to stop); the child must exit and no PostgreSQL it started may be
 * left running. Its processes are told apart by a marker in their environment. Slow (it
 * starts a PostgreSQL, 5-9 s): `npm run test:slow`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { waitFor } from './support/wait.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Pids of live processes whose environment holds `marker`. */
async function processesMarked(marker: string): Promise<{ pid: number; cmd: string }[]> {
  const found: { pid: number; cmd: string }[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const environ = await readFile(`/proc/${name}/environ`, 'latin1').catch(() => '');
    if (!environ.split('\0').includes(marker)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    if (/\) Z /.test(stat)) continue;
    const cmd = await readFile(`/proc/${name}/cmdline`, 'latin1').catch(() => '');
    found.push({ pid: Number(name), cmd: cmd.split('\0').join(' ').slice(0, 100) });
  }
  return found;
}

describe('test support: startPostgresCluster after a timed-out test', { timeout: 120_000 }, () => {
  it('the test process exits and its PostgreSQL is stopped', async () => {
    const marker = `PEAK_PG_CLUSTER_MARK=${randomUUID()}`;
    // A runner of its own (without NODE_TEST_CONTEXT it does not report to this one).
    const { NODE_TEST_CONTEXT: _, ...env } = process.env;
    const [markerName, markerValue] = marker.split('=') as [string, string];
    const child = spawn(
      process.execPath,
      ['--test', '--test-reporter=tap', path.join(here, 'postgres-cluster-fixture.js')],
      { env: { ...env, [markerName]: markerValue }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      // Bounded: a child kept alive by its PostgreSQL is killed here and the test fails.
      let code: number | null | undefined;
      void exited.then((c) => {
        code = c;
      });
      await waitFor(
        () => `the test process to exit\n${out.slice(-2000)}`,
        () => code !== undefined,
        60_000,
      );
      assert.match(out, /timed out/, 'the fixture suite did not time out');
      const left = await processesMarked(marker);
      assert.deepEqual(left, [], 'PostgreSQL left running after the timed-out test');
    } finally {
      child.kill('SIGKILL');
      for (const p of await processesMarked(marker)) process.kill(p.pid, 'SIGKILL');
    }
  });
});
