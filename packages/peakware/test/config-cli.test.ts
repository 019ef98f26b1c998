/**
 * `peak config` against a real control plane: set, get, history, diff, rollback, gray,
 * promote, rm (a live watcher sees the item go), audit, and the errors a user sees (bad JSON with its path, conflicts, unknown
 * items, no token).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigClient, type ConfigEntry } from '../src/config/index.js';
import { PeakServer } from '../src/server/index.js';
import { runPeak } from './support/peak-process.js';
import { waitFor } from './support/wait.js';

describe('peak config', { timeout: 120_000 }, () => {
  let dataDir: string;
  let server: PeakServer;
  const peak = (...args: string[]) =>
    runPeak(
      // Changes read the admin token from the data folder; reads take it too.
      [...args, '--server', server.info.url, '--data', dataDir],
      { PEAK_AUTHOR: 'carol' },
    );
  const json = async (...args: string[]) => {
    const r = await peak(...args, '--json');
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Record<string, unknown>;
  };

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-config-cli-'));
    server = await PeakServer.start({ dataDir, port: 0 });
  });

  after(async () => {
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('set, get, history, diff, rollback', async () => {
    assert.equal(
      (await json('config', 'set', 'shop/db/pool', '{"max":10}', '-m', 'first')).version,
      1,
    );
    const file = path.join(dataDir, 'pool.json');
    await writeFile(file, '{"max":20}');
    assert.equal(
      (await json('config', 'set', 'shop/db/pool', `@${file}`, '--expect', '1')).version,
      2,
    );
    const got = await peak('config', 'get', 'shop/db/pool');
    assert.equal(got.code, 0, got.stderr);
    assert.match(got.stdout, /"max": 20/);
    const list = await peak('config', 'get', 'shop');
    assert.match(list.stdout, /db\/pool\s+v2/);
    const h = await json('config', 'history', 'shop/db/pool');
    const versions = h.versions as { version: number; author: string; comment: string }[];
    assert.deepEqual(
      versions.map((v) => [v.version, v.author]),
      [
        [2, 'carol'],
        [1, 'carol'],
      ],
    );
    const d = await peak('config', 'diff', 'shop/db/pool');
    assert.match(d.stdout, /^- {2}"max": 10$/m);
    assert.match(d.stdout, /^\+ {2}"max": 20$/m);
    const rb = await json('config', 'rollback', 'shop/db/pool', '1');
    assert.deepEqual(rb, { version: 3, restored: 1 });
    assert.match(
      (await peak('config', 'get', 'shop/db/pool', '--version', '3')).stdout,
      /"max": 10/,
    );
  });

  it('gray, promote, abort, audit', async () => {
    await json('config', 'set', 'shop/limits/qps', '100');
    const g = await peak('config', 'gray', 'shop/limits/qps', '200', '--tags', 'canary');
    assert.equal(g.code, 0, g.stderr);
    assert.match(g.stdout, /gray release over version 1 to tag canary/);
    assert.equal((await json('config', 'promote', 'shop/limits/qps')).version, 2);
    await json('config', 'gray', 'shop/limits/qps', '300', '--instances', 'host-1');
    assert.deepEqual(await json('config', 'gray', 'shop/limits/qps', '--abort'), { aborted: true });
    const a = await json('config', 'audit', 'shop/limits/qps');
    const rows = a.audit as { action: string; actor: string }[];
    assert.deepEqual(
      rows.map((r) => r.action),
      ['abort', 'gray', 'promote', 'gray', 'publish'],
    );
    assert.ok(rows.every((r) => r.actor === 'carol'));
  });

  it('rm removes an item: a watcher sees it go, history stays, a new set continues the versions', async () => {
    await json('config', 'set', 'uapp/db/pool', '{"max":1}');
    await json('config', 'set', 'uapp/db/pool', '{"max":2}');
    await json('config', 'set', 'uapp/db/other', '{"max":9}');
    const client = new ConfigClient({
      servers: [server.info.url],
      token: server.credential(),
      app: 'uapp',
      reconnectMs: 50,
    });
    const seen: ConfigEntry[] = [];
    client.watch('db/pool', (entry) => seen.push(entry));
    try {
      assert.equal(await client.start(), 'server');
      assert.equal(client.getJson<{ max: number }>('db/pool')?.max, 2);
      const busy = await peak('config', 'rm', 'uapp/db/pool', '--expect', '1');
      assert.match(busy.stderr, /at version 2, not 1.*\[PEAK_CONFIG_CONFLICT\]/);
      // <app> <group> <key> names the same item as <app>/<group>/<key>.
      const removed = await json('config', 'rm', 'uapp', 'db', 'pool', '-m', 'moved');
      assert.deepEqual(removed, {
        app: 'uapp',
        group: 'db',
        key: 'pool',
        removed: true,
        version: 2,
      });
      await waitFor('the watcher to drop db/pool', () => client.entry('db/pool') === undefined);
      assert.deepEqual(
        seen.map((e) => [e.version, e.removed === true]),
        [
          [2, false],
          [2, true],
        ],
      );
      assert.equal(client.getJson<{ max: number }>('db/other')?.max, 9);
      assert.match((await peak('config', 'get', 'uapp/db/pool')).stderr, /PEAK_CONFIG_NOT_FOUND/);
      assert.doesNotMatch((await peak('config', 'get', 'uapp')).stdout, /db\/pool/);
      const again = await peak('config', 'delete', 'uapp/db/pool');
      assert.match(again.stderr, /uapp\/db\/pool does not exist.*\[PEAK_CONFIG_NOT_FOUND\]/);
      const h = (await json('config', 'history', 'uapp/db/pool')).versions as {
        version: number;
      }[];
      assert.deepEqual(
        h.map((v) => v.version),
        [2, 1],
      );
      const audit = (await json('config', 'audit', 'uapp/db/pool')).audit as {
        action: string;
        actor: string;
      }[];
      assert.deepEqual(
        audit.map((a) => [a.action, a.actor]),
        [
          ['delete', 'carol'],
          ['publish', 'carol'],
          ['publish', 'carol'],
        ],
      );
      // Set again, it continues after its last version, and the watcher has it back.
      assert.equal((await json('config', 'set', 'uapp/db/pool', '{"max":3}')).version, 3);
      await waitFor('the watcher to get db/pool v3', () => client.entry('db/pool')?.version === 3);
      await json('config', 'gray', 'uapp/db/pool', '{"max":4}', '--tags', 'canary');
      const gray = await peak('config', 'rm', 'uapp/db/pool');
      assert.match(gray.stderr, /gray release in progress.*\[PEAK_CONFIG_CONFLICT\]/);
      const usage = await peak('config', 'rm', 'uapp', 'db');
      assert.equal(usage.code, 2);
    } finally {
      await client.close();
    }
  });

  it('errors say what, which input, and what to do', async () => {
    await json(
      'config',
      'set',
      'shop/rpc/opts',
      '{"timeoutMs":1}',
      '--schema',
      '{"type":"object","properties":{"timeoutMs":{"type":"integer","minimum":1}}}',
    );
    const bad = await peak('config', 'set', 'shop/rpc/opts', '{"timeoutMs":0}');
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /PEAK_CONFIG_INVALID/);
    assert.match(bad.stderr, /\$\.timeoutMs must be >= 1/);
    const conflict = await peak(
      'config',
      'set',
      'shop/rpc/opts',
      '{"timeoutMs":2}',
      '--expect',
      '7',
    );
    assert.match(conflict.stderr, /PEAK_CONFIG_CONFLICT/);
    const missing = await peak('config', 'get', 'shop/nope/none');
    assert.match(missing.stderr, /PEAK_CONFIG_NOT_FOUND/);
    const noApp = await peak('config', 'get', 'nosuchapp');
    assert.match(noApp.stderr, /app 'nosuchapp' has no config items; known apps: shop/);
    const usage = await peak('config', 'get', 'shop/only-two');
    assert.match(usage.stderr, /<app>\/<group>\/<key>/);
    const noToken = await runPeak([
      'config',
      'set',
      'shop/rpc/opts',
      '{"timeoutMs":3}',
      '--server',
      server.info.url,
      '--data',
      os.tmpdir(),
    ]);
    assert.match(noToken.stderr, /PEAK_UNAUTHENTICATED/);
  });
});
