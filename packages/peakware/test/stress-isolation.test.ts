/**
 * A stress run through a real chain beside real traffic, on a real control plane: an HTTP
 * order service writes through the data layer in the caller's context and emits an event,
 * so stress orders land in shadow tables and stress events in the shadow topic, while a
 * real loop places real orders. The run is registered, steered from the control plane and
 * its report kept; the isolation check after it passes and counts the shadow rows. Then a
 * planted leak (a write that drops the call context, so it ignores the shadow routing)
 * makes the check fail and name the physical table, and an event sent with the run's
 * baggage but without the stress flag is named by its real topic. Last, two `peak stress
 * agent` processes share one run's rate and the control plane merges their reports.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { AdminClient } from '../src/admin/index.js';
import { rootCommand } from '../src/cli/commands/index.js';
import { runCli } from '../src/cli/run-cli.js';
import { createContext, runWithContext } from '../src/core/context.js';
import { decodeContext } from '../src/core/context-headers.js';
import { ShardedDatabase } from '../src/data/index.js';
import { Producer } from '../src/mq/index.js';
import { PeakServer } from '../src/server/index.js';
import {
  assertIsolated,
  checkIsolation,
  constantRate,
  defineScenario,
  httpStep,
  type IsolationProbes,
  STRESS_RUN_BAGGAGE,
  startRun,
} from '../src/stress/index.js';
import { useLocalCredential } from './support/credentials.js';
import { spawnPeak } from './support/peak-process.js';

describe('stress: shadow traffic beside real traffic, and the isolation check', {
  timeout: 120_000,
}, () => {
  let dataDir: string;
  let server: PeakServer;
  let admin: AdminClient;
  let db: ShardedDatabase;
  let producer: Producer;
  let service: http.Server;
  let target: string;
  let leak = false;
  const probes: IsolationProbes = { tables: [{ table: 't_order', where: 'buyer_id >= 900000' }] };

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-stress-iso-'));
    server = await PeakServer.start({ dataDir, port: 0 });
    useLocalCredential(server);
    admin = new AdminClient({ servers: [server.info.url], token: server.info.adminToken! });
    const info = server.info.postgres;
    assert.equal(info.mode, 'embedded');
    const password = (await readFile(path.join(dataDir, 'postgres-password'), 'utf8')).trim();
    const url = (database: string) =>
      `postgres://peak:${encodeURIComponent(password)}@${info.host}:${info.port}/${database}`;
    const c = new pg.Client({ connectionString: url('postgres') });
    await c.connect();
    await c.query('CREATE DATABASE shop');
    await c.end();
    db = await ShardedDatabase.connect({
      layout: {
        dataSources: ['ds0'],
        tables: {
          t_order: {
            shardingColumn: 'buyer_id',
            algorithm: { type: 'hash-mod' },
            tablesPerDataSource: 2,
          },
        },
      },
      connections: { ds0: { primary: url('shop') } },
      poolSize: 4,
    });
    for (const t of db.physicalTables())
      await db
        .primary(t.dataSource)
        .query(`CREATE TABLE ${t.table} (buyer_id bigint PRIMARY KEY, note text NOT NULL)`);
    await db.createShadowTables();
    await admin.mq.createTopic({ name: 'order-placed', queues: 2 });
    producer = new Producer({ servers: server.info.url });

    // The order service: the caller's context from the headers, the write and the event in it.
    service = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (b: Buffer) => chunks.push(b));
      req.on('end', () => {
        const { buyer } = JSON.parse(Buffer.concat(chunks).toString()) as { buyer: number };
        const ctx = decodeContext(req.headers);
        // The planted leak: the write runs in a fresh context, so the stress flag is lost.
        const writeCtx = leak ? createContext() : ctx;
        runWithContext(writeCtx, () =>
          db.query('INSERT INTO t_order (buyer_id, note) VALUES ($1, $2)', [buyer, 'order']),
        )
          .then(() =>
            runWithContext(ctx, () => producer.send('order-placed', { body: String(buyer) })),
          )
          .then(
            () => res.end('{"ok":true}'),
            (err: Error) => {
              res.statusCode = 500;
              res.end(err.message);
            },
          );
      });
    });
    await new Promise<void>((r) => service.listen(0, '127.0.0.1', r));
    target = `http://127.0.0.1:${(service.address() as AddressInfo).port}`;
  });

  after(async () => {
    service?.closeAllConnections();
    service?.close();
    await producer?.close();
    await db?.close();
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  const scenario = (name: string, from: number) =>
    defineScenario({
      name,
      target,
      load: constantRate(40, 1),
      steps: [
        httpStep({ name: 'order', path: '/orders', json: (it) => ({ buyer: from + it.index }) }),
      ],
    });

  it('keeps stress orders and events in the shadows while real orders flow, and the report in the control plane', async () => {
    const run = startRun(scenario('shadow-orders', 900_000), { runId: 'iso-1' });
    await admin.stress.createRun({
      id: run.id,
      scenario: 'shadow-orders',
      model: constantRate(40, 1),
    });
    // real traffic beside it
    for (let b = 1; b <= 20; b++)
      await fetch(`${target}/orders`, { method: 'POST', body: JSON.stringify({ buyer: b }) }).then(
        (r) => r.text(),
      );
    const report = await run.done;
    assert.equal(report.totals.ok, 40, JSON.stringify(report.errors));
    const isolation = await checkIsolation(
      { runId: run.id, sinceMs: report.startedAt - 1000 },
      probes,
      {
        db,
        messages: (id, since) => admin.stress.leakedMessages(id, since),
      },
    );
    assert.equal(isolation.ok, true, JSON.stringify(isolation.leaks));
    assert.equal(isolation.checked.topics, true);
    assert.equal(isolation.checked.tables.length, 2);
    assert.equal(
      isolation.checked.tables.reduce((s, t) => s + (t.shadowRows ?? 0), 0),
      40,
      'every stress order is in a shadow table',
    );
    const real = await db.query<{ n: string }>('SELECT count(*) AS n FROM t_order');
    assert.equal(Number(real.rows[0]?.n), 20, 'the real orders, and only they, in the real tables');
    await admin.stress.finish(run.id, report, isolation);

    const kept = await admin.stress.run('iso-1');
    assert.equal(kept.status, 'finished');
    assert.equal(kept.report?.totals.ok, 40);
    assert.equal(kept.isolation?.ok, true);
    let out = '';
    const stdout = new PassThrough();
    stdout.on('data', (b) => {
      out += b;
    });
    const code = await runCli(
      rootCommand,
      // --data: this server's folder, not a `.peak` an `npm start` left in the working directory.
      ['stress', 'ls', '--server', server.info.url, '--data', dataDir, '--json'],
      {
        stdout,
        stderr: new PassThrough(),
        env: {},
      },
    );
    assert.equal(code, 0, out);
    const listed = JSON.parse(out).runs as { id: string; isolated: boolean; stopReason: string }[];
    assert.deepEqual(
      listed.map((r) => [r.id, r.isolated, r.stopReason]),
      [['iso-1', true, 'completed']],
    );
  });

  it('fails on a planted leak and names the table, and names a real topic holding the run’s events', async () => {
    leak = true;
    const run = startRun(scenario('leaky-orders', 950_000), { runId: 'iso-2' });
    const report = await run.done;
    leak = false;
    assert.equal(report.totals.ok, 40);
    // An event that kept the run's baggage but lost the stress flag: it lands in the real topic.
    await runWithContext(createContext({ baggage: { [STRESS_RUN_BAGGAGE]: 'iso-2' } }), () =>
      producer.send('order-placed', { body: 'leaked event' }),
    );
    const isolation = await checkIsolation(
      { runId: 'iso-2', sinceMs: report.startedAt - 1000 },
      probes,
      {
        db,
        messages: (id, since) => admin.stress.leakedMessages(id, since),
      },
    );
    assert.equal(isolation.ok, false);
    const tables = isolation.leaks.filter((l) => l.kind === 'table');
    assert.deepEqual(tables.map((l) => l.where).sort(), [
      'ds0.t_order_0 (t_order)',
      'ds0.t_order_1 (t_order)',
    ]);
    assert.equal(
      tables.reduce((s, l) => s + l.count, 0),
      40,
    );
    assert.deepEqual(
      isolation.leaks.filter((l) => l.kind === 'topic'),
      [{ kind: 'topic', where: 'order-placed', count: 1 }],
    );
    assert.throws(() => assertIsolated(isolation), {
      code: 'PEAK_STRESS_LEAK',
      message: /table ds0\.t_order_0 \(t_order\) \(\d+\).*topic order-placed \(1\)/,
    });
  });

  it('shares one run between two agent processes and merges their reports', async () => {
    const here = path.dirname(new URL(import.meta.url).pathname);
    const sdk = path.resolve(here, '../src/stress/index.js');
    const file = path.join(dataDir, 'agents.mjs');
    await writeFile(
      file,
      `import { constantRate, defineScenario, httpStep } from ${JSON.stringify(sdk)};
export default defineScenario({
  name: 'agents', target: ${JSON.stringify(target)}, load: constantRate(40, 1),
  steps: [httpStep({ name: 'order', path: '/orders', json: (it) => ({ buyer: 980000 + it.index * 2 + (process.env.AGENT_N === 'b' ? 1 : 0) }) })],
});
`,
    );
    const common = [
      'stress',
      'agent',
      file,
      '--run',
      'agents-1',
      '--agents',
      '2',
      '--server',
      server.info.url,
      '--token',
      server.info.adminToken!,
      '--json',
    ];
    const a = spawnPeak([...common, '--agent', 'a'], { AGENT_N: 'a' });
    const b = spawnPeak([...common, '--agent', 'b'], { AGENT_N: 'b' });
    const [ea, eb] = await Promise.all([a.exited, b.exited]);
    assert.equal(ea.code, 0, a.stderr());
    assert.equal(eb.code, 0, b.stderr());
    const reports = [a, b].map(
      (p) => JSON.parse(p.stdout()) as { report: { totals: { ok: number } } },
    );
    assert.deepEqual(
      reports.map((r) => r.report.totals.ok),
      [20, 20],
      'each agent sent half the rate',
    );
    const run = await admin.stress.run('agents-1');
    assert.equal(run.status, 'finished');
    assert.deepEqual(run.agents.map((x) => x.agentId).sort(), ['a', 'b']);
    assert.equal(run.report?.totals.ok, 40);
    assert.equal(run.report?.latency.count, 40, 'the agents’ histograms added up');
    assert.equal(run.report?.generator.agents, 2);
  });

  it('peak stress run registers the run, checks isolation of the topics and keeps the report', async () => {
    const here = path.dirname(new URL(import.meta.url).pathname);
    const sdk = path.resolve(here, '../src/stress/index.js');
    const file = path.join(dataDir, 'cli-run.mjs');
    await writeFile(
      file,
      `import { constantRate, defineScenario, httpStep } from ${JSON.stringify(sdk)};
export default () => defineScenario({
  name: 'cli-run', target: ${JSON.stringify(target)}, load: constantRate(20, 1),
  steps: [httpStep({ name: 'order', path: '/orders', json: (it) => ({ buyer: 990000 + it.index }) })],
});
`,
    );
    const p = spawnPeak([
      'stress',
      'run',
      file,
      '--server',
      server.info.url,
      '--token',
      server.info.adminToken!,
      '--out',
      dataDir,
      '--json',
    ]);
    const { code } = await p.exited;
    assert.equal(code, 0, p.stderr());
    const out = JSON.parse(p.stdout()) as {
      report: { runId: string; totals: { ok: number } };
      isolation: { ok: boolean; checked: { topics: boolean } };
      files: { html: string };
    };
    assert.equal(out.report.totals.ok, 20);
    assert.deepEqual([out.isolation.ok, out.isolation.checked.topics], [true, true]);
    assert.match(await readFile(out.files.html, 'utf8'), /<svg /);
    const kept = await admin.stress.run(out.report.runId);
    assert.deepEqual(
      [kept.status, kept.report?.totals.ok, kept.isolation?.ok],
      ['finished', 20, true],
    );
  });
});
