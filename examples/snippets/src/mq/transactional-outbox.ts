/**
 * mq: the transactional outbox. The message is written into the application's own
 * database in the same transaction as the business row, so it exists exactly when the
 * order does: a committed order's event reaches the topic (the relay moves it), a rolled
 * back order's never does. No broker call on the request path, at least once after commit.
 *
 *   PEAK_SERVER=... PEAK_ADMIN_TOKEN=... PEAK_SNIPPET_POSTGRES=postgres://... node dist/mq/transactional-outbox.js
 */
import { type ConsumedMessage, Consumer, Outbox } from 'peakware/mq';
import pg from 'pg';
import { check, admin as controlPlane, postgresUrl, server, until } from '../env.js';

const topic = `snippet-order-events-${process.pid}`;
await controlPlane().mq.createTopic({ name: topic, queues: 2 });

// The application's database: its orders table, and the outbox tables beside it.
const database = `snippet_outbox_${process.pid}`;
const admin = new pg.Client({ connectionString: postgresUrl() });
await admin.connect();
await admin.query(`CREATE DATABASE ${database}`);
const url = new URL(postgresUrl());
url.pathname = `/${database}`;
const pool = new pg.Pool({ connectionString: url.toString(), max: 4 });
await pool.query('CREATE TABLE orders (id text PRIMARY KEY, amount integer NOT NULL)');
await Outbox.install(pool);
const outbox = new Outbox({ pool, servers: server }).start();

/** Places an order and its event in one transaction, committed or rolled back. */
async function placeOrder(id: string, commit: boolean): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('INSERT INTO orders (id, amount) VALUES ($1, $2)', [id, 99]);
    await outbox.send(client, topic, { body: JSON.stringify({ id }), tag: 'placed', keys: [id] });
    await client.query(commit ? 'COMMIT' : 'ROLLBACK');
  } finally {
    client.release();
  }
}

const got: ConsumedMessage[] = [];
const consumer = new Consumer({
  servers: server,
  group: 'snippet-points',
  topic,
  handler: (m) => void got.push(m),
}).start();
try {
  await placeOrder('o-rolled-back', false);
  await placeOrder('o-committed', true);
  await until('the committed order event', () => got.length > 0);
  // Once the outbox table is empty nothing else can be relayed: the rolled-back row never
  // existed outside its transaction.
  const left = async () =>
    Number((await pool.query('SELECT count(*) AS n FROM peak_outbox.messages')).rows[0].n);
  await until('an empty outbox table', async () => (await left()) === 0);
  for (const m of got) console.log(`consumed ${m.tag} ${m.text()} (keys ${m.keys.join(',')})`);
  const { rows } = await pool.query<{ id: string }>('SELECT id FROM orders');
  console.log(
    `orders table: ${rows.map((r) => r.id).join(', ')}; relayed ${outbox.stats().relayed}`,
  );
  check(rows.length === 1 && rows[0]?.id === 'o-committed', 'only the committed order exists');
  check(got.length === 1 && got[0]?.json<{ id: string }>().id === 'o-committed', 'only its event');
  check(outbox.stats().relayed === 1, 'the relay moved exactly one message');
} finally {
  await consumer.close();
  await outbox.close();
  await pool.end();
  // pool.end() resolves as its connections start closing: drop the database once they have.
  const open = async () =>
    (await admin.query('SELECT 1 FROM pg_stat_activity WHERE datname = $1', [database])).rowCount;
  await until('the pool connections to close', async () => (await open()) === 0);
  await admin.query(`DROP DATABASE ${database}`);
  await admin.end();
}
console.log('ok');
