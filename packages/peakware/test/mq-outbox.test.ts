/**
 * The transactional outbox in an application database that is not the broker's (a second
 * database on the embedded PostgreSQL, reached only through its own pool): commit
 * delivers and rollback never does, two relays on one outbox keep a group's order, a
 * refused message moves to the dead table without holding up the rest, and an
 * unreachable broker loses nothing.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, afterEach, before, describe, it } from 'node:test';
import pg from 'pg';
import { rootCommand } from '../src/cli/commands/index.js';
import { runCli } from '../src/cli/run-cli.js';
import { withContext } from '../src/core/context.js';
import { isPeakError } from '../src/core/errors.js';
import { BrokerClient, type ConsumedMessage, Consumer, Outbox } from '../src/mq/index.js';
import { PeakServer } from '../src/server/peak-server.js';
import { useLocalCredential } from './support/credentials.js';
import { quietAtShutdown } from './support/pg-pool.js';
import { waitFor } from './support/wait.js';

let server: PeakServer;
let dataDir: string;
let admin: BrokerClient;
let app: pg.Pool;
const consumers: Consumer[] = [];
const outboxes: Outbox[] = [];

function outbox(extra: Partial<ConstructorParameters<typeof Outbox>[0]> = {}): Outbox {
  const o = new Outbox({ pool: app, servers: server.info.url, idleMs: 30, ...extra });
  outboxes.push(o);
  return o;
}

let groups = 0;
/** A consumer in a group of its own, from the topic's start (each test has its own topic). */
function consume(topic: string, got: ConsumedMessage[]): void {
  consumers.push(
    new Consumer({
      servers: server.info.url,
      group: `${topic}-g${++groups}`,
      topic,
      waitMs: 300,
      handler: (m) => void got.push(m),
    }).start(),
  );
}

/** Runs `fn` in a transaction on the application database and commits or rolls back. */
async function inTransaction(commit: boolean, fn: (c: pg.PoolClient) => Promise<void>) {
  const c = await app.connect();
  try {
    await c.query('BEGIN');
    await fn(c);
    await c.query(commit ? 'COMMIT' : 'ROLLBACK');
  } finally {
    c.release();
  }
}

const pendingRows = async () =>
  Number((await app.query('SELECT count(*)::int AS n FROM peak_outbox.messages')).rows[0].n);

