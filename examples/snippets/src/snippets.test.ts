/**
 * Runs every snippet as a user would (`node dist/<subsystem>/<feature>.js`) against a real
 * `peak server` on the embedded PostgreSQL, and checks each exits 0 and prints `ok` last.
 * Each snippet checks its own outcome and exits non-zero when a behaviour it shows breaks.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PeakServer } from 'peakware/server';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Every compiled snippet: dist/<subsystem>/<feature>.js. */
function snippets(): string[] {
  const out: string[] = [];
  for (const dir of readdirSync(here)) {
    const full = path.join(here, dir);
    if (!statSync(full).isDirectory()) continue;
    for (const f of readdirSync(full)) if (f.endsWith('.js')) out.push(path.join(dir, f));
  }
  return out.sort();
}

function run(file: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(here, file)], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe('examples/snippets: each runs as is against peak server', { timeout: 300_000 }, () => {
  let dataDir: string;
  let server: PeakServer;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-snippets-'));
    server = await PeakServer.start({ dataDir, port: 0 });
    env = {
      PEAK_SERVER: server.info.url,
      PEAK_ADMIN_TOKEN: (await readFile(server.info.adminTokenFile, 'utf8')).trim(),
      // What every SDK client of a snippet sends: the local app's credential.
      PEAK_CREDENTIAL: server.credential(),
      PEAK_SNIPPET_POSTGRES: server.postgresUrl(),
    };
  });

  after(async () => {
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  const files = snippets();
  it('finds a snippet for each subsystem', () => {
    const subsystems = new Set(files.map((f) => f.split(path.sep)[0]));
    for (const s of [
      'core',
      'config',
      'registry',
      'rpc',
      'guard',
      'mq',
      'telemetry',
      'data',
      'cache',
      'gateway',
      'drill',
      'txn',
      'scale',
    ]) {
      assert.ok(subsystems.has(s), `no snippet for ${s}: ${files.join(', ')}`);
    }
  });
  for (const file of files) {
    it(file, async () => {
      const r = await run(file, env);
      assert.equal(r.code, 0, `${file} exited ${r.code}:\n${r.out}`);
      assert.equal(r.out.trim().split('\n').at(-1), 'ok', r.out);
    });
  }
});
