/**
 * The registry on a real control plane: leases expire when heartbeats stop (and the change
 * is pushed), re-registration after a lost lease, validation of bad registrations, and the
 * SSE watch stream as curl would see it.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HttpRegistry, type ServiceInstance } from '../src/registry/index.js';
import { PeakServer } from '../src/server/index.js';
import { bearer, useLocalCredential } from './support/credentials.js';
import { waitFor } from './support/wait.js';

const base = {
  service: 'reg.test',
  version: '1.0.0',
  group: 'default',
  host: '127.0.0.1',
  port: 7,
  weight: 10,
  tags: ['canary'],
  metadata: { zone: 'a' },
};
const key = 'default/reg.test:1.0.0';

describe('registry on the control plane', { timeout: 60_000 }, () => {
  let dataDir: string;
  let server: PeakServer;

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-registry-'));
    server = await PeakServer.start({ dataDir, port: 0 });
    useLocalCredential(server);
  });

  after(async () => {
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('pushes a snapshot, then registration, and removal when the lease runs out', async () => {
    const consumer = new HttpRegistry({ servers: [server.info.url] });
    const producer = new HttpRegistry({ servers: [server.info.url], leaseMs: 1000 });
    try {
      const lists: (readonly ServiceInstance[])[] = [];
      consumer.subscribe(key, (l) => lists.push(l));
      await waitFor('the first (empty) snapshot', () => lists.length >= 1);
      assert.deepEqual(lists[0], []);
      await producer.register({ ...base, instanceId: 'lease-1' });
      await waitFor('registration pushed', () => lists.at(-1)?.length === 1);
      const got = lists.at(-1)![0]!;
      assert.equal(got.instanceId, 'lease-1');
      assert.deepEqual(got.tags, ['canary']);
      assert.deepEqual(got.metadata, { zone: 'a' });
      assert.equal(got.status, 'up');
      // Heartbeats keep it alive past its lease...
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(lists.at(-1)?.length, 1);
      // ...and when they stop (a crashed provider), the lease expires and consumers hear it.
      await producer.close();
      await waitFor('lease expiry pushed', () => lists.at(-1)?.length === 0, 5000);
    } finally {
      await consumer.close();
      await producer.close();
    }
  });

  it('a consumer whose control-plane node stops moves to another node and keeps getting pushes', async () => {
    const info = server.info.postgres;
    assert.equal(info.mode, 'embedded');
    if (info.mode !== 'embedded') return;
    const password = (await readFile(path.join(dataDir, 'postgres-password'), 'utf8')).trim();
    const dir2 = await mkdtemp(path.join(os.tmpdir(), 'peak-registry-node2-'));
    const node2 = await PeakServer.start({
      dataDir: dir2,
      port: 0,
      postgresUrl: `postgres://peak:${encodeURIComponent(password)}@${info.host}:${info.port}/postgres`,
    });
    const consumer = new HttpRegistry({
      servers: [node2.info.url, server.info.url],
      reconnectMs: 50,
    });
    const producer = new HttpRegistry({ servers: [server.info.url] });
    try {
      let latest: readonly ServiceInstance[] | undefined;
      consumer.subscribe(key, (l) => {
        latest = l;
      });
      const handle = await producer.register({ ...base, instanceId: 'moving-1' });
      await waitFor(
        'pushed via node 2',
        () => latest?.some((i) => i.instanceId === 'moving-1') === true,
      );
      await node2.stop();
      await handle.update({ weight: 77 });
      await waitFor(
        'pushed via node 1 after node 2 stopped',
        () => latest?.find((i) => i.instanceId === 'moving-1')?.weight === 77,
        10_000,
      );
      await handle.deregister();
    } finally {
      await consumer.close();
      await producer.close();
      await node2.stop();
      await rm(dir2, { recursive: true, force: true });
    }
  });

  it('one consumer watches several keys on one stream, added and dropped over time', async () => {
    const consumer = new HttpRegistry({ servers: [server.info.url] });
    const producer = new HttpRegistry({ servers: [server.info.url] });
    try {
      const seen: Record<string, readonly ServiceInstance[]> = {};
      const keys = ['multi.a', 'multi.b', 'multi.c'].map((svc) => `default/${svc}:1.0.0`);
      const subs = keys.map((k) =>
        consumer.subscribe(k, (l) => {
          seen[k] = l;
        }),
      );
      await waitFor('first snapshots of all keys', () => keys.every((k) => seen[k] !== undefined));
      const handles = await Promise.all(
        ['multi.a', 'multi.b', 'multi.c'].map((svc, i) =>
          producer.register({ ...base, service: svc, instanceId: `multi-${i}` }),
        ),
      );
      await waitFor('registrations of all keys pushed', () =>
        keys.every((k) => seen[k]?.length === 1),
      );
      subs[0]!.close();
      await handles[1]!.update({ weight: 5 });
      await waitFor('a change on a key still watched', () => seen[keys[1]!]?.[0]?.weight === 5);
      await handles[0]!.update({ weight: 9 });
      await handles[2]!.update({ weight: 9 });
      await waitFor('the other key still pushed', () => seen[keys[2]!]?.[0]?.weight === 9);
      assert.notEqual(seen[keys[0]!]?.[0]?.weight, 9, 'a closed subscription gets nothing more');
      for (const h of handles) await h.deregister();
    } finally {
      await consumer.close();
      await producer.close();
    }
  });

  it('refuses malformed registrations with a clear 400', async () => {
    const res = await fetch(`${server.info.url}/api/v1/registry/instances`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer() },
      body: JSON.stringify({ ...base, instanceId: 'x', port: 70000 }),
    });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'PEAK_INVALID_ARGUMENT');
    assert.match(body.error.message, /port/);
    const renew = await fetch(
      `${server.info.url}/api/v1/registry/instances/never-registered/lease`,
      {
        method: 'PUT',
        headers: { 'content-type': 'application/json', ...bearer() },
        body: '{}',
      },
    );
    assert.equal(renew.status, 404);
    const watch = await fetch(`${server.info.url}/api/v1/registry/watch?key=not-a-key`, {
      headers: bearer(),
    });
    assert.equal(watch.status, 400);
  });

  it('admin changes need the admin token, not an app credential', async () => {
    for (const [headers, status] of [
      [{}, 401],
      [bearer(), 403],
    ] as const) {
      const res = await fetch(`${server.info.url}/api/v1/registry/instances/x/admin`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ status: 'offline' }),
      });
      assert.equal(res.status, status);
    }
  });

  it('serves the watch stream as plain Server-Sent Events', async () => {
    const abort = new AbortController();
    const res = await fetch(
      `${server.info.url}/api/v1/registry/watch?key=${encodeURIComponent(key)}`,
      {
        headers: bearer(),
        signal: abort.signal,
      },
    );
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('event: snapshot')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    abort.abort();
    assert.match(
      text,
      /event: snapshot\ndata: \{"key":"default\/reg\.test:1\.0\.0","instances":\[/,
    );
  });
});