describe('mq outbox in an application database', { timeout: 240_000 }, () => {
  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-outbox-'));
    server = await PeakServer.start({ dataDir, port: 0 });
    useLocalCredential(server);
    admin = new BrokerClient({ servers: server.info.url, token: server.info.adminToken! });
    const boot = new pg.Client({ connectionString: server.postgresUrl() });
    await boot.connect();
    await boot.query('CREATE DATABASE shop_app');
    await boot.end();
    app = quietAtShutdown(
      new pg.Pool({ connectionString: server.postgresUrl('shop_app'), max: 6 }),
    );
    await app.query('CREATE TABLE orders (id int PRIMARY KEY)');
  });

  // Every test's relays stop with it: a relay left running would take the next test's rows.
  afterEach(async () => {
    await Promise.all(outboxes.splice(0).map((o) => o.close()));
  });

  after(async () => {
    await Promise.all(consumers.map((c) => c.close()));
    await app?.end();
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('refuses a send on a database without the outbox tables, saying how to create them', async () => {
    await inTransaction(false, async (c) => {
      await assert.rejects(
        outbox().send(c, 'orders', { body: 'x' }),
        (e) => isPeakError(e, 'PEAK_USAGE') && /Outbox\.install/.test(e.message),
      );
    });
    // The CLI a deploy script runs, then the call a service makes at start: idempotent.
    const stdout = new PassThrough();
    let printed = '';
    stdout.on('data', (b) => {
      printed += b;
    });
    const io = { stdout, stderr: new PassThrough(), env: {} };
    assert.equal(await runCli(rootCommand, ['mq', 'outbox', 'install'], io), 2, 'no --db');
    const code = await runCli(
      rootCommand,
      ['mq', 'outbox', 'install', '--db', server.postgresUrl('shop_app')],
      io,
    );
    assert.equal(code, 0);
    assert.match(printed, /outbox tables ready/);
    await Outbox.install(app);
    assert.equal(await pendingRows(), 0);
  });

  it('delivers what commits with the business row, never what rolls back', async () => {
    await admin.call('POST', '/api/v1/mq/topics', { name: 'orders', queues: 4 });
    const got: ConsumedMessage[] = [];
    consume('orders', got);
    const box = outbox().start();
    await inTransaction(true, async (c) => {
      await c.query('INSERT INTO orders VALUES (1)');
      await box.send(c, 'orders', { body: '{"id":1}', tag: 'placed', keys: ['order-1'] });
    });
    await inTransaction(false, async (c) => {
      await c.query('INSERT INTO orders VALUES (2)');
      await box.send(c, 'orders', { body: '{"id":2}', tag: 'placed', keys: ['order-2'] });
    });
    await waitFor('the committed event', () => got.length >= 1);
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(
      got.map((m) => [m.text(), m.tag, m.keys]),
      [['{"id":1}', 'placed', ['order-1']]],
    );
    assert.equal(await pendingRows(), 0, 'relayed rows are deleted');
    assert.equal(box.stats().relayed, 1);
    assert.match(
      box
        .families()
        .map((f) => f.name)
        .join(' '),
      /peak_outbox_relayed_total.*peak_outbox_lag_seconds/,
    );
  });

  it('sendWith writes the row and its message in one statement: both or neither', async () => {
    await admin.call('POST', '/api/v1/mq/topics', { name: 'orders-one-rt', queues: 2 });
    const got: ConsumedMessage[] = [];
    consume('orders-one-rt', got);
    const box = outbox().start();
    const insert = 'INSERT INTO orders (id) VALUES ($1) RETURNING id';
    const { rows } = await box.sendWith<{ id: number }>(app, insert, [10], 'orders-one-rt', {
      body: '{"id":10}',
      keys: ['order-10'],
    });
    assert.deepEqual(rows, [{ id: 10 }], "the caller's statement answers as usual");
    // The caller's own WITH clause is kept.
    await box.sendWith(
      app,
      'WITH v AS (SELECT $1::int AS id) INSERT INTO orders (id) SELECT id FROM v',
      [11],
      'orders-one-rt',
      { body: '{"id":11}' },
    );
    // A statement that fails (duplicate key) leaves no message behind.
    await assert.rejects(
      box.sendWith(app, insert, [10], 'orders-one-rt', { body: '{"id":"again"}' }),
      (e: unknown) => (e as { code?: string }).code === '23505',
    );
    await waitFor('both committed messages', () => got.length >= 2);
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(got.map((m) => m.text()).sort(), ['{"id":10}', '{"id":11}']);
    const ids = (await app.query('SELECT id FROM orders WHERE id IN (10, 11) ORDER BY id')).rows;
    assert.deepEqual(
      ids.map((r) => r.id),
      [10, 11],
    );
  });

  it('sendBatchWith commits several rows and their messages in one statement: all or none', async () => {
    await admin.call('POST', '/api/v1/mq/topics', { name: 'orders-batch', queues: 2 });
    const got: ConsumedMessage[] = [];
    consume('orders-batch', got);
    const box = outbox().start();
    const insert = 'INSERT INTO orders (id) VALUES ($1), ($2), ($3) RETURNING id';
    // Each message is made in its own caller's context (one of them stress traffic).
    const messages = [
      box.prepare('orders-batch', { body: '{"id":20}', keys: ['order-20'] }),
      withContext({ stress: true }, () => box.prepare('orders-batch', { body: '{"id":21}' })),
      box.prepare('orders-batch', { body: '{"id":22}', tag: 'placed' }),
    ];
    assert.deepEqual(
      messages.map((m) => m.stress),
      [false, true, false],
    );
    const { rows } = await box.sendBatchWith<{ id: number }>(app, insert, [20, 21, 22], messages);
    assert.deepEqual(
      rows.map((r) => r.id),
      [20, 21, 22],
    );
    // A batch that fails (one duplicate key) writes none of its rows and no message.
    await assert.rejects(
      box.sendBatchWith(
        app,
        'INSERT INTO orders (id) VALUES ($1), ($2)',
        [23, 20],
        [
          box.prepare('orders-batch', { body: '{"id":23}' }),
          box.prepare('orders-batch', { body: '{"id":"20 again"}' }),
        ],
      ),
      (e: unknown) => (e as { code?: string }).code === '23505',
    );
    await assert.rejects(box.sendBatchWith(app, insert, [24, 25, 26], []), (e) =>
      isPeakError(e, 'PEAK_INVALID_ARGUMENT'),
    );
    // The stress message went to the shadow topic, not to the real one's consumers.
    await waitFor('the two real messages', () => got.length >= 2);
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(got.map((m) => [m.text(), m.tag]).sort(), [
      ['{"id":20}', null],
      ['{"id":22}', 'placed'],
    ]);
    assert.equal((await app.query('SELECT 1 FROM orders WHERE id IN (23, 24)')).rows.length, 0);
    await waitFor('the outbox emptied', async () => (await pendingRows()) === 0);
  });

  it('keeps a message group in order with two relays on one outbox', async () => {
    await admin.call('POST', '/api/v1/mq/topics', { name: 'ledger', queues: 4, ordered: true });
    const got: ConsumedMessage[] = [];
    consume('ledger', got);
    const writer = outbox();
    const relays = [outbox({ idleMs: 5 }).start(), outbox({ idleMs: 5 }).start()];
    const n = 120;
    for (let i = 0; i < n; i++) {
      await inTransaction(true, async (c) => {
        await writer.send(c, 'ledger', { body: String(i), group: `acct-${i % 3}` });
      });
    }
    // A bound for a loaded host (30 s ran out once in a full run, 31 of 120 consumed).
    await waitFor('every ledger event', () => got.length >= n, 90_000).catch(async (e) => {
      // Says which half stalled: rows left in the outbox, or delivered but not consumed.
      const relayed = relays.map((r) => JSON.stringify(r.stats())).join(' ');
      assert.fail(
        `${(e as Error).message}: consumed ${got.length}, outbox rows left ${await pendingRows()}, relays ${relayed}`,
      );
    });
    for (const g of [0, 1, 2]) {
      const seq = got.filter((m) => m.group === `acct-${g}`).map((m) => Number(m.text()));
      assert.deepEqual(
        seq,
        [...seq].sort((a, b) => a - b),
        `group acct-${g} in order`,
      );
      assert.equal(seq.length, n / 3);
    }
    assert.equal(relays[0]!.stats().relayed + relays[1]!.stats().relayed, n);
  });

  it('moves a refused message to the dead table and delivers the rest', async () => {
    const got: ConsumedMessage[] = [];
    await admin.call('POST', '/api/v1/mq/topics', { name: 'refunds', queues: 4 });
    consume('refunds', got);
    const box = outbox().start();
    await inTransaction(true, async (c) => {
      await box.send(c, 'no-such-topic', { body: 'lost?' });
      await box.send(c, 'refunds', { body: 'after the refused one' });
    });
    await waitFor('the good message', () => got.some((m) => m.text() === 'after the refused one'));
    await waitFor('the dead row', async () => box.stats().dead === 1);
    const dead = await app.query('SELECT topic, error FROM peak_outbox.dead');
    assert.equal(dead.rows[0].topic, 'no-such-topic');
    assert.match(dead.rows[0].error, /no-such-topic/);
  });

  it('keeps the rows while the broker cannot be reached and sends them later', async () => {
    const got: ConsumedMessage[] = [];
    await admin.call('POST', '/api/v1/mq/topics', { name: 'invoices', queues: 4 });
    consume('invoices', got);
    // Nothing listens on port 9 of loopback: every relay pass fails.
    const cut = outbox({ servers: 'http://127.0.0.1:9' }).start();
    await inTransaction(true, async (c) => {
      await cut.send(c, 'invoices', { body: 'survives the outage' });
    });
    await waitFor('a failed pass', () => cut.stats().failedPasses > 0);
    assert.equal(await pendingRows(), 1, 'the row is still in the outbox');
    await cut.close();
    outbox().start();
    await waitFor('the delayed message', () => got.some((m) => m.text() === 'survives the outage'));
    await waitFor('an empty outbox', async () => (await pendingRows()) === 0);
  });
});
