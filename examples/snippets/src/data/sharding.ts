/**
 * data: a table sharded by buyer over two databases × two tables each (TSharding style).
 * Gene ids put an order on its buyer's shard, so a lookup by id goes to one shard; a query
 * without the sharding key is scattered to all four and merged (GROUP BY, HAVING, ORDER BY,
 * LIMIT, UNION; EXCEPT with the sharding key in every arm; DISTINCT ON; windows partitioned
 * by the sharding key).
 * The tables are the application's: it creates them, the data layer only routes.
 *
 *   PEAK_SNIPPET_POSTGRES=postgres://user:pw@127.0.0.1:5432/postgres node dist/data/sharding.js
 */
import {
  createLayout,
  GeneIdGenerator,
  ShardedDatabase,
  type ShardingLayoutOptions,
} from 'peakware/data';
import pg from 'pg';
import { check, postgresUrl } from '../env.js';

const layout: ShardingLayoutOptions = {
  dataSources: ['ds0', 'ds1'],
  tables: {
    t_order: {
      shardingColumn: 'buyer_id',
      geneColumns: ['id'],
      algorithm: { type: 'hash-mod' },
      tablesPerDataSource: 2,
    },
  },
};

// Two databases on the given server stand in for two shard servers.
const base = postgresUrl();
const urls: Record<string, string> = {};
const admin = new pg.Client({ connectionString: base });
await admin.connect();
for (const ds of layout.dataSources) {
  const name = `snippet_${ds}_${process.pid}`;
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(base);
  url.pathname = `/${name}`;
  urls[ds] = url.toString();
}
const resolved = createLayout(layout);
const table = resolved.tables.get('t_order')!;
for (let s = 0; s < table.shardCount; s++) {
  const node = resolved.node(table, s);
  const c = new pg.Client({ connectionString: urls[node.dataSource] });
  await c.connect();
  await c.query(`CREATE TABLE ${node.table} (id bigint PRIMARY KEY, buyer_id bigint NOT NULL,
    status text NOT NULL, amount integer NOT NULL);
    CREATE INDEX ON ${node.table} (buyer_id);`);
  await c.end();
}

const db = await ShardedDatabase.connect({
  layout,
  connections: { ds0: { primary: urls.ds0! }, ds1: { primary: urls.ds1! } },
});
try {
  const ids = new GeneIdGenerator({ layout: resolved, table: 't_order' });
  let firstId = 0n;
  for (let buyer = 1; buyer <= 20; buyer++) {
    const id = ids.next(buyer);
    if (buyer === 1) firstId = id;
    await db.query('INSERT INTO t_order (id, buyer_id, status, amount) VALUES ($1, $2, $3, $4)', [
      id,
      buyer,
      buyer % 3 === 0 ? 'paid' : 'created',
      buyer * 10,
    ]);
  }
  const byId = await db.query('SELECT buyer_id FROM t_order WHERE id = $1', [firstId]);
  const unit = byId.route.units[0]!;
  console.log(
    `by gene id: ${byId.route.units.length} unit, ${unit.dataSource} shard ${unit.shard}`,
  );
  check(byId.route.units.length === 1 && Number(byId.rows[0]!.buyer_id) === 1, 'one shard by id');

  const stats = await db.query<{ status: string; n: string; total: string }>(
    'SELECT status, count(*) AS n, sum(amount) AS total FROM t_order GROUP BY status ORDER BY status',
  );
  const covered = stats.route.units.reduce((n, u) => n + (u.shards?.length ?? 1), 0);
  console.log(`scatter-gather over ${covered} tables in ${stats.route.units.length} statements:`);
  for (const r of stats.rows) console.log(`  ${r.status}: ${r.n} orders, ${r.total}`);
  check(covered === 4, 'the GROUP BY ran on all four tables');
  check(
    stats.rows.reduce((sum, r) => sum + Number(r.n), 0) === 20,
    'the merged counts add up to every order',
  );

  // HAVING is applied to the merged groups (a shard's partial count cannot be judged).
  const busy = await db.query<{ status: string }>(
    'SELECT status, count(*) AS n FROM t_order GROUP BY status HAVING count(*) > $1',
    [10],
  );
  console.log(`statuses with more than 10 orders: ${busy.rows.map((r) => r.status).join(', ')}`);
  check(busy.rows.length === 1 && busy.rows[0]!.status === 'created', 'HAVING over shards');

  // Set operations: UNION runs on every shard and drops rows repeated across shards; with the
  // sharding key in every arm, EXCEPT (and INTERSECT) run shard by shard: equal rows share one.
  const either = await db.query<{ buyer_id: string }>(
    `SELECT buyer_id FROM t_order WHERE amount > $1
     UNION SELECT buyer_id FROM t_order WHERE status = 'paid' ORDER BY 1`,
    [150],
  );
  const notPaid = await db.query<{ buyer_id: string }>(
    `SELECT buyer_id FROM t_order WHERE status = 'created'
     EXCEPT SELECT buyer_id FROM t_order WHERE status = 'paid'`,
  );
  console.log(
    `big or paid: ${either.rows.map((r) => r.buyer_id).join(' ')}; never paid: ${notPaid.rows.length} buyers`,
  );
  check(
    either.rows.map((r) => Number(r.buyer_id)).join(' ') === '3 6 9 12 15 16 17 18 19 20',
    'UNION over shards, sorted, each buyer once',
  );
  check(notPaid.rows.length === 14, 'EXCEPT over shards');

  // DISTINCT ON: each status's biggest order, the first row of each key across shards. A
  // window partitioned by the sharding key runs whole on each shard (its partition is there).
  const biggest = await db.query<{ status: string; buyer_id: string }>(
    'SELECT DISTINCT ON (status) status, buyer_id FROM t_order ORDER BY status, amount DESC',
  );
  const ranked = await db.query<{ buyer_id: string; rn: string }>(
    `SELECT buyer_id, row_number() OVER (PARTITION BY buyer_id ORDER BY amount DESC) AS rn
       FROM t_order ORDER BY buyer_id LIMIT 3`,
  );
  console.log(
    `biggest order by status: ${biggest.rows.map((r) => `${r.status} buyer ${r.buyer_id}`).join(', ')}`,
  );
  check(
    biggest.rows.map((r) => `${r.status}:${r.buyer_id}`).join(' ') === 'created:20 paid:18',
    'DISTINCT ON over shards',
  );
  check(
    ranked.rows.map((r) => `${r.buyer_id}:${r.rn}`).join(' ') === '1:1 2:1 3:1',
    'a window partitioned by the sharding key',
  );
} finally {
  await db.close();
  for (const ds of layout.dataSources) {
    await admin.query(`DROP DATABASE snippet_${ds}_${process.pid} WITH (FORCE)`);
  }
  await admin.end();
}
console.log('ok');
