/**
 * The order writer on a real PostgreSQL (two databases as the two order data sources):
 * concurrent orders for one shard commit in fewer transactions than orders, each with its
 * event in the shard's outbox; a repeated request id or a value PostgreSQL refuses fails
 * only its own order, not the others of its batch; an order whose caller gave up while it
 * waited is not written; stress orders go to the shadow tables with their events marked
 * stress.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { createLogger, isPeakError, withContext } from 'peakware/core';
import { GeneIdGenerator, PgDataSource, type ShardedDatabase } from 'peakware/data';
import { Outbox } from 'peakware/mq';
import { EmbeddedPostgres } from 'peakware/server';
import pg from 'pg';
import { createOrderTables, isUniqueViolation, openOrders, sqlStateOf } from './order-store.js';
import { type OrderValues, OrderWriter } from './order-writer.js';
import { duplicateOrders } from './shop-database.js';

let dir: string;
let postgres: EmbeddedPostgres;
let db: ShardedDatabase;
let writer: OrderWriter;
let ids: GeneIdGenerator;
const outboxes = new Map<string, Outbox>();

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'peak-shop-order-writer-'));
  postgres = new EmbeddedPostgres({ dataDir: dir, logger: createLogger({ level: 'warn' }) });
  const e = await postgres.start();
  const url = (database: string) =>
    `postgres://${encodeURIComponent(e.user)}:${encodeURIComponent(e.password)}@${e.host}:${e.port}/${database}`;
  const boot = new pg.Client({ connectionString: url(e.database) });
  await boot.connect();
  await boot.query('CREATE DATABASE shard1');
  await boot.end();
  const shards = { ds0: url(e.database), ds1: url('shard1') };
  await createOrderTables(shards);
  db = await openOrders(shards, 4);
  await db.createShadowTables();
  for (const ds of db.layout.dataSources) {
    // Not started: the events stay in the outbox, where the test counts them.
    outboxes.set(
      ds,
      new Outbox({ pool: PgDataSource.from(db.primary(ds)).pool, servers: 'http://127.0.0.1:9' }),
    );
  }
  writer = new OrderWriter(db, (ds) => outboxes.get(ds)!);
  ids = new GeneIdGenerator({ layout: db.layout, table: 'orders', workerId: 1 });
});

after(async () => {
  await db?.close();
  await postgres?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Buyers whose orders live on the same shard as buyer `first`'s. */
function buyersOnShardOf(first: number, count: number): number[] {
  const shardOf = (u: number) =>
    db.route('SELECT order_id FROM orders WHERE user_id = $1', [u]).units[0]!.shard;
  const out: number[] = [];
  for (let u = first; out.length < count; u++) if (shardOf(u) === shardOf(first)) out.push(u);
  return out;
}

function order(userId: number, requestId: string | null): OrderValues {
  return [ids.next(userId).toString(), userId, 'flash-phone', 1, 9900, requestId];
}

const place = (values: OrderValues) =>
  writer.write(values, 'shop.order-placed', {
    body: JSON.stringify({ orderId: values[0] }),
    keys: [values[0]],
  });

/** The orders and outbox rows (with their transactions) of `orderIds`, over every shard. */
async function written(orderIds: readonly string[]) {
  const { rows } = await db.query<{ order_id: string }>(
    'SELECT order_id FROM orders WHERE order_id = ANY($1::bigint[])',
    [orderIds],
  );
  let events = 0;
  const transactions = new Set<string>();
  for (const ds of db.layout.dataSources) {
    const pool = PgDataSource.from(db.primary(ds)).pool;
    const r = await pool.query<{ id: string; xmin: string }>(
      "SELECT wire->>'body' AS body, xmin::text AS xmin FROM peak_outbox.messages WHERE (wire->>'keys') IS NOT NULL AND wire->'keys'->>0 = ANY($1::text[])",
      [orderIds],
    );
    events += r.rows.length;
    for (const row of r.rows) transactions.add(`${ds}/${row.xmin}`);
  }
  return { orders: rows.map((r) => r.order_id).sort(), events, transactions: transactions.size };
}

test('concurrent orders for one shard commit together, each with its event', async () => {
  const values = buyersOnShardOf(1, 24).map((u, i) => order(u, `r-${i}`));
  await Promise.all(values.map(place));
  const w = await written(values.map((v) => v[0]));
  assert.deepEqual(w.orders, values.map((v) => v[0]).sort());
  assert.equal(w.events, values.length, 'one event per order');
  assert.ok(
    w.transactions < values.length,
    `${values.length} orders in ${w.transactions} transactions (group commit)`,
  );
});

