/**
 * `peakware/admin` against a real `peak server` (embedded PostgreSQL, real HTTP): one call
 * of every section, the answers' shapes, the server's errors as PeakErrors with their
 * codes, and a rotated token taking effect.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AdminClient } from '../src/admin/index.js';
import { isPeakError } from '../src/core/errors.js';
import { Producer } from '../src/mq/index.js';
import { HttpRegistry } from '../src/registry/index.js';
import { PeakServer } from '../src/server/index.js';

describe('peakware/admin', { timeout: 120_000 }, () => {
  let dataDir: string;
  let server: PeakServer;
  let admin: AdminClient;
  let readOnly: AdminClient;

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-admin-client-'));
    server = await PeakServer.start({ dataDir, port: 0 });
    const tokenFile = server.info.adminTokenFile;
    admin = new AdminClient({
      servers: server.info.url,
      token: async () => (await readFile(tokenFile, 'utf8')).trim(),
    });
    // Reads take any credential: the local app's (every SDK grant, no operator role).
    readOnly = new AdminClient({ servers: server.info.url, token: server.credential() });
  });

  after(async () => {
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('system: health, readiness, info, nodes, /metrics', async () => {
    assert.deepEqual(await readOnly.system.health(), { status: 'ok' });
    assert.equal((await readOnly.system.ready()).status, 'ready');
    const info = await readOnly.system.info();
    assert.equal(info.nodeId, server.info.nodeId);
    const nodes = await readOnly.system.nodes();
    assert.deepEqual(
      nodes.filter((n) => n.self).map((n) => n.nodeId),
      [server.info.nodeId],
    );
    assert.match(await readOnly.system.metrics(), /^peak_server_info\{/m);
  });

  it('config: publish, read, history, diff, gray, promote, rollback, audit', async () => {
    const item = { app: 'adm', group: 'db', key: 'pool' };
    await assert.rejects(
      new AdminClient({ servers: server.info.url }).config.publish(item, { value: '{}' }),
      (err) => isPeakError(err, 'PEAK_UNAUTHENTICATED'),
    );
    await assert.rejects(readOnly.config.publish(item, { value: '{}' }), (err) =>
      isPeakError(err, 'PEAK_FORBIDDEN'),
    );
    assert.deepEqual(await admin.config.publish(item, { value: '{"max":10}', author: 'ann' }), {
      version: 1,
    });
    await assert.rejects(
      admin.config.publish(item, { value: '{"max":11}', expectedVersion: 0 }),
      (err) => isPeakError(err, 'PEAK_CONFIG_CONFLICT') && err.details.status === 409,
    );
    await admin.config.publish(item, { value: '{"max":20}', expectedVersion: 1 });
    assert.equal((await admin.config.get(item)).version, 2);
    assert.deepEqual(
      (await admin.config.items('adm')).map((i) => [i.key, i.version, i.gray]),
      [['pool', 2, null]],
    );
    assert.ok((await admin.config.apps()).some((a) => a.app === 'adm' && a.items === 1));
    assert.deepEqual(
      (await admin.config.history(item)).map((v) => [v.version, v.author]),
      [
        [2, 'admin'],
        [1, 'ann'],
      ],
    );
    assert.equal((await admin.config.version(item, 1)).value, '{"max":10}');
    const diff = await admin.config.diff(item);
    assert.deepEqual([diff.from, diff.to], [1, 2]);
    assert.ok(diff.diff.some((l) => l.op === '+' && l.text.includes('20')));

    assert.equal(
      (await admin.config.gray(item, { value: '{"max":30}', tags: ['canary'] })).baseVersion,
      2,
    );
    const canary = await admin.config.entries('adm', { tags: ['canary'] });
    assert.equal(canary.find((e) => e.key === 'pool')?.value, '{"max":30}');
    assert.equal((await admin.config.promote(item, { comment: 'fine' })).version, 3);
    await admin.config.gray(item, { value: '{"max":40}', instanceIds: ['i-1'] });
    assert.deepEqual(await admin.config.abortGray(item), { aborted: true });
    assert.deepEqual(await admin.config.rollback(item, { toVersion: 1 }), {
      version: 4,
      restored: 1,
    });
    const audit = await admin.config.audit({ app: 'adm' }, { limit: 100 });
    assert.ok(audit.length >= 6, JSON.stringify(audit.map((a) => a.action)));
    await assert.rejects(admin.config.get({ ...item, key: 'none' }), (err) =>
      isPeakError(err, 'PEAK_CONFIG_NOT_FOUND'),
    );
  });

  it('mq: topics, query, message and trace, dead letters, replay, stats', async () => {
    const created = await admin.mq.createTopic({ name: 'adm-orders', queues: 2 });
    assert.deepEqual([created.created, created.name, created.queues], [true, 'adm-orders', 2]);
    assert.equal((await admin.mq.createTopic({ name: 'adm-orders' })).created, false);
    const topic = (await admin.mq.topics()).find((t) => t.name === 'adm-orders');
    assert.deepEqual([topic?.queues, topic?.secured], [2, false]);

    const producer = new Producer({ servers: server.info.url, token: server.credential() });
    const sent = await producer.send('adm-orders', { body: 'hello', keys: ['order-7'] });
    await producer.close();
    const found = await admin.mq.query({ key: 'order-7' });
    assert.deepEqual(
      found.map((m) => m.id),
      [sent.id],
    );
    assert.equal(Buffer.from(found[0]!.body, 'base64').toString(), 'hello');
    assert.equal(
      (await admin.mq.query({ topic: 'adm-orders', from: Date.now() - 60_000 })).length,
      1,
    );
    const d = await admin.mq.message(sent.id);
    assert.deepEqual([d.found, d.state], [true, 'stored']);
    assert.deepEqual(
      (await admin.mq.trace(sent.id)).map((t) => t.event),
      ['produced', 'stored'],
    );
    assert.deepEqual(await admin.mq.deadLetters('adm-group'), []);
    assert.deepEqual(await admin.mq.resendDeadLetters('adm-group', 'all'), { resent: [] });
    const queues = await admin.mq.resetOffset(
      'adm-group',
      'adm-orders',
      new Date(Date.now() - 60_000),
    );
    assert.deepEqual(queues.map((q) => q.queueId).sort(), [0, 1]);
    const stats = await admin.mq.stats();
    assert.ok(stats.topics.some((t) => t.topic === 'adm-orders' && t.totalIn === 1));
    await assert.rejects(admin.mq.message('999'), (err) => isPeakError(err, 'PEAK_NOT_FOUND'));
  });

  it('registry: services, instances, offline / online / weight', async () => {
    const registry = new HttpRegistry({ servers: server.info.url, token: server.credential() });
    const handle = await registry.register({
      instanceId: 'adm-1',
      service: 'adm.svc',
      version: '1.0',
      group: 'default',
      host: '127.0.0.1',
      port: 4999,
      weight: 100,
      tags: [],
      metadata: {},
    });
    try {
      const services = await readOnly.registry.services();
      assert.deepEqual(
        services.filter((s) => s.service === 'adm.svc').map((s) => [s.key, s.up, s.offline]),
        [['default/adm.svc:1.0', 1, 0]],
      );
      assert.deepEqual(await admin.registry.offline('adm-1'), { changed: 1 });
      await admin.registry.weight('adm-1', 7);
      const [instance] = await readOnly.registry.instances({ key: 'default/adm.svc:1.0' });
      assert.deepEqual([instance?.status, instance?.weight], ['offline', 7]);
      assert.ok(typeof instance?.leaseExpiresAt === 'string');
      await admin.registry.online('adm-1');
      await assert.rejects(admin.registry.offline('nobody'), (err) =>
        isPeakError(err, 'PEAK_NOT_FOUND'),
      );
    } finally {
      await handle.deregister();
      await registry.close();
    }
  });

  it('guard: rules, stats, cluster', async () => {
    assert.deepEqual(await readOnly.guard.rules({ app: 'nobody' }), []);
    const stats = await readOnly.guard.stats('GET /x', { seconds: 5 });
    assert.deepEqual([stats.resource, stats.seconds, stats.rows], ['GET /x', 5, []]);
    await assert.rejects(readOnly.guard.stats(''), (err) =>
      isPeakError(err, 'PEAK_INVALID_ARGUMENT'),
    );
    const cluster = await readOnly.guard.cluster();
    assert.equal(cluster.nodeId, server.info.nodeId);
    assert.ok(Array.isArray(cluster.budgets));
  });

  it('telemetry: traces, topology, endpoints, slow SQL, live metrics', async () => {
    assert.deepEqual(
      await readOnly.telemetry.traces({ service: 'none', tag: { key: 'a', value: 'b' } }),
      [],
    );
    const topology = await readOnly.telemetry.topology({ sinceMinutes: 5 });
    assert.deepEqual([topology.services, topology.edges], [[], []]);
    assert.deepEqual(await readOnly.telemetry.endpoints({ service: 'none' }), []);
    assert.deepEqual(await readOnly.telemetry.slowSql({ limit: 5 }), []);
    const live = await readOnly.telemetry.liveMetrics({ seconds: 5 });
    assert.deepEqual([live.seconds, live.resources], [5, []]);
    await assert.rejects(readOnly.telemetry.trace('0'.repeat(32)), (err) =>
      isPeakError(err, 'PEAK_NOT_FOUND'),
    );
  });

  it('alerts: put, list, silence, events, evaluator, delete', async () => {
    const rule = await admin.alerts.putRule('adm-p99', {
      kind: 'p99',
      service: 'adm.svc',
      threshold: 500,
    });
    assert.deepEqual([rule.name, rule.kind, rule.threshold], ['adm-p99', 'p99', 500]);
    const listed = (await readOnly.alerts.rules()).find((r) => r.name === 'adm-p99');
    assert.equal(listed?.firing, false);
    const silenced = await admin.alerts.silence('adm-p99', 10);
    assert.ok(Date.parse(silenced.silencedUntil) > Date.now());
    assert.deepEqual(await readOnly.alerts.events({ rule: 'adm-p99' }), []);
    assert.equal((await readOnly.alerts.evaluator()).node, server.info.nodeId);
    assert.deepEqual(await admin.alerts.deleteRule('adm-p99'), { deleted: 'adm-p99' });
    await assert.rejects(admin.alerts.deleteRule('adm-p99'), (err) =>
      isPeakError(err, 'PEAK_NOT_FOUND'),
    );
  });

  it('token: a rotated token works at once and the old one no longer does', async () => {
    const old = (await readFile(server.info.adminTokenFile, 'utf8')).trim();
    const rotated = await admin.system.rotateToken();
    assert.notEqual(rotated.token, old);
    const stale = new AdminClient({ servers: server.info.url, token: old });
    await assert.rejects(stale.mq.createTopic({ name: 'adm-stale' }), (err) =>
      isPeakError(err, 'PEAK_FORBIDDEN'),
    );
    const fresh = new AdminClient({ servers: server.info.url, token: rotated.token });
    assert.equal((await fresh.mq.createTopic({ name: 'adm-fresh' })).created, true);
  });
});
