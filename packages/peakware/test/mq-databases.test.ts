/**
 * Topics on several PostgreSQL instances (`PEAK_MQ_DATABASES`): a real `peak server` on
 * PostgreSQL #1 with a second message database on PostgreSQL #2. A topic placed on #2 keeps
 * everything there (messages, pending delayed rows, claims, the group's retry topic, dead
 * letters) and nothing on #1, while sends, receives, acks, delays, retries, dead letters,
 * queries by id and key, traces, stats and removal work as for a topic on the node's own
 * database. A node that was not given #2 says so for that topic; a name nobody has is refused.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { AdminClient } from '../src/admin/index.js';
import { isPeakError } from '../src/core/errors.js';
import { BrokerClient, Consumer, Producer, sendInTransaction } from '../src/mq/index.js';
import { killGroup, type PeakProcess, runPeak, spawnPeak } from './support/peak-process.js';
import { type PostgresCluster, startPostgresCluster } from './support/postgres-cluster.js';
import { waitFor } from './support/wait.js';

describe('mq topics on two PostgreSQL instances', { timeout: 240_000 }, () => {
  let cluster: PostgresCluster;
  const nodes: { p: PeakProcess; dir: string }[] = [];
  let url: string;
  let admin: AdminClient;
  let token: string;
  let db1: pg.Pool;
  let db2: pg.Pool;

  const startNode = async (env: NodeJS.ProcessEnv) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'peak-mq-dbs-'));
    const p = spawnPeak(
      [
        'server',
        '--postgres',
        cluster.url(0),
        '--data',
        dir,
        '--port',
        '0',
        '--json',
        '--log-level',
        'warn',
      ],
      env,
    );
    nodes.push({ p, dir });
    const ready = await p.waitFor('ready', 60_000);
    return { url: String(ready.url), dir, adminToken: ready.adminToken as string | undefined };
  };

  /** Rows of `table` for `topic` on a database (`mq_dlq` rows by message). */
  const count = async (db: pg.Pool, sql: string, params: unknown[]) =>
    Number(
      (await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${sql}`, params)).rows[0]!.n,
    );

  before(async () => {
    cluster = await startPostgresCluster(2);
    const node = await startNode({ PEAK_MQ_DATABASES: `mq2=${cluster.url(1)}` });
    url = node.url;
    process.env.PEAK_CREDENTIAL = (
      await readFile(path.join(node.dir, 'credentials', 'local'), 'utf8')
    ).trim();
    token = node.adminToken ?? (await readFile(path.join(node.dir, 'admin-token'), 'utf8')).trim();
    admin = new AdminClient({ servers: url, token });
    db1 = new pg.Pool({ connectionString: cluster.url(0), max: 2 });
    db2 = new pg.Pool({ connectionString: cluster.url(1), max: 2 });
    for (const db of [db1, db2]) db.on('error', () => undefined);
  });

  after(async () => {
    for (const { p, dir } of nodes) {
      killGroup(p.child);
      await p.exited;
      await rm(dir, { recursive: true, force: true });
    }
    await db1?.end();
    await db2?.end();
    await cluster?.stop();
  });

  it('places topics where asked, once, and refuses a database nobody has', async () => {
    assert.deepEqual(await admin.mq.databases(), ['main', 'mq2']);
    const far = await admin.mq.createTopic({ name: 'far', queues: 2, database: 'mq2' });
    assert.deepEqual([far.created, far.database], [true, 'mq2']);
    const near = await admin.mq.createTopic({ name: 'near', queues: 2 });
    assert.deepEqual([near.created, near.database], [true, 'main']);
    // A topic does not move: asked again elsewhere, it answers where it is.
    const again = await admin.mq.createTopic({ name: 'far', queues: 2, database: 'main' });
    assert.deepEqual([again.created, again.database], [false, 'mq2']);
    await assert.rejects(
      admin.mq.createTopic({ name: 'lost', database: 'mq9' }),
      (e) =>
        isPeakError(e, 'PEAK_INVALID_ARGUMENT') &&
        /no message database 'mq9'.*main, mq2.*PEAK_MQ_DATABASES/.test(e.message),
    );
    const listed = await admin.mq.topics();
    assert.equal(listed.find((t) => t.name === 'far')?.database, 'mq2');
    assert.equal(listed.find((t) => t.name === 'near')?.database, 'main');
    assert.equal(
      listed.some((t) => t.name === 'lost'),
      false,
    );
    // The queues are on PostgreSQL #2 only.
    assert.equal(await count(db2, 'peak.mq_queues WHERE topic = $1', ['far']), 2);
    assert.equal(await count(db1, 'peak.mq_queues WHERE topic = $1', ['far']), 0);
  });

  it('sends, delays, receives and acks on the topic’s database; queries and traces find them', async () => {
    const producer = new Producer({ servers: url });
    const sent = await Promise.all(
      Array.from({ length: 120 }, (_, i) =>
        producer.send('far', { body: `far-${i}`, keys: [`order-${i}`], tag: 'placed' }),
      ),
    );
    await producer.send('near', { body: 'near-0', keys: ['order-0'] });
    const dueAt = Date.now() + 1500;
    const delayed = await producer.send('far', { body: 'late', deliverAt: dueAt });
    // Waiting in PostgreSQL #2's pending table, not #1's.
    assert.equal(await count(db2, 'peak.mq_pending WHERE msg_id = $1', [delayed.id]), 1);
    assert.equal(await count(db1, 'peak.mq_pending WHERE msg_id = $1', [delayed.id]), 0);

    const got = new Map<string, number>();
    const consumer = new Consumer({
      servers: url,
      group: 'far-readers',
      topic: 'far',
      waitMs: 300,
      handler: (m) => {
        got.set(m.text(), Date.now());
      },
    }).start();
    await waitFor(
      () => `121 consumed (${got.size})`,
      () => got.size === 121,
      30_000,
    );
    await consumer.close();
    await producer.close();
    assert.ok(got.get('late')! >= dueAt, 'the delayed message came no earlier than due');

    assert.equal(await count(db2, 'peak.mq_messages WHERE topic = $1', ['far']), 121);
    assert.equal(await count(db1, 'peak.mq_messages WHERE topic = $1', ['far']), 0);
    assert.equal(await count(db1, 'peak.mq_messages WHERE topic = $1', ['near']), 1);
    // Acked: the group's offsets are on #2, and nothing of it is left to deliver.
    assert.ok((await count(db2, "peak.mq_offsets WHERE grp = 'far-readers'", [])) > 0);
    const stats = await admin.mq.stats();
    const group = stats.groups.find((g) => g.group === 'far-readers' && g.topic === 'far');
    assert.ok(group, JSON.stringify(stats.groups));
    assert.equal(group.backlog, 0);

    // By id: the message and its trace (stored and acked, the ack a batch row on #2).
    const story = await admin.mq.message(sent[7]!.id);
    assert.equal(story.found, true);
    assert.equal(story.copies[0]?.topic, 'far');
    const events = story.trace.map((e) => e.event);
    assert.ok(events.includes('acked'), JSON.stringify(story.trace));
    // By key across databases (no topic), and on the topic.
    const byKey = await admin.mq.query({ key: 'order-0' });
    assert.deepEqual(byKey.map((m) => m.topic).sort(), ['far', 'near']);
    const onTopic = await admin.mq.query({ key: 'order-3', topic: 'far' });
    assert.deepEqual(
      onTopic.map((m) => Buffer.from(m.body, 'base64').toString()),
      ['far-3'],
    );
    const byTime = await admin.mq.query({
      topic: 'far',
      tag: 'placed',
      from: Date.now() - 60_000,
      to: Date.now() + 1000,
      limit: 500,
    });
    assert.equal(byTime.length, 120);
  });

  it('a half message waits on its database and is delivered soon after its commit', async () => {
    const client = new BrokerClient({ servers: url });
    const half = await client.sendHalf(
      'far',
      { body: Buffer.from('paid').toString('base64') },
      'payments',
    );
    assert.equal(
      await count(db2, "peak.mq_pending WHERE msg_id = $1 AND kind = 'half'", [half.id]),
      1,
    );
    assert.equal(await count(db1, 'peak.mq_pending WHERE msg_id = $1', [half.id]), 0);
    const got: number[] = [];
    const consumer = new Consumer({
      servers: url,
      group: 'far-payments',
      topic: 'far',
      startFrom: 'latest',
      waitMs: 300,
      handler: (m) => {
        if (m.text() === 'paid') got.push(Date.now());
      },
    }).start();
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(got.length, 0, 'not delivered before its commit');
    const committedAt = Date.now();
    await client.endHalf(half.id, 'commit', 'producer');
    await waitFor(
      () => 'the committed half delivered',
      () => got.length === 1,
      10_000,
    );
    await consumer.close();
    client.close();
    // The relays are woken at once (about 20 ms here; left to their 5 s safety tick, 0-5 s).
    assert.ok(
      got[0]! - committedAt < 1000,
      `delivered ${got[0]! - committedAt} ms after the commit`,
    );
  });

  it("a transaction on the node's own database enqueues for the placed topic: delivered once, after its commit only", async () => {
    const send = async (body: string, commit: boolean, deliverAt?: number) => {
      const c = await db1.connect();
      try {
        await c.query('BEGIN');
        const r = await sendInTransaction(c, 'far', {
          body,
          ...(deliverAt === undefined ? {} : { deliverAt }),
        });
        await c.query(commit ? 'COMMIT' : 'ROLLBACK');
        return r.id;
      } finally {
        c.release();
      }
    };
    await send('rolled-back', false);
    const now = await send('committed', true);
    const dueAt = Date.now() + 1000;
    const later = await send('committed-later', true, dueAt);
    const got = new Map<string, number>();
    const consumer = new Consumer({
      servers: url,
      group: 'far-tx',
      topic: 'far',
      startFrom: 'earliest',
      waitMs: 300,
      handler: (m) => {
        const text = m.text();
        if (text.startsWith('committed') || text === 'rolled-back') got.set(text, Date.now());
      },
    }).start();
    await waitFor(
      () => `both committed messages consumed (${[...got.keys()].join(', ')})`,
      () => got.size >= 2,
      15_000,
    );
    await new Promise((r) => setTimeout(r, 500));
    await consumer.close();
    assert.deepEqual([...got.keys()].sort(), ['committed', 'committed-later']);
    assert.ok(got.get('committed-later')! >= dueAt, 'not before its time');
    // Copied to PostgreSQL #2 once, and gone from #1's forwarding table.
    assert.equal(
      await count(db2, 'peak.mq_messages WHERE msg_id = ANY($1::bigint[])', [[now, later]]),
      2,
    );
    assert.equal(await count(db1, 'peak.mq_forward', []), 0);
    assert.equal(await count(db1, "peak.mq_pending WHERE topic = 'far'", []), 0);
  });

  it('the forwarding relay copies a message once (an id already copied is not copied again) and keeps what it cannot deliver', async () => {
    // A copy made just before a crash: the message is on #2, its forwarding row still on #1.
    const id = (
      await new BrokerClient({ servers: url }).send('far', [
        { body: Buffer.from('once').toString('base64') },
      ])
    ).ids[0]!;
    const born = (
      await db2.query<{ born_at: Date }>(
        'SELECT born_at FROM peak.mq_messages WHERE msg_id = $1::bigint',
        [id],
      )
    ).rows[0]!.born_at;
    await db1.query(
      `INSERT INTO peak.mq_forward (msg_id, topic, body, born_at) VALUES ($1::bigint, 'far', 'once', $2)`,
      [id, born],
    );
    // A row for a topic placed on #2 that is not there (removed by hand): kept with its reason.
    await db1.query(
      `INSERT INTO peak.mq_topic_databases (topic, database) VALUES ('vanished', 'mq2')`,
    );
    await db1.query(
      `INSERT INTO peak.mq_forward (msg_id, topic, body) VALUES (peak.mq_new_id(), 'vanished', 'x')`,
    );
    await db1.query("SELECT pg_notify('peak_mq_pending', '')");
    await waitFor(
      () => 'the forwarding rows handled',
      async () =>
        (await count(db1, 'peak.mq_forward WHERE error IS NULL', [])) === 0 &&
        (await count(db1, 'peak.mq_forward WHERE error IS NOT NULL', [])) === 1,
      15_000,
    );
    assert.equal(await count(db2, 'peak.mq_messages WHERE msg_id = $1::bigint', [id]), 1);
    const kept = await db1.query<{ topic: string; error: string }>(
      'SELECT topic, error FROM peak.mq_forward',
    );
    assert.equal(kept.rows[0]?.topic, 'vanished');
    assert.match(kept.rows[0]!.error, /PEAK_MQ_UNKNOWN_TOPIC/);
    await db1.query("DELETE FROM peak.mq_forward WHERE topic = 'vanished'");
    await db1.query("DELETE FROM peak.mq_topic_databases WHERE topic = 'vanished'");
  });

  it('a failing message is retried through the retry topic on its database, then dead-lettered there', async () => {
    const producer = new Producer({ servers: url });
    const bad = await producer.send('far', { body: 'poison' });
    await producer.close();
    let tries = 0;
    const consumer = new Consumer({
      servers: url,
      group: 'far-strict',
      topic: 'far',
      waitMs: 300,
      maxRetries: 1,
      backoffMs: [200],
      handler: (m) => {
        if (m.text() === 'poison') {
          tries++;
          throw new Error('cannot take this one');
        }
      },
    }).start();
    await waitFor(
      () => `poison dead-lettered (tries ${tries})`,
      async () => (await admin.mq.deadLetters('far-strict')).some((d) => d.id === bad.id),
      30_000,
    );
    await consumer.close();
    assert.equal(tries, 2, 'tried once, retried once');
    assert.equal(await count(db2, 'peak.mq_topics WHERE name = $1', ['%RETRY%far-strict']), 1);
    assert.equal(await count(db1, 'peak.mq_topics WHERE name = $1', ['%RETRY%far-strict']), 0);
    assert.equal(await count(db2, 'peak.mq_dlq WHERE msg_id = $1', [bad.id]), 1);
    assert.equal(await count(db1, 'peak.mq_dlq WHERE msg_id = $1', [bad.id]), 0);
    const story = await admin.mq.message(bad.id);
    assert.deepEqual(
      story.deadLetters.map((d) => d.group),
      ['far-strict'],
    );
    assert.ok(
      story.trace.some((e) => e.event === 'dead-lettered'),
      JSON.stringify(story.trace),
    );
  });

  it('one group on topics of both databases: each retry goes through the retry topic beside its topic', async () => {
    const producer = new Producer({ servers: url });
    await producer.send('near', { body: 'retry-near' });
    await producer.send('far', { body: 'retry-far' });
    await producer.close();
    const seen = new Map<string, number>();
    const consumerOf = (topic: string) =>
      new Consumer({
        servers: url,
        group: 'mixed',
        topic,
        waitMs: 300,
        maxRetries: 3,
        backoffMs: [200],
        handler: (m) => {
          const text = m.text();
          if (!text.startsWith('retry-')) return;
          seen.set(text, (seen.get(text) ?? 0) + 1);
          if (seen.get(text) === 1) throw new Error('first try fails');
        },
      }).start();
    const consumers = [consumerOf('near'), consumerOf('far')];
    await waitFor(
      () => `both retried once (${JSON.stringify([...seen])})`,
      () => seen.get('retry-near') === 2 && seen.get('retry-far') === 2,
      20_000,
    );
    await Promise.all(consumers.map((c) => c.close()));
    for (const db of [db1, db2])
      assert.equal(await count(db, 'peak.mq_topics WHERE name = $1', ['%RETRY%mixed']), 1);
    // Each retry copy on its topic's database.
    assert.equal(
      await count(
        db2,
        "peak.mq_messages WHERE topic = '%RETRY%mixed' AND origin_topic = 'far'",
        [],
      ),
      1,
    );
    assert.equal(
      await count(
        db1,
        "peak.mq_messages WHERE topic = '%RETRY%mixed' AND origin_topic = 'near'",
        [],
      ),
      1,
    );
  });

  it('a node that was not given the database says so for its topics; others work', async () => {
    const other = await startNode({});
    const otherAdmin = new AdminClient({
      servers: other.url,
      token: (await readFile(path.join(nodes[0]!.dir, 'admin-token'), 'utf8')).trim(),
    });
    const producer = new Producer({ servers: other.url, transport: 'http' });
    await assert.rejects(
      producer.send('far', { body: 'x' }),
      (e) =>
        isPeakError(e, 'PEAK_DB_UNREACHABLE') &&
        /topic 'far' is on message database 'mq2'.*PEAK_MQ_DATABASES/.test(e.message),
    );
    assert.ok((await producer.send('near', { body: 'fine' })).id);
    await producer.close();
    await assert.rejects(
      otherAdmin.mq.createTopic({ name: 'elsewhere', database: 'mq2' }),
      (e) => isPeakError(e, 'PEAK_INVALID_ARGUMENT') && /main only/.test(e.message),
    );
  });

  it('peak mq: topics create --database, topics list and databases say where topics are', async () => {
    const env = { PEAK_SERVER: url, PEAK_TOKEN: token };
    const peak = async (...args: string[]) => {
      const r = await runPeak(['mq', ...args], env);
      assert.equal(r.code, 0, `peak mq ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    assert.match(
      await peak('topics', 'create', 'cli-far', '--database', 'mq2'),
      /created topic cli-far \(4 queues, on database mq2\)/,
    );
    assert.match(await peak('topics', 'list'), /cli-far\s+queues 4\s+normal\s+on mq2\s/);
    const dbs = JSON.parse(await peak('databases', '--json')) as {
      databases: { name: string; topics: number }[];
    };
    assert.deepEqual(
      dbs.databases.map((d) => d.name),
      ['main', 'mq2'],
    );
    assert.ok(dbs.databases.find((d) => d.name === 'mq2')!.topics >= 2, JSON.stringify(dbs));
    const bad = await runPeak(['mq', 'topics', 'create', 'cli-lost', '--database', 'mq9'], env);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /no message database 'mq9'/);
  });

  it('removes a placed topic from its database; its name can then be made anywhere', async () => {
    const removed = await admin.mq.removeTopic('far', { force: true });
    assert.ok(removed);
    assert.equal(await count(db2, 'peak.mq_messages WHERE topic = $1', ['far']), 0);
    assert.equal(await count(db2, 'peak.mq_topics WHERE name = $1', ['far']), 0);
    const again = await admin.mq.createTopic({ name: 'far', queues: 1 });
    assert.deepEqual([again.created, again.database], [true, 'main']);
    assert.equal(await count(db1, 'peak.mq_queues WHERE topic = $1', ['far']), 1);
  });
  it('with PostgreSQL #2 down, the topics on #1 go on: sends, receives, delays; #2’s topics fail clearly', async () => {
    // Only the node given #2 runs now: nothing else relays #1's delayed messages.
    for (const { p } of nodes.slice(1)) {
      killGroup(p.child);
      await p.exited;
    }
    await admin.mq.createTopic({ name: 'far-down', queues: 1, database: 'mq2' });
    await cluster.kill(1);
    const producer = new Producer({ servers: url });
    await assert.rejects(producer.send('far-down', { body: 'lost?' }), (e) => isPeakError(e));
    const dueAt = Date.now() + 800;
    await producer.send('near', { body: 'while-down' });
    await producer.send('near', { body: 'delayed-while-down', deliverAt: dueAt });
    const got = new Set<string>();
    const consumer = new Consumer({
      servers: url,
      group: 'near-readers',
      topic: 'near',
      waitMs: 300,
      handler: (m) => {
        got.add(m.text());
      },
    }).start();
    await waitFor(
      () => `both messages on #1 consumed (${[...got].join(', ')})`,
      () => got.has('while-down') && got.has('delayed-while-down'),
      15_000,
    );
    await consumer.close();
    await producer.close();
    // The topic list says what it cannot read, rather than leaving #2's topics out.
    await assert.rejects(admin.mq.topics(), (e) => isPeakError(e));
  });
});
