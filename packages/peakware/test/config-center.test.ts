/**
 * The config center against a real control plane and real subscriber processes: versions,
 * history, diff and rollback; refusals with the path of the error; optimistic publish under
 * concurrent writers; push to N processes; gray then promote, gray then abort; a restart
 * with the control plane down starts from the snapshot file; the audit trail.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigClient } from '../src/config/index.js';
import { PeakServer } from '../src/server/index.js';
import { type Subscriber, spawnSubscriber, stopSubscriber } from './config-fixture-process.js';
import { waitFor } from './support/wait.js';

describe('config center', { timeout: 180_000 }, () => {
  let dataDir: string;
  let server: PeakServer;
  let token: string;
  const subs: Subscriber[] = [];

  /** A call with the admin token, the local app's credential (what SDKs read with), or none. */
  const api = async (
    method: string,
    route: string,
    body?: unknown,
    auth: 'admin' | 'app' | 'none' = 'admin',
  ) => {
    const credential = auth === 'admin' ? token : auth === 'app' ? server.credential() : undefined;
    const res = await fetch(`${server.info.url}/api/v1/config${route}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(credential === undefined ? {} : { authorization: `Bearer ${credential}` }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(10_000),
    });
    return {
      status: res.status,
      json: (await res.json()) as Record<string, unknown> & {
        error?: { code: string; message: string; details: Record<string, unknown> };
      },
    };
  };
  const spawn = async (env: Record<string, string>) => {
    const s = await spawnSubscriber({
      PEAK_SERVER: server.info.url,
      PEAK_CREDENTIAL: server.credential(),
      ...env,
    });
    subs.push(s);
    return s;
  };

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-config-'));
    server = await PeakServer.start({ dataDir, port: 0 });
    token = (await readFile(server.info.adminTokenFile, 'utf8')).trim();
  });

  after(async () => {
    await Promise.all(subs.map((s) => stopSubscriber(s)));
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('publishes versions with author and comment; history, diff, get', async () => {
    const v1 = await api('PUT', '/items/shop/db/pool', {
      value: '{"max": 10}',
      comment: 'first',
      author: 'alice',
    });
    assert.equal(v1.status, 200, JSON.stringify(v1.json));
    assert.equal(v1.json.version, 1);
    const v2 = await api('PUT', '/items/shop/db/pool', {
      value: '{"max": 20}',
      comment: 'more',
      author: 'bob',
      expectedVersion: 1,
    });
    assert.equal(v2.json.version, 2);
    const got = await api('GET', '/items/shop/db/pool', undefined, 'app');
    assert.equal(got.json.value, '{"max": 20}');
    assert.equal(got.json.version, 2);
    const h = await api('GET', '/items/shop/db/pool/history', undefined, 'app');
    const versions = h.json.versions as { version: number; author: string; comment: string }[];
    assert.deepEqual(
      versions.map((v) => [v.version, v.author, v.comment]),
      [
        [2, 'bob', 'more'],
        [1, 'alice', 'first'],
      ],
    );
    const d = await api('GET', '/items/shop/db/pool/diff?from=1&to=2', undefined, 'app');
    assert.deepEqual(d.json.diff, [
      { op: ' ', text: '{' },
      { op: '-', text: '  "max": 10' },
      { op: '+', text: '  "max": 20' },
      { op: ' ', text: '}' },
    ]);
  });

  it('refuses bad input with the path of the error, and keeps the released value', async () => {
    const schema = {
      type: 'object',
      required: ['timeoutMs'],
      properties: { timeoutMs: { type: 'integer', minimum: 1 }, mode: { enum: ['a', 'b'] } },
    };
    assert.equal(
      (await api('PUT', '/items/shop/rpc/opts', { value: '{"timeoutMs":100}', schema })).status,
      200,
    );
    const bad = await api('PUT', '/items/shop/rpc/opts', { value: '{"timeoutMs":-5}' });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error?.code, 'PEAK_CONFIG_INVALID');
    assert.equal(bad.json.error?.details.path, '$.timeoutMs');
    const notJson = await api('PUT', '/items/shop/rpc/opts', { value: '{"timeoutMs":' });
    assert.equal(notJson.json.error?.code, 'PEAK_CONFIG_INVALID');
    assert.match(notJson.json.error?.message ?? '', /not valid JSON/);
    const got = await api('GET', '/items/shop/rpc/opts', undefined, 'app');
    assert.equal(got.json.value, '{"timeoutMs":100}');
    assert.equal(got.json.version, 1);

    const big = await api('PUT', '/items/shop/rpc/big', {
      format: 'text',
      value: 'x'.repeat(300 * 1024),
    });
    assert.equal(big.status, 413);
    assert.equal(big.json.error?.code, 'PEAK_CONFIG_TOO_LARGE');

    const unknown = await api('GET', '/items/nope/none/nothing', undefined, 'app');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json.error?.code, 'PEAK_CONFIG_NOT_FOUND');
    const badName = await api('GET', '/items/sh%20op/a/b', undefined, 'app');
    assert.equal(badName.status, 400);

    const noToken = await api('PUT', '/items/shop/rpc/opts', { value: '{"timeoutMs":7}' }, 'none');
    assert.equal(noToken.status, 401);
    const stale = await api('PUT', '/items/shop/rpc/opts', {
      value: '{"timeoutMs":7}',
      expectedVersion: 0,
    });
    assert.equal(stale.status, 409);
    assert.equal(stale.json.error?.code, 'PEAK_CONFIG_CONFLICT');
  });

  it('loses no update under concurrent writers (optimistic version check)', async () => {
    await api('PUT', '/items/shop/counter/n', { value: '0' });
    const writers = 8;
    const perWriter = 3;
    let conflicts = 0;
    const writer = async () => {
      for (let done = 0; done < perWriter; ) {
        const cur = await api('GET', '/items/shop/counter/n', undefined, 'app');
        const next = Number(cur.json.value) + 1;
        const r = await api('PUT', '/items/shop/counter/n', {
          value: String(next),
          expectedVersion: cur.json.version,
        });
        if (r.status === 409) conflicts++;
        else {
          assert.equal(r.status, 200, JSON.stringify(r.json));
          done++;
        }
      }
    };
    await Promise.all(Array.from({ length: writers }, writer));
    const end = await api('GET', '/items/shop/counter/n', undefined, 'app');
    assert.equal(Number(end.json.value), writers * perWriter);
    assert.equal(end.json.version, writers * perWriter + 1);
    assert.ok(conflicts > 0, 'writers raced (some saw a conflict)');
  });

  it('pushes a change to N subscriber processes', async () => {
    await api('PUT', '/items/push/feature/flag', { value: 'false' });
    const n = 4;
    const procs = await Promise.all(
      Array.from({ length: n }, (_, i) => spawn({ APP: 'push', INSTANCE_ID: `p${i}` })),
    );
    for (const p of procs) {
      assert.equal(p.origin, 'server');
      assert.equal(p.entries.get('feature/flag')?.value, 'false');
    }
    const r = await api('PUT', '/items/push/feature/flag', { value: 'true', comment: 'on' });
    await waitFor('every subscriber sees flag=true', () =>
      procs.every(
        (p) =>
          p.entries.get('feature/flag')?.value === 'true' &&
          p.entries.get('feature/flag')?.version === r.json.version,
      ),
    );
    // A value too big to ride in the NOTIFY payload is read back by the hub.
    const big = 'x'.repeat(20_000);
    await api('PUT', '/items/push/feature/big', { format: 'text', value: big });
    await waitFor('every subscriber has the 20 kB value', () =>
      procs.every((p) => p.entries.get('feature/big')?.value === big),
    );
  });

  it('gray release reaches only matching instances, then promote; another gray is aborted', async () => {
    await api('PUT', '/items/gray/limits/qps', { value: '100' });
    const canary = await spawn({ APP: 'gray', INSTANCE_ID: 'g-canary', TAGS: 'canary' });
    const byId = await spawn({ APP: 'gray', INSTANCE_ID: 'g-picked' });
    const plain = await spawn({ APP: 'gray', INSTANCE_ID: 'g-plain' });
    const value = (s: Subscriber) => s.entries.get('limits/qps')?.value;

    const g = await api('POST', '/items/gray/limits/qps/gray', {
      value: '200',
      tags: ['canary'],
      instanceIds: ['g-picked'],
      comment: 'try 200',
    });
    assert.equal(g.status, 200, JSON.stringify(g.json));
    await waitFor('gray audience sees 200', () => value(canary) === '200' && value(byId) === '200');
    assert.equal(value(plain), '100');
    assert.equal(canary.entries.get('limits/qps')?.gray, true);
    // A plain publish during a gray release is refused (promote or abort first).
    assert.equal((await api('PUT', '/items/gray/limits/qps', { value: '5' })).status, 409);

    const p = await api('POST', '/items/gray/limits/qps/gray/promote', { comment: 'looks good' });
    assert.equal(p.json.version, 2);
    await waitFor('everyone sees 200 as version 2', () =>
      [canary, byId, plain].every(
        (s) =>
          value(s) === '200' &&
          s.entries.get('limits/qps')?.version === 2 &&
          !s.entries.get('limits/qps')?.gray,
      ),
    );

    await api('POST', '/items/gray/limits/qps/gray', { value: '999', tags: ['canary'] });
    await waitFor('canary sees 999', () => value(canary) === '999');
    // A new gray value over the same base version replaces the first one.
    await api('POST', '/items/gray/limits/qps/gray', { value: '998', tags: ['canary'] });
    await waitFor('canary sees 998', () => value(canary) === '998');
    const a = await api('POST', '/items/gray/limits/qps/gray/abort', {});
    assert.equal(a.status, 200);
    await waitFor('canary back to 200', () => value(canary) === '200');
    assert.equal(value(plain), '200');
    assert.ok(
      !plain.changes.some((e) => e.value === '999' || e.value === '998'),
      'the plain instance never saw the gray value',
    );
    const item = await api('GET', '/items/gray/limits/qps', undefined, 'app');
    assert.equal(item.json.version, 2);
    assert.equal(item.json.gray, null);
  });

  it('rollback restores the exact earlier value as a new version, pushed to subscribers', async () => {
    const original = '{ "b": [1, 2,3],\n  "a": "x"  }';
    await api('PUT', '/items/rb/main/settings', { value: original });
    await api('PUT', '/items/rb/main/settings', { value: '{"b":[]}' });
    const sub = await spawn({ APP: 'rb' });
    assert.equal(sub.entries.get('main/settings')?.value, '{"b":[]}');
    const r = await api('POST', '/items/rb/main/settings/rollback', {
      toVersion: 1,
      expectedVersion: 2,
    });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.version, 3);
    const got = await api('GET', '/items/rb/main/settings', undefined, 'app');
    assert.equal(got.json.value, original);
    await waitFor(
      'subscriber sees the restored value',
      () => sub.entries.get('main/settings')?.value === original,
    );
    const missing = await api('POST', '/items/rb/main/settings/rollback', { toVersion: 42 });
    assert.equal(missing.status, 404);
  });

  it('an instance restarted while no control plane answers starts with its last config', async () => {
    const snapshot = path.join(dataDir, 'instance-snapshot.json');
    // The instance's own control-plane node (sharing the database), stopped later.
    const dir2 = await mkdtemp(path.join(os.tmpdir(), 'peak-config-down-'));
    const node = await PeakServer.start({
      dataDir: dir2,
      port: 0,
      postgresUrl: server.postgresUrl(),
    });
    try {
      await api('PUT', '/items/snap/app/greeting', { format: 'text', value: 'hello v1' });
      const first = await spawn({ APP: 'snap', SNAPSHOT: snapshot, PEAK_SERVER: node.info.url });
      await api('PUT', '/items/snap/app/greeting', { format: 'text', value: 'hello v2' });
      await waitFor('first sees v2', () => first.entries.get('app/greeting')?.value === 'hello v2');
      assert.equal(await stopSubscriber(first), 0);
      await node.stop();
      const down = await fetch(`${node.info.url}/health`).then(
        () => 'answered',
        () => 'down',
      );
      assert.equal(down, 'down');

      const restarted = await spawn({
        APP: 'snap',
        SNAPSHOT: snapshot,
        PEAK_SERVER: node.info.url,
        START_TIMEOUT_MS: '500',
      });
      assert.equal(restarted.origin, 'snapshot');
      assert.equal(restarted.entries.get('app/greeting')?.value, 'hello v2');
      assert.equal(restarted.entries.get('app/greeting')?.version, 2);
    } finally {
      await node.stop();
      await rm(dir2, { recursive: true, force: true });
    }
  });

  it('a change published on one control-plane node reaches subscribers of another; a subscriber moves when its node stops', async () => {
    const dir2 = await mkdtemp(path.join(os.tmpdir(), 'peak-config-node2-'));
    const node2 = await PeakServer.start({
      dataDir: dir2,
      port: 0,
      postgresUrl: server.postgresUrl(),
    });
    const client = new ConfigClient({
      servers: [node2.info.url, server.info.url],
      token: server.credential(),
      app: 'multi',
      reconnectMs: 50,
    });
    try {
      await api('PUT', '/items/multi/a/b', { value: '1' });
      assert.equal(await client.start(), 'server');
      assert.equal(client.getNumber('a/b'), 1);
      await api('PUT', '/items/multi/a/b', { value: '2' });
      await waitFor('node 2 pushed the change made on node 1', () => client.getNumber('a/b') === 2);
      await node2.stop();
      await api('PUT', '/items/multi/a/b', { value: '3' });
      await waitFor(
        'the client moved to node 1 and got the change',
        () => client.getNumber('a/b') === 3,
      );
    } finally {
      await client.close();
      await node2.stop();
      await rm(dir2, { recursive: true, force: true });
    }
  });

  it('audits who changed what, when and from where', async () => {
    const r = await api('GET', '/audit?app=gray&key=qps');
    const rows = r.json.audit as {
      action: string;
      actor: string;
      source: string;
      at: string;
      version: number;
    }[];
    assert.deepEqual(
      rows.map((a) => a.action),
      ['abort', 'gray', 'gray', 'promote', 'gray', 'publish'],
    );
    assert.match(rows[0]!.source, /127\.0\.0\.1/);
    assert.ok(!Number.isNaN(Date.parse(rows[0]!.at)));
    assert.equal(rows.at(-1)?.actor, 'admin');
  });
});
