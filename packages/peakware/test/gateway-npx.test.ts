/**
 * `npx peak gateway` (npm exec): a SIGTERM to npm ends npm and its shell but never reaches
 * the gateway, which went on as an orphan; it now stops when its parent goes away, like
 * `peak server` (src/cli/parent-watch.ts).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PeakServer } from '../src/server/peak-server.js';
import { waitFor } from './support/wait.js';

/** Pids of live processes whose command line names `text`. */
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

describe('peak gateway under npx', { timeout: 120_000 }, () => {
  let server: PeakServer;
  let dir: string;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'peak-gateway-npx-'));
    server = await PeakServer.start({ dataDir: path.join(dir, 'data'), port: 0 });
  });

  after(async () => {
    for (const pid of await processesNaming(dir)) process.kill(pid, 'SIGKILL');
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('a SIGTERM to npm stops the gateway too: no orphan', async () => {
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
    const npm = spawn(
      'npm',
      [
        ...['exec', '--no-install', '--', 'peak', 'gateway', '--port', '0', '--json'],
        ...['--server', server.info.url, '--snapshot', path.join(dir, 'gateway.json')],
      ],
      {
        cwd: root,
        env: { ...process.env, PEAK_TOKEN: server.info.adminToken!, PEAK_CONTEXT: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    npm.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    npm.stderr.on('data', (c: Buffer) => {
      out += c.toString();
    });
    await waitFor(
      () => `the gateway ready under npx: ${out}`,
      () => out.includes('"event":"ready"'),
      60_000,
    );
    assert.ok((await processesNaming(dir)).length > 0, 'the gateway runs');
    process.kill(npm.pid!, 'SIGTERM');
    await waitFor(
      () => `the gateway gone after npm's SIGTERM: ${out}`,
      async () => (await processesNaming(path.join(dir, 'gateway.json'))).length === 0,
    );
  });
});
