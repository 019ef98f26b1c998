/**
 * The message queue against a real `peak server` (embedded PostgreSQL, real HTTP): each
 * message type's guarantee, retries and the DLQ, ordering through retries, queries and
 * traces, replay, security, rebalancing and bad input.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createContext, runWithContext } from '../src/core/context.js';
import { isPeakError } from '../src/core/errors.js';
import { silentLogger } from '../src/core/logger.js';
import {
  BrokerClient,
  type ConsumedMessage,
  Consumer,
  type ConsumerOptions,
  Producer,
  sendInTransaction,
  signMessage,
} from '../src/mq/index.js';
import { PgPartitions } from '../src/mq/server/pg-store/partitions.js';
import { PeakServer } from '../src/server/peak-server.js';
import { bearer, useLocalCredential } from './support/credentials.js';
import { runPeak } from './support/peak-process.js';
import { quietAtShutdown } from './support/pg-pool.js';
import { waitFor } from './support/wait.js';

const FAST = { maxRetries: 2, backoffMs: [200, 400], invisibleMs: 3000, waitMs: 300 } as const;

let server: PeakServer;
let dataDir: string;
let admin: BrokerClient;
let db: pg.Pool;
const consumers: Consumer[] = [];
const producers: Producer[] = [];

async function topic(
  name: string,
  extra: Record<string, unknown> = {},
): Promise<Record<string, unknown>> {
  return admin.call('POST', '/api/v1/mq/topics', { name, queues: 4, ...extra });
}

function producer(extra: Partial<ConstructorParameters<typeof Producer>[0]> = {}): Producer {
  const p = new Producer({ servers: server.info.url, ...extra });
  producers.push(p);
  return p;
}

function consume(opts: Omit<ConsumerOptions, 'server'>): Consumer {
  const c = new Consumer({ servers: server.info.url, ...FAST, ...opts }).start();
  consumers.push(c);
  return c;
}

/** Reads a push stream's NDJSON lines (blank keep-alives skipped) until it ends or aborts. */
async function readNdjson(response: Response, onLine: (line: unknown) => void): Promise<void> {
  const decoder = new TextDecoder();
  let buf = '';
  try {
    for await (const chunk of response.body!) {
      buf += decoder.decode(chunk as Uint8Array, { stream: true });
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) if (l.length > 0) onLine(JSON.parse(l));
    }
  } catch {
    // the caller aborted the stream
  }
}