test('a repeated request id or a refused value fails only its own order', async () => {
  const buyers = buyersOnShardOf(300, 12);
  const values = buyers.map((u, i) => order(u, `q-${i}`));
  // The same buyer and request id as the first order (a double click), in the same batch.
  const repeat = order(buyers[0]!, 'q-0');
  // An amount PostgreSQL cannot read as a bigint (SQLSTATE 22P02).
  const bad = [...order(buyers[1]!, 'q-bad')] as unknown as OrderValues;
  (bad as unknown as unknown[])[4] = 'not a number';
  const results = await Promise.allSettled([...values, repeat, bad].map(place));
  assert.deepEqual(
    results.slice(0, values.length).map((r) => r.status),
    values.map(() => 'fulfilled'),
  );
  const [r1, r2] = results.slice(values.length);
  assert.ok(r1?.status === 'rejected' && isUniqueViolation(r1.reason), 'the repeat is refused');
  assert.ok(
    r2?.status === 'rejected' && sqlStateOf(r2.reason) === '22P02',
    `the bad value is refused: ${r2?.status === 'rejected' ? r2.reason : 'placed'}`,
  );
  const w = await written([...values, repeat, bad].map((v) => v[0]));
  assert.deepEqual(w.orders, values.map((v) => v[0]).sort(), 'neither refused order written');
  assert.equal(w.events, values.length, 'and neither event');
});

test("an order whose caller's deadline passes while it waits for its batch is not written", async () => {
  const [first, second, third] = buyersOnShardOf(900, 3).map((u, i) => order(u, `d-${i}`)) as [
    OrderValues,
    OrderValues,
    OrderValues,
  ];
  // The shard answers slowly: the first order's batch holds it for 300 ms.
  db.setStatementHook(() => new Promise((r) => setTimeout(r, 300)));
  try {
    const slow = place(first);
    await new Promise((r) => setTimeout(r, 20));
    // Its caller gives up after 100 ms, while the first batch is still in flight.
    const late = withContext({ timeoutMs: 100 }, () => place(second));
    // A buy without a deadline waits in the same next batch: it is written all the same.
    const patient = place(third);
    await slow;
    await assert.rejects(late, (e) => isPeakError(e, 'PEAK_DEADLINE_EXCEEDED'));
    await patient;
  } finally {
    db.setStatementHook(undefined);
  }
  const w = await written([first[0], second[0], third[0]]);
  assert.deepEqual(w.orders, [first[0], third[0]].sort(), 'the late order alone was not written');
  assert.equal(w.events, 2);
});

test('stress orders go to the shadow tables with their events marked stress', async () => {
  const values = buyersOnShardOf(600, 6).map((u, i) => order(u, `s-${i}`));
  await withContext({ stress: true }, () => Promise.all(values.map(place)));
  const orderIds = values.map((v) => v[0]);
  assert.equal((await written(orderIds)).orders.length, 0, 'no real order');
  const shadow = await withContext({ stress: true }, () =>
    db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM orders WHERE order_id = ANY($1::bigint[])',
      [orderIds],
    ),
  );
  assert.equal(shadow.rows[0]?.n, values.length);
  let stressEvents = 0;
  for (const ds of db.layout.dataSources) {
    const r = await PgDataSource.from(db.primary(ds)).pool.query(
      "SELECT 1 FROM peak_outbox.messages WHERE stress AND wire->'keys'->>0 = ANY($1::text[])",
      [orderIds],
    );
    stressEvents += r.rows.length;
  }
  assert.equal(stressEvents, values.length);
});

test("the duplicate check counts a buyer's extra orders of an item over every shard (GROUP BY + HAVING across shards)", async () => {
  // Buyers on both data sources; 900 and 901 order one item twice and three times.
  const buyers = [900, 901, 902, 903, 904, 905];
  const shards = new Set(
    buyers.map((u) => db.route('SELECT 1 FROM orders WHERE user_id = $1', [u]).units[0]!.shard),
  );
  assert.ok(shards.size > 1, 'the buyers span shards');
  let n = 0;
  const values = (u: number, sku: string): OrderValues => [
    ids.next(u).toString(),
    u,
    sku,
    1,
    100,
    `dup-${n++}`,
  ];
  const placed = [
    values(900, 'dup-a'),
    values(900, 'dup-a'),
    values(901, 'dup-b'),
    values(901, 'dup-b'),
    values(901, 'dup-b'),
    values(901, 'dup-a'),
    ...buyers.slice(2).map((u) => values(u, 'dup-a')),
  ];
  await Promise.all(placed.map(place));
  assert.equal(await duplicateOrders(db, ['dup-a', 'dup-b']), 1 + 2);
  assert.equal(await duplicateOrders(db, ['dup-a']), 1);
  assert.equal(await duplicateOrders(db, ['no-such-item']), 0);
});
