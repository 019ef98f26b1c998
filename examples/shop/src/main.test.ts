/** The main job must run: `npm start` in smoke mode starts, reports ready, stops cleanly. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const main = path.join(path.dirname(fileURLToPath(import.meta.url)), 'main.js');

test('the shop main job starts on the embedded default and stops cleanly', {
  timeout: 120_000,
}, async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-shop-'));
  try {
    const child = spawn(process.execPath, [main, '--data', dataDir, '--port', '0', '--smoke'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 110_000);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    clearTimeout(timer);
    assert.equal(code, 0, `${out}\n${err}`);
    assert.match(out, /control plane\s+http:\/\/127\.0\.0\.1:\d+\s+\(ready\)/);
    assert.match(out, /smoke run: ready, stopped cleanly/);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});