async function rawPost(
  route: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: { error: { code: string; message: string } } }> {
  const r = await fetch(`${server.info.url}${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...bearer(), ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return {
    status: r.status,
    json: (await r.json()) as { error: { code: string; message: string } },
  };
}

describe('mq broker in peak server', { timeout: 360_000 }, () => {
  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-mq-'));
    server = await PeakServer.start({
      dataDir,
      port: 0,
      mq: { halfCheckAfterMs: 300, halfCheckIntervalMs: 300, sessionMs: 4000 },
    });
    useLocalCredential(server);
    admin = new BrokerClient({ servers: server.info.url, token: server.info.adminToken! });
    const info = server.info.postgres;
    assert.equal(info.mode, 'embedded');
    const password = (await readFile(path.join(dataDir, 'postgres-password'), 'utf8')).trim();
    db = new pg.Pool({
      host: info.host,
      port: info.port,
      user: 'peak',
      password,
      database: 'postgres',
      max: 3,
    });
    quietAtShutdown(db);
  });

  after(async () => {
    await Promise.allSettled(consumers.map((c) => c.close()));
    await Promise.allSettled(producers.map((p) => p.close()));
    await db?.end();
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('makes the daily partitions without vacuums for inserts (insert-only, dropped whole)', async () => {
    const { rows } = await db.query<{ relname: string; reloptions: string[] | null }>(
      `SELECT c.relname, c.reloptions FROM pg_inherits i
         JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent IN ('peak.mq_messages'::regclass, 'peak.mq_trace'::regclass)
          AND c.relname ~ '_p[0-9]{8}$'`,
    );
    // yesterday to two days ahead, for both tables
    assert.ok(rows.length >= 8, `daily partitions: ${rows.map((r) => r.relname)}`);
    for (const r of rows)
      assert.ok(
        r.reloptions?.includes('autovacuum_vacuum_insert_threshold=-1'),
        `${r.relname}: ${JSON.stringify(r.reloptions)}`,
      );
  });

  it("keeps no GIN pending list on any partition's keys index (its merge stalls inserts)", async () => {
    const { rows } = await db.query<{ relname: string; reloptions: string[] | null }>(
      `SELECT c.relname, c.reloptions FROM pg_inherits i
         JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'peak.mq_messages_keys'::regclass`,
    );
    // the default partition and yesterday to two days ahead
    assert.ok(rows.length >= 5, `keys indexes: ${rows.map((r) => r.relname)}`);
    for (const r of rows)
      assert.ok(
        r.reloptions?.includes('fastupdate=off'),
        `${r.relname}: ${JSON.stringify(r.reloptions)}`,
      );
  });

  it('gathers statistics of message partitions only on the columns reads are planned on', async () => {
    const { rows } = await db.query<{ relname: string; attname: string; target: number | null }>(
      `SELECT c.relname, a.attname, a.attstattarget AS target
         FROM pg_inherits i
         JOIN pg_class c ON c.oid = i.inhrelid
         JOIN pg_attribute a ON a.attrelid = c.oid
        WHERE i.inhparent = 'peak.mq_messages'::regclass
          AND a.attname IN ('body', 'props', 'keys', 'topic', 'queue_offset', 'msg_id')`,
    );
    assert.ok(rows.length >= 5 * 6, `partition columns: ${rows.length}`);
    for (const r of rows) {
      const off = ['body', 'props', 'keys'].includes(r.attname);
      assert.equal(r.target === 0, off, `${r.relname}.${r.attname}: ${r.target}`);
    }
  });

  it('gives a partition of an earlier version the settings at the next upkeep', async () => {
    const day = new Date().toISOString().slice(0, 10).replaceAll('-', '');
    await db.query(`ALTER INDEX peak.mq_messages_p${day}_keys_idx RESET (fastupdate)`);
    await db.query(`ALTER TABLE peak.mq_messages_p${day} ALTER COLUMN body SET STATISTICS -1`);
    await new PgPartitions(db, silentLogger()).maintainPartitions(72 * 3_600_000);
    const { rows } = await db.query<{ options: string[] | null; target: number | null }>(
      `SELECT (SELECT reloptions FROM pg_class WHERE oid = $1::regclass) AS options,
              (SELECT attstattarget FROM pg_attribute WHERE attrelid = $2::regclass AND attname = 'body') AS target`,
      [`peak.mq_messages_p${day}_keys_idx`, `peak.mq_messages_p${day}`],
    );
    assert.deepEqual(rows[0], { options: ['fastupdate=off'], target: 0 });
  });

  it('delivers normal messages at least once to one consumer of a clustering group, with the trace context', async () => {
    await topic('orders');
    const p = producer();
    const ctx = createContext({ callerApp: 'shop' });
    const sent = await runWithContext(ctx, () =>
      Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          p.send('orders', { body: JSON.stringify({ i }), tag: 'created', keys: [`order-${i}`] }),
        ),
      ),
    );
    assert.equal(new Set(sent.map((s) => s.id)).size, 200, 'ids are unique');
    const got = new Map<string, ConsumedMessage>();
    let traceOk = true;
    const c1 = consume({
      group: 'points',
      topic: 'orders',
      handler: async (m) => {
        got.set(m.id, m);
        const { currentContext } = await import('../src/core/context.js');
        if (currentContext()?.traceId !== ctx.traceId) traceOk = false;
      },
    });
    await waitFor('200 messages', () => got.size === 200);
    assert.ok(traceOk, 'the handler runs in the producer trace');
    assert.equal(got.get(sent[7]!.id)?.json<{ i: number }>().i, 7);
    assert.ok(c1.consumerId.length > 0);
    // Backlog drains to zero once acks land.
    await waitFor('backlog 0', async () => {
      const stats = await admin.call<{
        groups: { group: string; topic: string; backlog: number }[];
      }>('GET', '/api/v1/mq/stats');
      return stats.groups.find((g) => g.group === 'points' && g.topic === 'orders')?.backlog === 0;
    });
  });

  it('a lingering consumer gets every message and closes without waiting out its linger', async () => {
    await topic('linger');
    const p = producer();
    const got: string[] = [];
    const c = consume({
      group: 'linger-g',
      topic: 'linger',
      lingerMs: 60_000,
      handler: (m) => void got.push(m.text()),
    });
    await p.send('linger', { body: 'first' });
    await waitFor('the first message', () => got.length === 1);
    // The consumer now lingers for a minute: close must not wait for it.
    await c.close();
    consumers.splice(consumers.indexOf(c), 1);
    for (let i = 0; i < 20; i++) await p.send('linger', { body: `m${i}` });
    consume({
      group: 'linger-g',
      topic: 'linger',
      lingerMs: 200,
      handler: (m) => void got.push(m.text()),
    });
    await waitFor('21 messages', () => got.length === 21);
    assert.deepEqual(new Set(got).size, 21);
  });

  it('producer: batches sent in the same tick share one request; a refused message fails only its own batch', async () => {
    await topic('coalesce', { queues: 8, maxBodyBytes: 64 });
    const p = producer();
    const batch = (tag: string, n: number) =>
      Array.from({ length: n }, (_, i) => ({ body: `${tag}${i}`, tag }));
    const [a, b, c] = await Promise.all([
      p.sendBatch('coalesce', batch('a', 3)),
      p.sendBatch('coalesce', batch('b', 2)),
      p.send('coalesce', { body: 'c', tag: 'c' }),
    ]);
    assert.deepEqual([a.length, b.length], [3, 2]);
    const ids = [...a, ...b, c].map((r) => r.id);
    const { rows } = await db.query<{ queue_id: number; queue_offset: string; tag: string }>(
      `SELECT queue_id, queue_offset::text, tag FROM peak.mq_messages
        WHERE msg_id = ANY($1::bigint[]) ORDER BY queue_offset`,
      [ids],
    );
    // One append: one queue (separate requests go to the queues round-robin), offsets in
    // call order, each call answered with its own ids.
    assert.equal(new Set(rows.map((r) => r.queue_id)).size, 1, 'one request, one queue');
    assert.deepEqual(
      rows.map((r) => r.tag),
      ['a', 'a', 'a', 'b', 'b', 'c'],
    );
    const tooBig = 'x'.repeat(65);
    const [ok1, bad, ok2] = await Promise.allSettled([
      p.sendBatch('coalesce', batch('d', 2)),
      p.sendBatch('coalesce', [{ body: 'fine' }, { body: tooBig }]),
      p.sendBatch('coalesce', batch('e', 2)),
    ]);
    assert.equal(ok1.status, 'fulfilled');
    assert.equal(ok2.status, 'fulfilled');
    assert.equal(bad.status, 'rejected');
    const err = (bad as PromiseRejectedResult).reason;
    assert.ok(isPeakError(err, 'PEAK_MQ_MESSAGE_TOO_LARGE'), String(err));
    assert.match((err as Error).message, /messages\[1\]\.body/, 'named within its own batch');
    const { rows: stored } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM peak.mq_messages WHERE topic = 'coalesce' AND tag IN ('d', 'e')`,
    );
    assert.equal(stored[0]!.n, 4);
    const { rows: fine } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM peak.mq_messages WHERE topic = 'coalesce' AND body = 'fine'::bytea`,
    );
    assert.equal(fine[0]!.n, 0, 'the refused batch stored nothing');
  });

  it('a batch handler gets messages received together in one call, acks them all, and retries a failed batch', async () => {
    await topic('batched');
    const p = producer();
    for (let i = 0; i < 40; i++) await p.send('batched', { body: `b${i}` });
    const batches: string[][] = [];
    let failOnce = true;
    consume({
      group: 'batched-g',
      topic: 'batched',
      concurrency: 64,
      batchSize: 16,
      batchHandler: (messages) => {
        if (failOnce) {
          failOnce = false;
          throw new Error('the first batch fails');
        }
        batches.push(messages.map((m) => m.text()));
      },
    });
    await waitFor('all 40 handled', () => new Set(batches.flat()).size === 40);
    assert.ok(
      batches.every((b) => b.length >= 1 && b.length <= 16),
      `batch sizes ${batches.map((b) => b.length)}`,
    );
    assert.ok(
      batches.some((b) => b.length > 1),
      'messages received together share a call',
    );
    const pushed: string[] = [];
    await topic('batched-push');
    consume({
      group: 'batched-push-g',
      topic: 'batched-push',
      push: true,
      batchHandler: (messages) => void pushed.push(...messages.map((m) => m.text())),
    });
    for (let i = 0; i < 10; i++) await p.send('batched-push', { body: `p${i}` });
    await waitFor('10 pushed and handled', () => pushed.length === 10);
    assert.throws(
      () => new Consumer({ servers: server.info.url, group: 'x', topic: 'batched' }),
      /give either handler or batchHandler/,
    );
    assert.throws(
      () =>
        new Consumer({
          servers: server.info.url,
          group: 'x',
          topic: 'batched',
          batchHandler: () => undefined,
          batchSize: 0,
        }),
      /batchSize must be a positive integer, got 0/,
    );
  });

  it('does not deliver delayed messages early', async () => {
    await topic('reminders');
    const p = producer();
    const sentAt = Date.now();
    const [a, b] = await Promise.all([
      p.send('reminders', { body: 'late', delayMs: 1500 }),
      p.send('reminders', { body: 'now' }),
    ]);
    const seen = new Map<string, number>();
    consume({
      group: 'remind',
      topic: 'reminders',
      handler: (m) => void seen.set(m.id, Date.now()),
    });
    await waitFor('both', () => seen.size === 2);
    assert.ok(seen.get(b!.id)! <= seen.get(a!.id)!, 'the immediate one came first');
    assert.ok(
      seen.get(a!.id)! >= sentAt + 1500,
      `delayed one came ${seen.get(a!.id)! - sentAt} ms after send`,
    );
    await assert.rejects(p.send('reminders', { body: 'x', delayMs: 41 * 86_400_000 }), (e) =>
      isPeakError(e, 'PEAK_INVALID_ARGUMENT'),
    );
  });

  it('sendInTransaction: a committed transaction delivers, a rolled-back one never does', async () => {
    await topic('ledger');
    const client = await db.connect();
    let committed: string;
    let rolledBack: string;
    try {
      await client.query('BEGIN');
      committed = (
        await sendInTransaction(client, 'ledger', { body: 'commit-me', keys: ['tx-ok'] })
      ).id;
      await client.query('COMMIT');
      await client.query('BEGIN');
      rolledBack = (
        await sendInTransaction(client, 'ledger', { body: 'roll-me-back', keys: ['tx-no'] })
      ).id;
      await client.query('ROLLBACK');
      await client.query('BEGIN');
      await assert.rejects(sendInTransaction(client, 'no-such-topic', { body: 'x' }), (e) =>
        isPeakError(e, 'PEAK_MQ_UNKNOWN_TOPIC'),
      );
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
    const got: string[] = [];
    consume({ group: 'ledger-g', topic: 'ledger', handler: (m) => void got.push(m.id) });
    await waitFor('the committed message', () => got.includes(committed));
    await new Promise((r) => setTimeout(r, 700));
    assert.deepEqual(got, [committed]);
    assert.ok(!got.includes(rolledBack));
  });

  it('half messages: commit delivers, rollback discards, an unresolved one is settled by check-back', async () => {
    await topic('payments');
    const p = producer();
    const ok = await p.sendTransactional(
      'payments',
      { body: 'paid' },
      'pay-producers',
      () => 'commit',
    );
    const no = await p.sendTransactional('payments', { body: 'failed' }, 'pay-producers', () => {
      throw new Error('local transaction failed');
    });
    assert.equal(no.state, 'rollback');
    const lost = await p.sendTransactional(
      'payments',
      { body: 'check-me', keys: ['pay-3'] },
      'pay-producers',
      () => 'unknown',
    );
    const lostNo = await p.sendTransactional(
      'payments',
      { body: 'check-me-no', keys: ['pay-4'] },
      'pay-producers',
      () => 'unknown',
    );
    const checked: string[] = [];
    p.startCheckBack(
      'pay-producers',
      (m) => {
        checked.push(m.id);
        return m.keys.includes('pay-3') ? 'commit' : 'rollback';
      },
      100,
    );
    const got: string[] = [];
    consume({ group: 'pay-g', topic: 'payments', handler: (m) => void got.push(m.text()) });
    await waitFor(
      'committed and checked-back messages',
      () => got.includes('paid') && got.includes('check-me'),
    );
    await waitFor(
      'check-back of both',
      () => checked.includes(lost.id) && checked.includes(lostNo.id),
    );
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual([...got].sort(), ['check-me', 'paid']);
    assert.equal(ok.state, 'commit');
    await assert.rejects(admin.call('POST', `/api/v1/mq/transactions/${ok.id}/commit`, {}), (e) =>
      isPeakError(e, 'PEAK_MQ_UNKNOWN_TRANSACTION'),
    );
    const d = await admin.call<{ trace: { event: string }[] }>(
      'GET',
      `/api/v1/mq/messages/${lost.id}`,
    );
    const events = d.trace.map((t) => t.event);
    assert.ok(
      events.includes('half') && events.includes('check-back') && events.includes('committed'),
      events.join(','),
    );
  });

  it('retries with the backoff ladder, then dead-letters; the DLQ can be inspected and resent', async () => {
    await topic('flaky');
    const p = producer();
    const { id } = await p.send('flaky', { body: 'poison', keys: ['poison-1'] });
    const attempts: { at: number; reconsume: number }[] = [];
    let healed = false;
    let healedGot = false;
    consume({
      group: 'flaky-g',
      topic: 'flaky',
      handler: (m) => {
        if (healed) {
          healedGot = true;
          return;
        }
        attempts.push({ at: Date.now(), reconsume: m.reconsumeTimes });
        throw new Error('cannot handle this');
      },
    });
    await waitFor('the message in the DLQ', async () => {
      const { messages } = await admin.call<{ messages: { id: string }[] }>(
        'GET',
        '/api/v1/mq/groups/flaky-g/dlq',
      );
      return messages.some((m) => m.id === id);
    });
    assert.equal(attempts.length, 3, 'first try + maxRetries (2)');
    assert.deepEqual(
      attempts.map((a) => a.reconsume),
      [0, 1, 2],
    );
    assert.ok(attempts[1]!.at - attempts[0]!.at >= 200, 'first backoff respected');
    assert.ok(attempts[2]!.at - attempts[1]!.at >= 400, 'second backoff respected');
    const { messages } = await admin.call<{
      messages: { id: string; reason: string; body: string }[];
    }>('GET', '/api/v1/mq/groups/flaky-g/dlq');
    assert.match(messages[0]!.reason, /cannot handle this/);
    const trace = await admin.call<{ trace: { event: string }[] }>(
      'GET',
      `/api/v1/mq/messages/${id}`,
    );
    const events = trace.trace.map((t) => t.event);
    for (const e of ['produced', 'stored', 'delivered', 'failed', 'requeued', 'dead-lettered'])
      assert.ok(events.includes(e), `${e} in ${events}`);
    healed = true;
    const resent = await admin.call<{ resent: string[] }>(
      'POST',
      '/api/v1/mq/groups/flaky-g/dlq/resend',
      { ids: [id] },
    );
    assert.deepEqual(resent.resent, [id]);
    await waitFor('the resent message consumed', () => healedGot);
  });

  it('ordered topics keep FIFO per group through retries; a poison message blocks only its group and ends in the DLQ', async () => {
    await topic('seq', { ordered: true, queues: 1 });
    const p = producer();
    for (const g of ['A', 'B']) {
      // Six per group: offsets cross 9 → 10, so order must be numeric, not textual.
      for (let i = 0; i < 6; i++) await p.send('seq', { body: `${g}${i}`, group: g });
    }
    const seen: string[] = [];
    let a1Failures = 0;
    consume({
      group: 'seq-g',
      topic: 'seq',
      concurrency: 8,
      // A1 takes >= 6 s to exhaust its retries, far longer than B needs (even on a loaded
      // machine, where each of B's deliveries may take a long-poll round trip): B must not wait.
      backoffMs: [3000, 3000],
      handler: async (m) => {
        const body = m.text();
        if (body === 'A1') {
          a1Failures++;
          seen.push(`${body}!`);
          throw new Error('A1 is poison');
        }
        await new Promise((r) => setTimeout(r, 5));
        seen.push(body);
      },
    });
    await waitFor('all of B and A0, A2..A4', () =>
      ['A0', 'A2', 'A3', 'A4', 'A5', 'B5'].every((x) => seen.includes(x)),
    );
    const a = seen.filter((x) => x.startsWith('A'));
    const b = seen.filter((x) => x.startsWith('B'));
    assert.deepEqual(b, ['B0', 'B1', 'B2', 'B3', 'B4', 'B5'], 'B in order');
    assert.deepEqual(
      a,
      ['A0', 'A1!', 'A1!', 'A1!', 'A2', 'A3', 'A4', 'A5'],
      'A in order; A1 retried then skipped to the DLQ',
    );
    assert.equal(a1Failures, 3);
    // B finished while A1 was still failing: only A was blocked.
    assert.ok(seen.indexOf('B5') < seen.indexOf('A2'), `B was not held up by A: ${seen.join(' ')}`);
    const { messages } = await admin.call<{ messages: { body: string }[] }>(
      'GET',
      '/api/v1/mq/groups/seq-g/dlq',
    );
    assert.deepEqual(
      messages.map((m) => Buffer.from(m.body, 'base64').toString()),
      ['A1'],
    );
    await assert.rejects(p.send('seq', { body: 'no group' }), (e) =>
      isPeakError(e, 'PEAK_INVALID_ARGUMENT'),
    );
  });

  it('queries by id, key and tag + time range', async () => {
    await topic('catalog');
    const p = producer();
    const t0 = Date.now() - 1000;
    const a = await p.send('catalog', { body: 'a', tag: 'price', keys: ['sku-1', 'shop-9'] });
    await p.send('catalog', { body: 'b', tag: 'stock', keys: ['sku-2'] });
    const byId = await admin.call<{ message: { id: string; keys: string[] }; state: string }>(
      'GET',
      `/api/v1/mq/messages/${a.id}`,
    );
    assert.equal(byId.message.id, a.id);
    assert.deepEqual(byId.message.keys, ['sku-1', 'shop-9']);
    const byKey = await admin.call<{ messages: { id: string }[] }>(
      'GET',
      '/api/v1/mq/messages?key=shop-9',
    );
    assert.deepEqual(
      byKey.messages.map((m) => m.id),
      [a.id],
    );
    const byTag = await admin.call<{ messages: { tag: string }[] }>(
      'GET',
      `/api/v1/mq/messages?topic=catalog&tag=stock&from=${t0}&to=${Date.now() + 1000}`,
    );
    assert.deepEqual(
      byTag.messages.map((m) => m.tag),
      ['stock'],
    );
    await assert.rejects(admin.call('GET', '/api/v1/mq/messages/123'), (e) =>
      isPeakError(e, 'PEAK_NOT_FOUND'),
    );
  });

  it('pages a query by key and by time with a cursor, with no cap (one group commit shares a stored_at)', async () => {
    await topic('paged');
    const p = producer();
    const t0 = Date.now() - 1000;
    const sent = await p.sendBatch(
      'paged',
      Array.from({ length: 7 }, (_, i) => ({ body: `m${i}`, tag: 'hot', keys: ['buyer-7'] })),
    );
    const read = async (query: string) => {
      const ids: string[] = [];
      let cursor: string | undefined;
      for (let pages = 0; pages < 10; pages++) {
        const page = await admin.call<{ messages: { id: string }[]; next?: string }>(
          'GET',
          `/api/v1/mq/messages?${query}&limit=3${cursor === undefined ? '' : `&cursor=${encodeURIComponent(cursor)}`}`,
        );
        ids.push(...page.messages.map((m) => m.id));
        if (page.next === undefined) return { ids, pages: pages + 1 };
        cursor = page.next;
      }
      throw new Error('more pages than messages');
    };
    const byTime = await read(`topic=paged&tag=hot&from=${t0}`);
    assert.equal(byTime.pages, 3);
    assert.deepEqual([...byTime.ids].sort(), sent.map((r) => r.id).sort());
    const byKey = await read('key=buyer-7');
    assert.equal(byKey.pages, 3);
    assert.deepEqual([...byKey.ids].sort(), sent.map((r) => r.id).sort());
    await assert.rejects(admin.call('GET', '/api/v1/mq/messages?key=buyer-7&cursor=bogus'), (e) =>
      isPeakError(e, 'PEAK_INVALID_ARGUMENT'),
    );
  });

  it('filters by tag and replays a group from a timestamp', async () => {
    await topic('events');
    const p = producer();
    await p.send('events', { body: 'old', tag: 'x' });
    await new Promise((r) => setTimeout(r, 50));
    const mark = Date.now();
    await new Promise((r) => setTimeout(r, 50));
    await p.send('events', { body: 'new', tag: 'x' });
    await p.send('events', { body: 'other', tag: 'y' });
    const seen: string[] = [];
    const c = consume({
      group: 'ev-g',
      topic: 'events',
      tags: ['x'],
      handler: (m) => void seen.push(m.text()),
    });
    await waitFor('two x messages', () => seen.length === 2);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual([...seen].sort(), ['new', 'old']);
    await c.close();
    const reset = await admin.call<{ queues: unknown[] }>(
      'POST',
      '/api/v1/mq/groups/ev-g/reset-offset',
      { topic: 'events', timestamp: mark },
    );
    assert.equal(reset.queues.length, 4);
    seen.length = 0;
    consume({
      group: 'ev-g',
      topic: 'events',
      tags: ['x'],
      handler: (m) => void seen.push(m.text()),
    });
    await waitFor('replayed message', () => seen.length === 1);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(seen, ['new'], 'replay starts at the timestamp');
    await assert.rejects(
      admin.call('POST', '/api/v1/mq/groups/ev-g/reset-offset', {
        topic: 'events',
        timestamp: Date.now() - 4 * 86_400_000,
      }),
      (e) => isPeakError(e, 'PEAK_INVALID_ARGUMENT'),
    );
  });

  it('balances queues over live consumers and rebalances when one leaves; broadcasting gives everyone everything', async () => {
    await topic('work', { queues: 4 });
    const p = producer();
    const by = { c1: 0, c2: 0 };
    const c1 = consume({
      group: 'w-g',
      topic: 'work',
      consumerId: 'c1',
      handler: () => void by.c1++,
    });
    consume({ group: 'w-g', topic: 'work', consumerId: 'c2', handler: () => void by.c2++ });
    const b1: string[] = [];
    const b2: string[] = [];
    consume({
      group: 'w-b',
      topic: 'work',
      consumerId: 'b1',
      broadcasting: true,
      handler: (m) => void b1.push(m.id),
    });
    consume({
      group: 'w-b',
      topic: 'work',
      consumerId: 'b2',
      broadcasting: true,
      handler: (m) => void b2.push(m.id),
    });
    // All four consumers registered (their first receive), then past the second for which
    // the broker keeps each consumer's view of its group (consume.ts): a poll the sends wake
    // then shares the queues between c1 and c2. A fixed 800 ms was not always enough on a
    // loaded CI machine (c1 took all 80 once).
    await waitFor('c1, c2, b1 and b2 registered', async () => {
      const { rows } = await db.query<{ n: number }>(
        "SELECT count(DISTINCT consumer_id)::int AS n FROM peak.mq_consumers WHERE topic = 'work' AND consumer_id IN ('c1', 'c2', 'b1', 'b2')",
      );
      return rows[0]!.n === 4;
    });
    await new Promise((r) => setTimeout(r, 1100));
    for (let round = 0; round < 8; round++)
      await p.sendBatch(
        'work',
        Array.from({ length: 10 }, () => ({ body: 'w' })),
      );
    await waitFor('80 in the clustering group', () => by.c1 + by.c2 === 80);
    assert.ok(by.c1 > 0 && by.c2 > 0, `both consumers got work: ${JSON.stringify(by)}`);
    await waitFor('broadcast to both', () => b1.length === 80 && b2.length === 80);
    await c1.close();
    by.c1 = 0;
    by.c2 = 0;
    for (let round = 0; round < 8; round++)
      await p.sendBatch(
        'work',
        Array.from({ length: 10 }, () => ({ body: 'w' })),
      );
    await waitFor('80 more, all to c2', () => by.c2 === 80);
    assert.equal(by.c1, 0);
  });

  it('secured topics: signatures and consume secrets are enforced; tampering is refused and reported', async () => {
    const t = (await topic('vault', { secured: true })) as {
      produceSecret: string;
      consumeSecret: string;
    };
    assert.match(t.produceSecret, /^mqp_/);
    const good = producer({ secrets: { vault: t.produceSecret } });
    await good.send('vault', { body: 'signed', keys: ['v1'] });
    await assert.rejects(producer().send('vault', { body: 'unsigned' }), (e) =>
      isPeakError(e, 'PEAK_MQ_BAD_SIGNATURE'),
    );
    await assert.rejects(
      producer({ secrets: { vault: 'mqp_wrong' } }).send('vault', { body: 'x' }),
      (e) => isPeakError(e, 'PEAK_MQ_BAD_SIGNATURE'),
    );
    // Tamper with a correctly signed message on the wire.
    const body = Buffer.from('pay 10').toString('base64');
    const nonce = 'vault-nonce-1';
    const signedAt = Date.now();
    const signature = signMessage(t.produceSecret, {
      topic: 'vault',
      body,
      keys: [],
      properties: {},
      nonce,
      signedAt,
    });
    const tampered = await rawPost('/api/v1/mq/topics/vault/messages', {
      messages: [{ body: Buffer.from('pay 1000').toString('base64'), signature, nonce, signedAt }],
    });
    assert.equal(tampered.status, 400);
    assert.equal(tampered.json.error.code, 'PEAK_MQ_BAD_SIGNATURE');
    const honest = await rawPost('/api/v1/mq/topics/vault/messages', {
      messages: [{ body, signature, nonce, signedAt }],
    });
    assert.equal(honest.status, 200);
    const stats = await admin.call<{ node: { badSignatures: number } }>('GET', '/api/v1/mq/stats');
    assert.ok(stats.node.badSignatures >= 3);
    const half = await good.sendTransactional('vault', { body: 'tx' }, 'vault-tx', () => 'unknown');
    const stranger = await rawPost(`/api/v1/mq/transactions/${half.id}/commit`, {});
    assert.equal(
      stranger.status,
      403,
      'committing a secured half message needs the produce secret',
    );
    const owner = await rawPost(`/api/v1/mq/transactions/${half.id}/rollback`, {
      secret: t.produceSecret,
    });
    assert.equal(owner.status, 200);
    // Check-backs of a secured topic's half messages go only to a holder of its secret.
    const half2 = await good.sendTransactional(
      'vault',
      { body: 'tx2' },
      'vault-tx',
      () => 'unknown',
    );
    await new Promise((r) => setTimeout(r, 400));
    const peek = await rawPost('/api/v1/mq/producer-groups/vault-tx/checks', {});
    assert.equal(peek.status, 200);
    assert.deepEqual((peek.json as unknown as { checks: unknown[] }).checks, []);
    const checkedIds: string[] = [];
    good.startCheckBack(
      'vault-tx',
      (m) => {
        checkedIds.push(m.id);
        return 'rollback';
      },
      100,
    );
    await waitFor('the owner gets the check-back', () => checkedIds.includes(half2.id));
    const denied = await rawPost('/api/v1/mq/groups/v-g/receive', {
      topic: 'vault',
      consumerId: 'x',
      waitMs: 0,
    });
    assert.equal(denied.status, 403);
    assert.equal(denied.json.error.code, 'PEAK_MQ_FORBIDDEN');
    const seen: string[] = [];
    consume({
      group: 'v-g',
      topic: 'vault',
      secret: t.consumeSecret,
      handler: (m) => void seen.push(m.text()),
    });
    await waitFor('both signed messages', () => seen.length === 2);
    assert.deepEqual([...seen].sort(), ['pay 10', 'signed']);
  });

  it('secured topics: a captured half message is refused when sent again, as a half message or as a send', async () => {
    const t = (await topic('vault-half', { secured: true })) as { produceSecret: string };
    const body = Buffer.from('refund 50').toString('base64');
    const nonce = 'vault-half-nonce-1';
    const signedAt = Date.now();
    const signature = signMessage(t.produceSecret, {
      topic: 'vault-half',
      body,
      keys: [],
      properties: {},
      nonce,
      signedAt,
    });
    const captured = { body, signature, nonce, signedAt };
    const half = (message: unknown) =>
      rawPost('/api/v1/mq/topics/vault-half/half', { message, producerGroup: 'vault-half-tx' });
    const first = await half(captured);
    assert.equal(first.status, 200, JSON.stringify(first.json));
    const again = await half(captured);
    assert.equal(again.status, 409);
    assert.equal(again.json.error.code, 'PEAK_MQ_REPLAYED');
    const asSend = await rawPost('/api/v1/mq/topics/vault-half/messages', {
      messages: [captured],
    });
    assert.equal(asSend.status, 409, 'its nonce was taken by the half message');
    assert.equal(asSend.json.error.code, 'PEAK_MQ_REPLAYED');
    const rolledBack = await rawPost(
      `/api/v1/mq/transactions/${(first.json as unknown as { id: string }).id}/rollback`,
      { secret: t.produceSecret },
    );
    assert.equal(rolledBack.status, 200);
  });

  it('traces every delivery: in flight, timed out and redelivered, then acked', async () => {
    await topic('traced');
    const [sent] = await producer().sendBatch('traced', [{ body: 'once' }]);
    const id = sent!.id;
    const receive = async () => {
      const r = await rawPost('/api/v1/mq/groups/traced-g/receive', {
        topic: 'traced',
        consumerId: 'tr-1',
        waitMs: 3000,
        invisibleMs: 300,
      });
      assert.equal(r.status, 200);
      return (r.json as unknown as { messages: { id: string; receipt: string }[] }).messages;
    };
    const events = async () =>
      (
        await admin.call<{ trace: { event: string; consumer?: string; detail?: string }[] }>(
          'GET',
          `/api/v1/mq/messages/${id}`,
        )
      ).trace.filter((t) => t.event !== 'produced' && t.event !== 'stored');
    const first = await receive();
    assert.deepEqual(
      first.map((m) => m.id),
      [id],
    );
    // In flight: the first delivery has no trace row yet; the trace reads it from the
    // delivery state.
    assert.deepEqual(
      (await events()).map((e) => [e.event, e.consumer, e.detail]),
      [['delivered', 'tr-1', 'in flight']],
    );
    await new Promise((r) => setTimeout(r, 400));
    const second = await receive();
    assert.equal(second.length, 1, 'redelivered after the invisibility timeout');
    const ack = await rawPost('/api/v1/mq/groups/traced-g/ack', {
      topic: 'traced',
      consumerId: 'tr-1',
      receipts: [second[0]!.receipt],
    });
    assert.equal(ack.status, 200);
    const done = await events();
    assert.deepEqual(
      done.map((e) => [e.event, e.detail ?? '']),
      [
        ['delivered', 'attempt 1, not acked in time'],
        ['delivered', 'attempt 2'],
        ['acked', ''],
      ],
    );
    // A first delivery that is acked shows as delivered + acked from one row.
    const [other] = await producer().sendBatch('traced', [{ body: 'twice' }]);
    const got = await receive();
    assert.equal(got[0]!.id, other!.id);
    await rawPost('/api/v1/mq/groups/traced-g/ack', {
      topic: 'traced',
      consumerId: 'tr-1',
      receipts: [got[0]!.receipt],
    });
    const trace = await admin.call<{ trace: { event: string; consumer?: string }[] }>(
      'GET',
      `/api/v1/mq/messages/${other!.id}`,
    );
    assert.deepEqual(
      trace.trace.map((t) => [t.event, t.consumer ?? '']),
      [
        ['produced', ''],
        ['stored', ''],
        ['delivered', 'tr-1'],
        ['acked', 'tr-1'],
      ],
    );
  });

  it('storage v2: a receive is one claim row; a partly acked claim redelivers only what is unacked', async () => {
    await topic('claimed', { queues: 1 });
    const sent = await producer().sendBatch(
      'claimed',
      Array.from({ length: 6 }, (_, i) => ({ body: `c${i}` })),
    );
    type Got = { id: string; receipt: string; reconsumeTimes: number };
    const call = async (route: string, body: Record<string, unknown>) => {
      const r = await rawPost(`/api/v1/mq/groups/claimed-g/${route}`, {
        topic: 'claimed',
        consumerId: 'cl-1',
        ...body,
      });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      return r.json as unknown as { messages: Got[]; acked: number };
    };
    const rows = async (table: string) =>
      Number(
        (await db.query(`SELECT count(*) FROM peak.${table} WHERE grp = 'claimed-g'`)).rows[0]
          .count,
      );
    const first = (await call('receive', { waitMs: 3000, invisibleMs: 400, max: 10 })).messages;
    assert.deepEqual(
      first.map((m) => m.id),
      sent.map((m) => m.id),
    );
    assert.equal(await rows('mq_claims'), 1, 'one claim row for the whole receive');
    assert.equal(await rows('mq_deliveries'), 0, 'no delivery row per message');
    // Acks of three, one of them twice: counted once.
    const acked = await call('ack', {
      receipts: [first[0]!.receipt, first[2]!.receipt, first[4]!.receipt, first[4]!.receipt],
    });
    assert.equal(acked.acked, 3);
    // A nack takes its message out of the claim (retried via the retry topic).
    await call('nack', { receipts: [first[5]!.receipt], delayMs: 60_000 });
    await new Promise((r) => setTimeout(r, 500));
    const again = (await call('receive', { waitMs: 3000, invisibleMs: 400, max: 10 })).messages;
    assert.deepEqual(
      again.map((m) => [m.id, m.reconsumeTimes]),
      [
        [sent[1]!.id, 1],
        [sent[3]!.id, 1],
      ],
      'only the unacked, un-nacked ones come back',
    );
    assert.equal(await rows('mq_claims'), 0, 'the timed-out claim row was expanded');
    assert.equal((await call('ack', { receipts: again.map((m) => m.receipt) })).acked, 2);
    assert.equal(await rows('mq_deliveries'), 0);
    const traceOf = async (id: string) =>
      (
        await admin.call<{ trace: { event: string; consumer?: string }[] }>(
          'GET',
          `/api/v1/mq/messages/${id}`,
        )
      ).trace.map((t) => [t.event, t.consumer ?? '']);
    // An ack of the claim row's batch shows in each message's trace.
    assert.deepEqual(await traceOf(sent[2]!.id), [
      ['produced', ''],
      ['stored', ''],
      ['delivered', 'cl-1'],
      ['acked', 'cl-1'],
    ]);
    assert.deepEqual(await traceOf(sent[5]!.id), [
      ['produced', ''],
      ['stored', ''],
      ['delivered', 'cl-1'],
      ['failed', 'cl-1'],
    ]);
  });

  it('a receive carries acks: they end their deliveries before it claims; a malformed one refuses the receive', async () => {
    await topic('riding', { queues: 1 });
    const sent = await producer().sendBatch(
      'riding',
      Array.from({ length: 4 }, (_, i) => ({ body: `r${i}` })),
    );
    type Got = { id: string; receipt: string; reconsumeTimes: number };
    const receive = async (body: Record<string, unknown>) => {
      const r = await rawPost('/api/v1/mq/groups/riding-g/receive', {
        topic: 'riding',
        consumerId: 'rd-1',
        invisibleMs: 400,
        max: 10,
        ...body,
      });
      return {
        status: r.status,
        error: r.json.error,
        messages: (r.json as unknown as { messages: Got[] }).messages,
      };
    };
    const first = (await receive({ waitMs: 3000 })).messages;
    assert.deepEqual(
      first.map((m) => m.id),
      sent.map((m) => m.id),
    );
    // Three acks ride on the next receive (nothing new to hand out).
    const second = await receive({ waitMs: 0, acks: first.slice(0, 3).map((m) => m.receipt) });
    assert.equal(second.status, 200);
    assert.deepEqual(second.messages, []);
    await new Promise((r) => setTimeout(r, 600));
    // Only the one not acked comes back once the claim timed out.
    const third = await receive({ waitMs: 3000 });
    assert.deepEqual(
      third.messages.map((m) => [m.id, m.reconsumeTimes]),
      [[sent[3]!.id, 1]],
    );
    const bad = await receive({ waitMs: 0, acks: ['not-a-receipt'] });
    assert.equal(bad.status, 400);
    assert.equal(bad.error.code, 'PEAK_INVALID_ARGUMENT');
    assert.match(bad.error.message, /receipt/);
  });

  it('an idle long poll wakes when an in-flight delivery times out, with no fixed re-check', async () => {
    await topic('woken', { queues: 1 });
    const [sent] = await producer().sendBatch('woken', [{ body: 'once' }]);
    const receive = async (waitMs: number) => {
      const r = await rawPost('/api/v1/mq/groups/woken-g/receive', {
        topic: 'woken',
        consumerId: 'wk-1',
        waitMs,
        invisibleMs: 300,
      });
      assert.equal(r.status, 200);
      return (r.json as unknown as { messages: { id: string }[] }).messages.map((m) => m.id);
    };
    assert.deepEqual(await receive(3000), [sent!.id]);
    // Nothing is visible now and nothing will be appended: the poll (shorter than its
    // heartbeat interval, a third of the 20 s session) gets the redelivery only if the
    // end of the delivery's invisibility wakes it.
    assert.deepEqual(await receive(3000), [sent!.id]);
  });

  it('a long poll ends when its client goes away, claiming nothing for it, and answers within the caller’s deadline', async () => {
    await topic('gone', { queues: 1 });
    const client = new BrokerClient({ servers: server.info.url });
    const subscription = {
      topic: 'gone',
      consumerId: 'gone-1',
      tags: '*',
      startFrom: 'earliest',
      broadcasting: false,
      invisibleMs: 60_000,
    } as const;
    // A consumer's long poll is cut off (its process killed, its request aborted)...
    const abort = new AbortController();
    const poll = client.receive(
      'gone-g',
      subscription,
      { max: 10, waitMs: 20_000 },
      {
        signal: abort.signal,
      },
    );
    await new Promise((r) => setTimeout(r, 500));
    abort.abort();
    await assert.rejects(poll);
    await new Promise((r) => setTimeout(r, 200));
    // ...so the broker must not claim what arrives next for it: the consumer, back, gets it
    // now, not after the 60 s invisibility of a delivery nobody received.
    const [sent] = await producer().sendBatch('gone', [{ body: 'after the abort' }]);
    const again = await client.receive('gone-g', subscription, { max: 10, waitMs: 5000 });
    assert.deepEqual(
      again.messages.map((m) => m.id),
      [sent!.id],
    );
    await client.ack(
      'gone-g',
      'gone',
      'gone-1',
      again.messages.map((m) => m.receipt),
    );

    // A caller's deadline bounds the poll: an empty one answers by then, not after waitMs
    // (the bound below is a generous liveness check, not a speed claim).
    const bounded = runWithContext(createContext({ timeoutMs: 300 }), () =>
      client.receive('gone-g', subscription, { max: 10, waitMs: 120_000 }),
    );
    const settled = await Promise.race([
      bounded.then((r) => r.messages.length),
      new Promise((r) => setTimeout(() => r('still waiting'), 30_000)),
    ]);
    assert.equal(settled, 0);
    // A deadline that already passed: refused without a request.
    await assert.rejects(
      runWithContext(createContext({ deadline: Date.now() - 1 }), () =>
        client.receive('gone-g', subscription, { max: 10, waitMs: 1000 }),
      ),
      (err: unknown) => isPeakError(err, 'PEAK_DEADLINE_EXCEEDED'),
    );
  });

  it('streamed push: deliveries arrive on one response, at most the in-flight limit unacked', async () => {
    await topic('pushed');
    const p = producer();
    await p.sendBatch(
      'pushed',
      Array.from({ length: 10 }, (_, i) => ({ body: `p${i}` })),
    );
    // A raw stream that never acks gets exactly `inflight` deliveries; one ack frees one.
    const ac = new AbortController();
    const response = await fetch(`${server.info.url}/api/v1/mq/groups/push-raw/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer() },
      body: JSON.stringify({ topic: 'pushed', consumerId: 'raw-1', inflight: 3 }),
      signal: ac.signal,
    });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /ndjson/);
    const got: { receipt: string }[] = [];
    const reading = readNdjson(response, (line) => got.push(line as { receipt: string }));
    await waitFor('three deliveries', () => got.length === 3);
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal(got.length, 3, 'no more than the in-flight limit while nothing is acked');
    const ack = await rawPost('/api/v1/mq/groups/push-raw/ack', {
      topic: 'pushed',
      consumerId: 'raw-1',
      receipts: [got[0]!.receipt],
    });
    assert.equal(ack.status, 200);
    await waitFor('one more after an ack', () => got.length === 4);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(got.length, 4);
    ac.abort();
    await reading;
    // Bad requests are answered before the stream starts.
    const bad = await rawPost('/api/v1/mq/groups/push-raw/stream', {
      topic: 'nope',
      consumerId: 'x',
    });
    assert.equal(bad.status, 404);
    assert.equal(bad.json.error.code, 'PEAK_MQ_UNKNOWN_TOPIC');
    // The SDK's push consumer, over HTTP (this stream) and over the binary path (long polls
    // with prefetch): everything, never more than `concurrency` in its handler.
    const pushers = (['http', 'binary'] as const).map((transport) => {
      const c = { transport, running: 0, most: 0, seen: new Set<string>() };
      consume({
        group: `push-sdk-${transport}`,
        topic: 'pushed',
        push: true,
        transport,
        concurrency: 4,
        handler: async (m) => {
          c.running++;
          c.most = Math.max(c.most, c.running);
          await new Promise((r) => setTimeout(r, 5));
          c.seen.add(m.text());
          c.running--;
        },
      });
      return c;
    });
    await p.sendBatch(
      'pushed',
      Array.from({ length: 90 }, (_, i) => ({ body: `q${i}` })),
    );
    for (const c of pushers) {
      // A bound for a loaded host (30 s ran out once in a full run).
      await waitFor(`all 100 pushed messages (${c.transport})`, () => c.seen.size === 100, 90_000);
      assert.ok(c.most <= 4, `${c.transport}: at most 4 in the handler at once, saw ${c.most}`);
      assert.ok(c.most > 1, `${c.transport}: messages in the handler together, saw ${c.most}`);
    }
  });

  it('a push stream does not lose room to deliveries that timed out unacked', async () => {
    await topic('pushed-late');
    await producer().sendBatch('pushed-late', [{ body: 'late-1' }, { body: 'late-2' }]);
    // In-flight limit 1, never acked, 500 ms invisibility: each delivery times out, and the
    // stream must go on (redelivering or moving on), not wait forever for an ack.
    const ac = new AbortController();
    const response = await fetch(`${server.info.url}/api/v1/mq/groups/push-late/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer() },
      body: JSON.stringify({
        topic: 'pushed-late',
        consumerId: 'late-1',
        inflight: 1,
        invisibleMs: 500,
      }),
      signal: ac.signal,
    });
    assert.equal(response.status, 200);
    let lines = 0;
    const reading = readNdjson(response, () => {
      lines++;
    });
    await waitFor('a first delivery', () => lines >= 1);
    await waitFor('a delivery after the first timed out', () => lines >= 2);
    ac.abort();
    await reading;
  });

  it('ack and nack check the consume secret of the topic each receipt came from', async () => {
    const a = (await topic('vault-a', { secured: true })) as {
      produceSecret: string;
      consumeSecret: string;
    };
    const b = (await topic('vault-b', { secured: true })) as {
      produceSecret: string;
      consumeSecret: string;
    };
    await producer({ secrets: { 'vault-b': b.produceSecret } }).send('vault-b', { body: 'b1' });
    const got = await rawPost(
      '/api/v1/mq/groups/vault-ab/receive',
      { topic: 'vault-b', consumerId: 'ab-1', waitMs: 3000, max: 10 },
      { 'x-peak-mq-secret': b.consumeSecret },
    );
    assert.equal(got.status, 200);
    const receipts = (got.json as unknown as { messages: { receipt: string }[] }).messages.map(
      (m) => m.receipt,
    );
    assert.equal(receipts.length, 1);
    // A receipt of topic B under topic A's name and secret: refused, nothing acked.
    for (const verb of ['ack', 'nack']) {
      const wrong = await rawPost(
        `/api/v1/mq/groups/vault-ab/${verb}`,
        { topic: 'vault-a', consumerId: 'ab-1', receipts },
        { 'x-peak-mq-secret': a.consumeSecret },
      );
      assert.equal(wrong.status, 403, `${verb} with the other topic's secret`);
      assert.equal(wrong.json.error.code, 'PEAK_MQ_FORBIDDEN');
      assert.match(wrong.json.error.message, /vault-b/);
    }
    const right = await rawPost(
      '/api/v1/mq/groups/vault-ab/ack',
      { topic: 'vault-b', consumerId: 'ab-1', receipts },
      { 'x-peak-mq-secret': b.consumeSecret },
    );
    assert.equal(right.status, 200);
    assert.equal((right.json as unknown as { acked: number }).acked, 1);
  });

  it('encrypts bodies end to end with key ids and rotation', async () => {
    await topic('secrets');
    const k1 = Buffer.alloc(32, 1);
    const k2 = Buffer.alloc(32, 2);
    const old = producer({ encryption: { keys: { k1 }, current: 'k1' } });
    const rotated = producer({ encryption: { keys: { k1, k2 }, current: 'k2' } });
    const a = await old.send('secrets', { body: 'alpha' });
    await rotated.send('secrets', { body: 'beta' });
    const stored = await admin.call<{
      message: { body: string; properties: Record<string, string> };
    }>('GET', `/api/v1/mq/messages/${a.id}`);
    assert.ok(
      !Buffer.from(stored.message.body, 'base64').toString().includes('alpha'),
      'the broker stores ciphertext',
    );
    assert.equal(stored.message.properties['peak-enc'], 'k1');
    const seen: string[] = [];
    consume({
      group: 's-g',
      topic: 'secrets',
      encryption: { keys: { k1, k2 }, current: 'k2' },
      handler: (m) => void seen.push(m.text()),
    });
    await waitFor('both decrypted', () => seen.length === 2);
    assert.deepEqual([...seen].sort(), ['alpha', 'beta']);
  });

  it('routes stress traffic to the shadow topic, never to real consumers', async () => {
    await topic('cart');
    const p = producer();
    await runWithContext(createContext({ stress: true }), () => p.send('cart', { body: 'stress' }));
    await p.send('cart', { body: 'real' });
    const real: string[] = [];
    const shadow: string[] = [];
    consume({ group: 'cart-g', topic: 'cart', handler: (m) => void real.push(m.text()) });
    consume({
      group: 'cart-g',
      topic: 'cart',
      shadow: true,
      handler: (m) => void shadow.push(m.text()),
    });
    await waitFor('both sides', () => real.length === 1 && shadow.length === 1);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(real, ['real']);
    assert.deepEqual(shadow, ['stress']);
  });

  it('peak mq CLI: topics, send, query, consume, trace, dlq, reset-offset, stats', async () => {
    const env = { PEAK_SERVER: server.info.url, PEAK_TOKEN: server.info.adminToken! };
    const peak = async (...args: string[]) => {
      const r = await runPeak(['mq', ...args, '--json'], env);
      assert.equal(r.code, 0, `peak mq ${args.join(' ')}: ${r.stderr}`);
      // biome-ignore lint/suspicious/noExplicitAny: the CLI's JSON output, read loosely in a test
      return JSON.parse(r.stdout) as Record<string, any>;
    };
    assert.equal((await peak('topics', 'create', 'cli-topic', '--queues', '2')).created, true);
    assert.ok(
      (await peak('topics', 'list')).topics.some((t: { name: string }) => t.name === 'cli-topic'),
    );
    const sent = await peak(
      'send',
      'cli-topic',
      'hello from the cli',
      '--tag',
      't1',
      '--keys',
      'cli-key',
    );
    const id = sent.ids[0] as string;
    assert.deepEqual(
      (await peak('query', '--key', 'cli-key')).messages.map((m: { id: string }) => m.id),
      [id],
    );
    assert.equal(
      (await peak('query', '--topic', 'cli-topic', '--tag', 't1', '--from', '1h')).messages.length,
      1,
    );
    assert.equal((await peak('query', id)).message.id, id);
    const got = await peak('consume', 'cli-topic', '--group', 'cli-g', '--wait', '2000');
    assert.equal(Buffer.from(got.messages[0].body, 'base64').toString(), 'hello from the cli');
    const events = (await peak('trace', id)).trace.map((t: { event: string }) => t.event);
    assert.ok(events.includes('delivered') && events.includes('acked'), events.join(','));
    assert.deepEqual((await peak('dlq', 'cli-g')).messages, []);
    assert.equal((await peak('reset-offset', 'cli-g', 'cli-topic', '1h')).queues.length, 2);
    assert.equal(
      (await peak('consume', 'cli-topic', '--group', 'cli-g', '--wait', '2000')).messages.length,
      1,
      'replayed',
    );
    assert.ok(Array.isArray((await peak('stats')).topics));
    const bad = await runPeak(['mq', 'send', 'no-such-topic', 'x'], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /does not exist/);
  });

  it('peak mq topic rm and group rm: refused while in use (naming what uses it) unless --force', async () => {
    const env = { PEAK_SERVER: server.info.url, PEAK_TOKEN: server.info.adminToken! };
    const peak = (...args: string[]) => runPeak(['mq', ...args], env);
    const json = async (...args: string[]) => {
      const r = await peak(...args, '--json');
      assert.equal(r.code, 0, `peak mq ${args.join(' ')}: ${r.stderr}`);
      // biome-ignore lint/suspicious/noExplicitAny: the CLI's JSON output, read loosely in a test
      return JSON.parse(r.stdout) as Record<string, any>;
    };
    await topic('rm-topic', { queues: 2 });
    const p = producer();
    for (const i of [1, 2]) await p.send('rm-topic', { body: `m${i}` });
    const unread = await peak('topic', 'rm', 'rm-topic');
    assert.equal(unread.code, 1);
    assert.match(
      unread.stderr,
      /'rm-topic' is in use: 2 messages no group has read.*--force.*\[PEAK_MQ_IN_USE\]/,
    );
    const got = new Set<string>();
    const c = consume({
      group: 'rm-g',
      topic: 'rm-topic',
      handler: async (m) => void got.add(m.id),
    });
    await waitFor('2 messages', () => got.size === 2);
    await waitFor('their acks', async () => {
      const stats = await admin.call<{
        groups: { group: string; topic: string; backlog: number }[];
      }>('GET', '/api/v1/mq/stats');
      return stats.groups.find((g) => g.group === 'rm-g' && g.topic === 'rm-topic')?.backlog === 0;
    });
    const live = await peak('topic', 'rm', 'rm-topic');
    assert.match(
      live.stderr,
      new RegExp(`1 live consumers \\(rm-g/${c.consumerId}\\).*PEAK_MQ_IN_USE`),
    );
    await c.close();
    const removed = await json('topic', 'rm', 'rm-topic');
    assert.equal(removed.topic, 'rm-topic');
    assert.equal(removed.removed.mq_topics, 1);
    assert.equal(removed.removed.mq_offsets, 2);
    assert.ok(
      !(await admin.call<{ topics: { name: string }[] }>('GET', '/api/v1/mq/topics')).topics.some(
        (t) => t.name === 'rm-topic',
      ),
    );
    const gone = await peak('topics', 'delete', 'rm-topic');
    assert.match(gone.stderr, /topic 'rm-topic' does not exist.*PEAK_MQ_UNKNOWN_TOPIC/);

    // A group's subscription: refused with a backlog, forced, then the group is gone whole.
    await topic('rm-topic2', { queues: 1 });
    await p.send('rm-topic2', { body: 'waiting' });
    await json('reset-offset', 'rm-g2', 'rm-topic2', '1h');
    const backlog = await peak('group', 'rm', 'rm-topic2', 'rm-g2');
    assert.match(
      backlog.stderr,
      /group 'rm-g2' on topic 'rm-topic2' is in use: 1 unconsumed messages.*PEAK_MQ_IN_USE/,
    );
    const forced = await json('group', 'rm', 'rm-topic2', 'rm-g2', '--force');
    assert.equal(forced.groupRemoved, true);
    assert.equal(forced.use.unacked, 1);
    assert.equal(forced.removed.mq_offsets, 1);
    const again = await peak('groups', 'rm', 'rm-topic2', 'rm-g2');
    assert.match(
      again.stderr,
      /group 'rm-g2' has no subscription to topic 'rm-topic2'.*PEAK_NOT_FOUND/,
    );
    assert.equal((await peak('group', 'rm', 'rm-topic2')).code, 2);
  });

  it('HTTP bodies: utf8 text and JSON values when the client says so, base64 by default, and receive answers in the encoding asked for', async () => {
    await topic('plain-bodies');
    const sent = await rawPost('/api/v1/mq/topics/plain-bodies/messages', {
      messages: [
        { body: 'héllo wörld', encoding: 'utf8', tag: 'text' },
        { body: { order: 7, items: ['a'] }, encoding: 'json', tag: 'json' },
        { body: Buffer.from([0xff, 0xfe]).toString('base64'), tag: 'bytes' },
      ],
    });
    assert.equal(sent.status, 200, JSON.stringify(sent.json));
    const receive = async (group: string, encoding?: string) => {
      const r = await fetch(`${server.info.url}/api/v1/mq/groups/${group}/receive`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...bearer() },
        body: JSON.stringify({ topic: 'plain-bodies', consumerId: 'c', waitMs: 0, encoding }),
      });
      assert.equal(r.status, 200);
      const { messages } = (await r.json()) as {
        messages: { tag: string; body: unknown; encoding?: string }[];
      };
      return Object.fromEntries(messages.map((m) => [m.tag, m]));
    };
    const base64 = await receive('bodies-default');
    assert.equal(base64.text!.body, Buffer.from('héllo wörld').toString('base64'));
    assert.equal(base64.json!.body, Buffer.from('{"order":7,"items":["a"]}').toString('base64'));
    assert.equal(base64.text!.encoding, undefined);
    const json = await receive('bodies-json', 'json');
    assert.deepEqual(json.json, {
      ...json.json,
      body: { order: 7, items: ['a'] },
      encoding: 'json',
    });
    // Not JSON, or not UTF-8: left as base64, and said so.
    assert.equal(json.text!.encoding, 'base64');
    assert.equal(json.bytes!.body, '//4=');
    const utf8 = await receive('bodies-utf8', 'utf8');
    assert.equal(utf8.text!.body, 'héllo wörld');
    assert.equal(utf8.text!.encoding, 'utf8');
    assert.equal(utf8.json!.body, '{"order":7,"items":["a"]}');
    assert.equal(utf8.bytes!.encoding, 'base64');
    const notText = await rawPost('/api/v1/mq/topics/plain-bodies/messages', {
      messages: [{ body: { a: 1 }, encoding: 'utf8' }],
    });
    assert.equal(notText.status, 400);
    assert.match(
      notText.json.error.message,
      /messages\[0\]\.body must be a string with encoding 'utf8'/,
    );
    const unknown = await rawPost('/api/v1/mq/topics/plain-bodies/messages', {
      messages: [{ body: 'x', encoding: 'text' }],
    });
    assert.match(
      unknown.json.error.message,
      /messages\[0\]\.encoding must be one of "base64", "utf8", "json"/,
    );
  });

  it('answers bad input with clear errors and keeps serving', async () => {
    const cases: [string, unknown, number, string][] = [
      [
        '/api/v1/mq/topics/nope/messages',
        { messages: [{ body: 'aGk=' }] },
        404,
        'PEAK_MQ_UNKNOWN_TOPIC',
      ],
      ['/api/v1/mq/topics/orders/messages', { messages: [] }, 400, 'PEAK_INVALID_ARGUMENT'],
      [
        '/api/v1/mq/topics/orders/messages',
        { messages: [{ body: '***' }] },
        400,
        'PEAK_INVALID_ARGUMENT',
      ],
      [
        '/api/v1/mq/topics/orders/messages',
        { messages: [{ body: 'aGk=', keys: 'k' }] },
        400,
        'PEAK_INVALID_ARGUMENT',
      ],
      ['/api/v1/mq/topics/orders/messages', '{not json', 400, 'PEAK_INVALID_ARGUMENT'],
      ['/api/v1/mq/groups/g/receive', { topic: 'orders' }, 400, 'PEAK_INVALID_ARGUMENT'],
      [
        '/api/v1/mq/groups/points/ack',
        { topic: 'orders', consumerId: 'x', receipts: ['garbage'] },
        400,
        'PEAK_INVALID_ARGUMENT',
      ],
      // An app credential cannot create topics: that is the admin's.
      ['/api/v1/mq/topics', { name: 'x' }, 403, 'PEAK_FORBIDDEN'],
    ];
    for (const [route, body, status, code] of cases) {
      const r = await rawPost(route, body);
      assert.equal(r.status, status, `${route} ${JSON.stringify(body)}: ${JSON.stringify(r.json)}`);
      assert.equal(r.json.error.code, code);
      assert.ok(r.json.error.message.length > 10);
    }
    await topic('tiny', { maxBodyBytes: 10 });
    const big = await rawPost('/api/v1/mq/topics/tiny/messages', {
      messages: [{ body: Buffer.alloc(11).toString('base64') }],
    });
    assert.equal(big.status, 413);
    assert.equal(big.json.error.code, 'PEAK_MQ_MESSAGE_TOO_LARGE');
    const ready = await fetch(`${server.info.url}/ready`);
    assert.equal(ready.status, 200);
  });
});
