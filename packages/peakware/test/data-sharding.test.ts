/**
 * The sharded data layer over two real PostgreSQL instances (2 data sources × 4 tables =
 * 8 shards), against the same rows in one unsharded database: the differential test
 * (thousands of generated queries must answer identically), bad SQL, gene ids,
 * transactions, shadow tables under stress traffic, read/write split and the statement
 * collector. The instances start once for the whole file.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { rootCommand } from '../src/cli/commands/index.js';
import { runCli } from '../src/cli/run-cli.js';
import { createContext, runWithContext } from '../src/core/context.js';
import { ErrorCodes, isPeakError } from '../src/core/errors.js';
import {
  type DataSource,
  GeneIdGenerator,
  PgDataSource,
  ShardedDatabase,
  type ShardedQueryResult,
  type ShardingLayoutOptions,
  type StatementEvent,
} from '../src/data/index.js';
import type { SqlClient } from '../src/mq/index.js';
import { type PostgresCluster, startPostgresCluster } from './support/postgres-cluster.js';
import { seededRandom } from './support/seeded-random.js';

const LAYOUT: ShardingLayoutOptions = {
  dataSources: ['ds0', 'ds1'],
  tables: {
    t_order: {
      shardingColumn: 'buyer_id',
      geneColumns: ['id'],
      algorithm: { type: 'hash-mod' },
      tablesPerDataSource: 4,
    },
    t_order_item: {
      shardingColumn: 'buyer_id',
      geneColumns: ['order_id'],
      algorithm: { type: 'hash-mod' },
      tablesPerDataSource: 4,
    },
    t_event: {
      shardingColumn: 'at',
      algorithm: { type: 'interval', start: '2026-01-01T00:00:00Z', unit: 'month' },
      tablesPerDataSource: 2,
    },
  },
  bindingGroups: [['t_order', 't_order_item']],
  broadcastTables: ['t_region'],
};

const DDL = {
  t_order: (t: string) => `CREATE TABLE ${t} (
    id bigint PRIMARY KEY, buyer_id bigint NOT NULL, region_id int NOT NULL,
    amount numeric(12,2) NOT NULL, qty int NOT NULL, status text NOT NULL,
    created_at timestamptz NOT NULL, note text)`,
  t_order_item: (t: string) => `CREATE TABLE ${t} (
    id bigint PRIMARY KEY, order_id bigint NOT NULL, buyer_id bigint NOT NULL,
    sku text NOT NULL, qty int NOT NULL)`,
  t_region: (t: string) => `CREATE TABLE ${t} (id int PRIMARY KEY, name text NOT NULL)`,
  t_event: (t: string) =>
    `CREATE TABLE ${t} (id bigint PRIMARY KEY, at timestamptz NOT NULL, kind text NOT NULL, v int NOT NULL)`,
} as const;

const STATUSES = ['cancelled', 'created', 'paid', 'shipped'];
const NOTES = ['gift', 'rush', 'zz', null, null];

let cluster: PostgresCluster;
let db: ShardedDatabase;
/** The same layout without UNION ALL per data source: one statement per shard. */
let perShard: ShardedDatabase;
let reference: pg.Pool;
const orderIds: string[] = [];
const eventTimes: string[] = [];

function pick<T>(random: () => number, xs: readonly T[]): T {
  return xs[Math.floor(random() * xs.length)]!;
}
const BUYERS = 40;

async function rebuildTables(): Promise<void> {
  for (const t of db.physicalTables()) {
    const pool = db.primary(t.dataSource);
    await pool.query(`DROP TABLE IF EXISTS ${t.table}_shadow, ${t.table}`);
    await pool.query(DDL[t.logical as keyof typeof DDL](t.table));
  }
}

before(async () => {
  cluster = await startPostgresCluster(2);
  const admin = new pg.Client({ connectionString: cluster.url(0) });
  await admin.connect();
  await admin.query('CREATE DATABASE reference');
  await admin.end();
  reference = new pg.Pool({ connectionString: cluster.url(0, 'reference'), max: 4 });
  reference.on('error', () => {});
  for (const [name, ddl] of Object.entries(DDL)) await reference.query(ddl(name));
  db = await ShardedDatabase.connect({
    layout: LAYOUT,
    connections: { ds0: { primary: cluster.url(0) }, ds1: { primary: cluster.url(1) } },
    poolSize: 4,
  });
  perShard = await ShardedDatabase.connect({
    layout: LAYOUT,
    connections: { ds0: { primary: cluster.url(0) }, ds1: { primary: cluster.url(1) } },
    poolSize: 2,
    router: { combinePerDataSource: false },
  });
  await rebuildTables();

  // The same rows, through the router (multi-row INSERTs split per shard) and directly.
  const random = seededRandom(7);
  const genes = new GeneIdGenerator({ layout: db.layout, table: 't_order' });
  for (const [id, name] of [
    [1, 'north'],
    [2, 'south'],
    [3, 'east'],
  ] as const) {
    await db.query('INSERT INTO t_region (id, name) VALUES ($1, $2)', [id, name]);
    await reference.query('INSERT INTO t_region (id, name) VALUES ($1, $2)', [id, name]);
  }
  const events: unknown[][] = [];
  for (let e = 1; e <= 400; e++) {
    const at = new Date(Date.UTC(2026, 0, 1) + Math.floor(random() * 119 * 24) * 3_600_000);
    events.push([e, at, pick(random, ['click', 'view', 'buy']), Math.floor(random() * 100)]);
  }
  for (let k = 0; k < events.length; k += 50) {
    const chunk = events.slice(k, k + 50);
    const sql = `INSERT INTO t_event (id, at, kind, v) VALUES ${chunk.map((_, i) => `($${i * 4 + 1}, $${i * 4 + 2}, $${i * 4 + 3}, $${i * 4 + 4})`).join(', ')}`;
    await db.query(sql, chunk.flat());
    await reference.query(sql, chunk.flat());
  }
  eventTimes.push(...events.map((e) => (e[1] as Date).toISOString()));
  let itemId = 1;
  for (let batch = 0; batch < 60; batch++) {
    const orders: unknown[][] = [];
    const items: unknown[][] = [];
    for (let k = 0; k < 10; k++) {
      const buyer = 1 + Math.floor(random() * BUYERS);
      const id = genes.next(buyer).toString();
      orderIds.push(id);
      const note = NOTES[Math.floor(random() * NOTES.length)] ?? null;
      orders.push([
        id,
        buyer,
        1 + Math.floor(random() * 3),
        (Math.floor(random() * 100000) / 100).toFixed(2),
        1 + Math.floor(random() * 9),
        STATUSES[Math.floor(random() * STATUSES.length)]!,
        new Date(Date.UTC(2026, 0, 1) + Math.floor(random() * 90) * 86_400_000 + batch * 1000 + k),
        note,
      ]);
      for (let j = 0; j < 1 + Math.floor(random() * 3); j++) {
        items.push([
          itemId++,
          id,
          buyer,
          `sku-${Math.floor(random() * 20)}`,
          1 + Math.floor(random() * 5),
        ]);
      }
    }
    const place = (rows: unknown[][]) =>
      rows.map((r, i) => `(${r.map((_, j) => `$${i * r.length + j + 1}`).join(', ')})`).join(', ');
    const orderSql = `INSERT INTO t_order (id, buyer_id, region_id, amount, qty, status, created_at, note) VALUES ${place(orders)}`;
    const itemSql = `INSERT INTO t_order_item (id, order_id, buyer_id, sku, qty) VALUES ${place(items)}`;
    const inserted = await db.query(orderSql, orders.flat());
    assert.equal(inserted.rowCount, orders.length);
    await db.query(itemSql, items.flat());
    await reference.query(orderSql, orders.flat());
    await reference.query(itemSql, items.flat());
  }
});

after(async () => {
  await db?.close();
  await perShard?.close();
  await reference?.end();
  await cluster?.stop();
});

/** Normalises a result for comparison: dates as ISO, long decimals rounded (AVG). */
function normalise(rows: Record<string, unknown>[]): string[] {
  return rows.map((r) =>
    JSON.stringify(
      Object.values(r).map((v) => {
        if (v instanceof Date) return v.toISOString();
        if (typeof v === 'number' && !Number.isInteger(v)) return v.toFixed(6);
        if (typeof v === 'string' && /^-?\d+\.\d{7,}$/.test(v)) return Number(v).toFixed(6);
        return v;
      }),
    ),
  );
}

interface Generated {
  sql: string;
  params: unknown[];
  ordered: boolean;
  write: boolean;
}

function generate(random: () => number): Generated {
  const params: unknown[] = [];
  const p = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const buyer = () => 1 + Math.floor(random() * (BUYERS + 2));
  const atom = (q: string): string => {
    switch (Math.floor(random() * 10)) {
      case 0:
        return `${q}buyer_id = ${p(buyer())}`;
      case 1:
        return `${q}buyer_id IN (${p(buyer())}, ${p(buyer())}, ${p(buyer())})`;
      case 2: {
        const a = buyer();
        return `${q}buyer_id BETWEEN ${p(a)} AND ${p(a + Math.floor(random() * 4))}`;
      }
      case 3:
        return `${q}amount ${pick(['<', '>=', '<=', '>'])} ${p((random() * 1000).toFixed(2))}`;
      case 4:
        return `${q}status = ${p(pick(STATUSES))}`;
      case 5:
        return `${q}id = ${p(random() < 0.8 ? pick(orderIds) : '12345')}`;
      case 6:
        return `${q}note IS ${random() < 0.5 ? '' : 'NOT '}NULL`;
      case 7:
        return `(${q}buyer_id = ${p(buyer())} OR ${q}status = ${p(pick(STATUSES))})`;
      case 8:
        return `${q}buyer_id = ANY(${p([buyer(), buyer()])}::bigint[])`;
      default:
        return `${q}qty BETWEEN ${p(1 + Math.floor(random() * 5))} AND ${p(3 + Math.floor(random() * 7))}`;
    }
  };
  const where = (q = '') => {
    const n = Math.floor(random() * 3);
    if (n === 0) return '';
    return ` WHERE ${Array.from({ length: n }, () => atom(q)).join(random() < 0.8 ? ' AND ' : ' OR ')}`;
  };
  const limit = () => {
    const r = random();
    if (r < 0.4) return '';
    const l = ` LIMIT ${random() < 0.5 ? p(1 + Math.floor(random() * 30)) : String(1 + Math.floor(random() * 30))}`;
    return r < 0.7 ? l : `${l} OFFSET ${p(Math.floor(random() * 40))}`;
  };
  const shape = Math.floor(random() * 30);
  if (shape < 8) {
    const keys = Array.from({ length: Math.floor(random() * 3) }, () => {
      const col = pick(['amount', 'qty', 'status', 'created_at', 'note', 'buyer_id', 'region_id']);
      const dir = random() < 0.5 ? ' DESC' : '';
      const nulls = random() < 0.3 ? pick([' NULLS FIRST', ' NULLS LAST']) : '';
      return `${col}${dir}${nulls}`;
    });
    const ordered = keys.length > 0 || random() < 0.5;
    const order = ordered
      ? ` ORDER BY ${[...keys, `id${random() < 0.5 ? ' DESC' : ''}`].join(', ')}`
      : '';
    const cols = pick([
      'id, buyer_id, amount, qty, status, note',
      '*',
      'id, amount AS a, created_at',
    ]);
    return {
      sql: `SELECT ${cols} FROM t_order${where()}${order}${ordered ? limit() : ''}`,
      params,
      ordered,
      write: false,
    };
  }
  if (shape < 11) {
    const aggs =
      'count(*), sum(amount), min(amount), max(qty), avg(qty), count(note), max(note), min(created_at), avg(amount) AS avg_amount, sum(qty) AS total_qty';
    return { sql: `SELECT ${aggs} FROM t_order${where()}`, params, ordered: false, write: false };
  }
  if (shape < 15) {
    const key = pick(['status', 'region_id', 'buyer_id', 'note']);
    const order = pick([` ORDER BY ${key}`, ` ORDER BY c DESC, ${key}`, ` ORDER BY 1 DESC`, '']);
    const sql = `SELECT ${key}, count(*) AS c, sum(qty), avg(amount), min(amount), max(created_at) FROM t_order${where()} GROUP BY ${key}${order}${order !== '' ? limit() : ''}`;
    return { sql, params, ordered: order !== '', write: false };
  }
  if (shape < 17) {
    const sql = `SELECT o.id, o.status, i.sku, i.qty, r.name FROM t_order o JOIN t_order_item i ON i.order_id = o.id JOIN t_region r ON r.id = o.region_id${where('o.')} ORDER BY i.qty DESC, i.id${limit()}`;
    return { sql, params, ordered: true, write: false };
  }
  if (shape < 18) {
    const filter = pick([
      () => '',
      () => ` WHERE i.buyer_id = ${p(buyer())}`,
      () => ` WHERE i.buyer_id IN (${p(buyer())}, ${p(buyer())})`,
      () => ` WHERE i.qty > ${p(2)}`,
      () => ` WHERE i.order_id = ${p(pick(orderIds))}`,
    ])();
    const sql = `SELECT i.sku, count(*) AS n, sum(i.qty) AS q, max(i.qty) FROM t_order_item i${filter} GROUP BY i.sku ORDER BY n DESC, i.sku`;
    return { sql, params, ordered: true, write: false };
  }
  if (shape < 19) {
    return {
      sql: `UPDATE t_order SET qty = qty + 1${where()}`,
      params,
      ordered: false,
      write: true,
    };
  }
  if (shape >= 20 && shape < 22) {
    // DISTINCT: rows repeated across shards answered once.
    const form = pick([
      () => ({ cols: 'status', order: ['status', 'status DESC'] }),
      () => ({ cols: 'region_id, status', order: ['region_id, status', 'status DESC, region_id'] }),
      () => ({ cols: 'note', order: ['note NULLS FIRST', 'note DESC'] }),
      () => ({ cols: 'buyer_id % 3 AS m, qty', order: ['m, qty', 'qty DESC, m'] }),
      () => ({
        cols: 'count(*) AS n',
        order: [] as string[],
        group: ' GROUP BY region_id, status',
      }),
    ])() as { cols: string; order: string[]; group?: string };
    const order = form.order.length > 0 && random() < 0.7 ? ` ORDER BY ${pick(form.order)}` : '';
    return {
      sql: `SELECT DISTINCT ${form.cols} FROM t_order${where()}${form.group ?? ''}${order}${order !== '' ? limit() : ''}`,
      params,
      ordered: order !== '',
      write: false,
    };
  }
  if (shape >= 28) {
    // DISTINCT ON (first row of each key, across shards) and windows partitioned by the
    // sharding key (each partition on one shard); every ORDER BY ends unique (id).
    const form: string = pick([
      () =>
        `SELECT DISTINCT ON (buyer_id) buyer_id, id, amount FROM t_order${where()} ORDER BY buyer_id, amount DESC, id${limit()}`,
      () =>
        `SELECT DISTINCT ON (status) status, id, qty FROM t_order${where()} ORDER BY status, qty DESC, id${limit()}`,
      () =>
        `SELECT DISTINCT ON (region_id, status) id, region_id, status FROM t_order${where()} ORDER BY region_id, status DESC, id${limit()}`,
      () =>
        `SELECT DISTINCT ON (region_id) id, amount FROM t_order${where()} ORDER BY region_id, amount, id${limit()}`,
      () =>
        `SELECT id, buyer_id, row_number() OVER (PARTITION BY buyer_id ORDER BY amount DESC, id) AS rn FROM t_order${where()} ORDER BY buyer_id, rn${limit()}`,
      () =>
        `SELECT id, sum(qty) OVER (PARTITION BY buyer_id) AS s, rank() OVER w AS r FROM t_order${where()} WINDOW w AS (PARTITION BY buyer_id ORDER BY qty) ORDER BY s DESC, r, id${limit()}`,
      () =>
        `SELECT o.id, o.amount FROM t_order o${where('o.')} ORDER BY row_number() OVER (PARTITION BY o.buyer_id, o.status ORDER BY o.id), o.id${limit()}`,
      () =>
        `SELECT i.sku, i.qty, count(*) OVER (PARTITION BY i.buyer_id) AS n FROM t_order_item i ORDER BY n DESC, i.id${limit()}`,
    ])();
    return { sql: form, params, ordered: true, write: false };
  }
  if (shape >= 27) {
    // A subquery in FROM: row-wise, or grouped by the sharding key (shard-local groups).
    const form: { sql: string; ordered: boolean } = pick([
      () => ({
        sql: `SELECT x.buyer_id, x.a FROM (SELECT buyer_id, amount AS a, id FROM t_order${where()}) x WHERE x.a > ${p((random() * 800).toFixed(2))} ORDER BY x.a DESC, x.id${limit()}`,
        ordered: true,
      }),
      () => ({
        sql: `SELECT * FROM (SELECT buyer_id, count(*) AS n, sum(qty) AS q FROM t_order${where()} GROUP BY buyer_id) x ORDER BY n DESC, q, buyer_id${limit()}`,
        ordered: true,
      }),
      () => ({
        sql: `SELECT count(*), sum(q), max(n) FROM (SELECT buyer_id, count(*) AS n, sum(qty) AS q FROM t_order${where()} GROUP BY buyer_id HAVING count(*) > ${p(1)}) x`,
        ordered: false,
      }),
      () => ({
        sql: `SELECT r.name, x.n FROM t_region r JOIN (SELECT region_id, buyer_id, count(*) AS n FROM t_order GROUP BY buyer_id, region_id) x ON x.region_id = r.id`,
        ordered: false,
      }),
      () => ({
        sql: `SELECT * FROM (SELECT o.id, o.qty, i.sku FROM t_order o JOIN t_order_item i ON i.order_id = o.id AND i.buyer_id = o.buyer_id WHERE o.buyer_id = ${p(buyer())}) x`,
        ordered: false,
      }),
      // The same as WITH: a CTE read once in FROM is a subquery in FROM.
      () => ({
        sql: `WITH x AS (SELECT buyer_id, amount AS a, id FROM t_order${where()}) SELECT x.buyer_id, x.a FROM x WHERE x.a > ${p((random() * 800).toFixed(2))} ORDER BY x.a DESC, x.id${limit()}`,
        ordered: true,
      }),
      () => ({
        sql: `WITH per_buyer (b, n, q) AS (SELECT buyer_id, count(*), sum(qty) FROM t_order${where()} GROUP BY buyer_id) SELECT r.name, per_buyer.* FROM per_buyer JOIN t_region r ON r.id = per_buyer.b % 3 + 1 ORDER BY n DESC, q, b${limit()}`,
        ordered: true,
      }),
      () => ({
        // The outer WHERE names the CTE's column (a region, renamed buyer_id), not t_order's key.
        sql: `WITH x AS (SELECT region_id AS buyer_id, id FROM t_order) SELECT count(*), max(id) FROM x WHERE buyer_id = ${p(1 + Math.floor(random() * 3))}`,
        ordered: false,
      }),
    ])();
    return { sql: form.sql, params, ordered: form.ordered, write: false };
  }
  if (shape >= 26) {
    // Any set operation whose arms all output their sharding key first: exact shard by
    // shard (INTERSECT, EXCEPT, ALL, UNION under UNION ALL, DISTINCT arms).
    const itemWhere = () =>
      pick([
        () => '',
        () => ` WHERE qty > ${p(1 + Math.floor(random() * 4))}`,
        () => ` WHERE buyer_id IN (${p(buyer())}, ${p(buyer())})`,
      ])();
    // The first arm names the result's columns b and r (what ORDER BY may use).
    const arm = (first: boolean) => {
      const [b, r] = first ? [' AS b', ' AS r'] : ['', ''];
      return pick([
        () =>
          `SELECT ${random() < 0.2 ? 'DISTINCT ' : ''}buyer_id${b}, region_id${r} FROM t_order${where()}`,
        () => `SELECT o.buyer_id${b}, o.qty${r} FROM t_order o${where('o.')}`,
        () => `SELECT buyer_id${b}, qty${r} FROM t_order_item${itemWhere()}`,
      ])();
    };
    const op = () =>
      pick(['UNION', 'UNION ALL', 'INTERSECT', 'INTERSECT ALL', 'EXCEPT', 'EXCEPT ALL']);
    let sql = arm(true);
    for (let n = 1 + Math.floor(random() * 2); n > 0; n--) sql += ` ${op()} ${arm(false)}`;
    const ordered = random() < 0.5;
    if (ordered) sql += ` ORDER BY ${pick(['b, r', '1 DESC, 2', '2, b DESC'])}${limit()}`;
    return { sql, params, ordered, write: false };
  }
  if (shape >= 24) {
    // UNION / UNION ALL of two or three arms over t_order, t_order_item and the broadcast
    // t_region; the outer operation decides what is valid (see set-operation-scatter.ts).
    const wide = random() < 0.5;
    const ops = Array.from({ length: 1 + Math.floor(random() * 2) }, () =>
      pick(['UNION', 'UNION ALL']),
    );
    const dedupe = ops[ops.length - 1] === 'UNION';
    if (!dedupe) ops.fill('UNION ALL');
    const itemWhere = () =>
      pick([
        () => '',
        () => ` WHERE buyer_id = ${p(buyer())}`,
        () => ` WHERE buyer_id IN (${p(buyer())}, ${p(buyer())})`,
        () => ` WHERE qty > ${p(1 + Math.floor(random() * 4))}`,
      ])();
    const arm = (first: boolean): string => {
      const names = first ? [' AS k1', ' AS k2', ' AS k3'] : ['', '', ''];
      const distinct = dedupe && random() < 0.2 ? 'DISTINCT ' : '';
      const from = pick(dedupe ? ['o', 'o', 'i', 'r'] : ['o', 'o', 'i']);
      if (from === 'o')
        return wide
          ? `SELECT ${distinct}id${names[0]}, buyer_id${names[1]}, amount${names[2]} FROM t_order${where()}`
          : `SELECT ${distinct}status${names[0]}, region_id${names[1]} FROM t_order${where()}`;
      if (from === 'i')
        return wide
          ? `SELECT ${distinct}order_id${names[0]}, buyer_id${names[1]}, qty${names[2]} FROM t_order_item${itemWhere()}`
          : `SELECT ${distinct}sku${names[0]}, qty${names[1]} FROM t_order_item${itemWhere()}`;
      return wide
        ? `SELECT id${names[0]}, id${names[1]}, 0.5${names[2]} FROM t_region`
        : `SELECT name${names[0]}, id${names[1]} FROM t_region`;
    };
    let sql = arm(true);
    for (const op of ops) sql += ` ${op} ${arm(false)}`;
    const ordered = random() < 0.6;
    if (ordered) {
      // Every output column, by name or position, so only identical rows tie.
      const keys = (wide ? [1, 2, 3] : [1, 2]).sort(() => random() - 0.5);
      sql += ` ORDER BY ${keys.map((k) => `${random() < 0.5 ? `k${k}` : k}${random() < 0.5 ? ' DESC' : ''}`).join(', ')}${limit()}`;
    }
    return { sql, params, ordered, write: false };
  }
  if (shape >= 22) {
    // HAVING over the merged groups: the counts of all shards together.
    const key = pick(['status', 'region_id', 'buyer_id', 'note']);
    const aggregateOnly = [
      () => `count(*) > ${p(1 + Math.floor(random() * 12))}`,
      () =>
        `sum(qty) >= ${p(Math.floor(random() * 60))} AND min(amount) < ${p((random() * 600).toFixed(2))}`,
      () => `avg(amount) > ${p((200 + random() * 600).toFixed(2))}`,
      () => `count(*) BETWEEN ${p(2)} AND ${p(3 + Math.floor(random() * 10))} OR max(note) IS NULL`,
      () => `NOT (max(qty) < ${p(1 + Math.floor(random() * 9))})`,
      () =>
        `max(created_at) > ${p(new Date(Date.UTC(2026, 0, 1 + Math.floor(random() * 120))).toISOString())}`,
      () => `count(note) NOT IN (${p(0)}, ${p(1)})`,
    ];
    if (random() < 0.15) {
      return {
        sql: `SELECT count(*) AS n, sum(qty) FROM t_order${where()} HAVING ${pick(aggregateOnly)()}`,
        params,
        ordered: false,
        write: false,
      };
    }
    const keyValue = () =>
      key === 'status' || key === 'note'
        ? pick(STATUSES.concat(['gift', 'rush']))
        : 1 + Math.floor(random() * (key === 'buyer_id' ? BUYERS : 3));
    const cond = pick([
      ...aggregateOnly,
      () => `${key} IN (${p(keyValue())}, ${p(keyValue())}) OR count(*) <> ${p(3)}`,
      () => `${key} IS NOT NULL AND sum(qty) > ${p(Math.floor(random() * 40))}`,
    ])();
    const order = pick([` ORDER BY ${key}`, ` ORDER BY c DESC, ${key}`, '']);
    return {
      sql: `SELECT ${key}, count(*) AS c, sum(qty) FROM t_order${where()} GROUP BY ${key} HAVING ${cond}${order}${order !== '' ? limit() : ''}`,
      params,
      ordered: order !== '',
      write: false,
    };
  }
  return {
    sql: `SELECT count(*) FROM t_order o WHERE EXISTS (SELECT 1 FROM t_order_item i WHERE i.order_id = o.id AND i.buyer_id = o.buyer_id AND i.qty > ${p(2)})${where('o.').replace(' WHERE ', ' AND ')}`,
    params,
    ordered: false,
    write: false,
  };
}

describe('data: differential (sharded layout vs one unsharded database)', () => {
  it('answers thousands of generated queries exactly like one table', async () => {
    const random = seededRandom(2026);
    const counts = { total: 0, scatter: 0, single: 0, writes: 0 };
    const check = async (i: number, q: Generated) => {
      const label = `query #${i}: ${q.sql} ${JSON.stringify(q.params)}`;
      const expected = await reference.query(q.sql, q.params);
      let actual: ShardedQueryResult;
      try {
        // Alternate: UNION ALL per data source, and one statement per shard (pure k-way merge).
        actual = await (i % 2 === 0 ? db : perShard).query(q.sql, q.params);
      } catch (err) {
        assert.fail(`${label} threw ${(err as Error).message}`);
      }
      counts.total++;
      if (actual.route.units.length > 1 || actual.route.units[0]?.shards !== undefined)
        counts.scatter++;
      else counts.single++;
      if (q.write) {
        counts.writes++;
        assert.equal(actual.rowCount, expected.rowCount, label);
        return;
      }
      const want = normalise(expected.rows);
      const got = normalise(actual.rows);
      if (!q.ordered) {
        want.sort();
        got.sort();
      }
      assert.deepEqual(got, want, label);
      assert.deepEqual(
        actual.fields.map((f) => f.name),
        expected.fields.map((f) => f.name),
        `${label}: column names`,
      );
    };
    // The reads between two writes see the same rows whatever their order, so they run a few
    // at a time (most of each one's time is waiting on PostgreSQL); a write runs alone, after
    // the reads before it and before the ones after it, in both databases alike.
    const READS_AT_ONCE = 4;
    let reads: Promise<void>[] = [];
    for (let i = 0; i < 2500; i++) {
      const q = generate(random);
      if (q.write) {
        await Promise.all(reads);
        reads = [];
        await check(i, q);
        continue;
      }
      reads.push(check(i, q));
      if (reads.length >= READS_AT_ONCE) {
        await Promise.all(reads);
        reads = [];
      }
    }
    await Promise.all(reads);
    // The generator must exercise both paths, or the test proves little.
    assert.ok(counts.scatter > 500, `scatter queries: ${counts.scatter}`);
    assert.ok(counts.single > 200, `single-shard queries: ${counts.single}`);
    assert.ok(counts.writes > 50, `writes: ${counts.writes}`);
  });
});

describe('data: streaming (server-side cursors, lazy merge)', () => {
  it('streams the same answers as one table, in small batches', async () => {
    const random = seededRandom(4242);
    let streamed = 0;
    for (let i = 0; i < 400; i++) {
      const q = generate(random);
      if (q.write) continue;
      const label = `stream #${i}: ${q.sql} ${JSON.stringify(q.params)}`;
      const expected = await reference.query(q.sql, q.params);
      const rows: Record<string, unknown>[] = [];
      for await (const row of db.stream(q.sql, q.params, { batchSize: 7 })) rows.push(row);
      const want = normalise(expected.rows);
      const got = normalise(rows);
      if (!q.ordered) {
        want.sort();
        got.sort();
      }
      assert.deepEqual(got, want, label);
      streamed++;
    }
    assert.ok(streamed > 300);
  });

  it('closes every cursor when the consumer stops early, and refuses writes', async () => {
    let seen = 0;
    for await (const _ of db.stream('SELECT id FROM t_order ORDER BY amount, id', [], {
      batchSize: 5,
    })) {
      if (++seen === 12) break;
    }
    assert.equal(seen, 12);
    for (const i of [0, 1]) {
      const c = new pg.Client({ connectionString: cluster.url(i) });
      await c.connect();
      const open = await c.query(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'",
      );
      await c.end();
      assert.equal(open.rows[0].n, 0, `instance ${i}: no transaction left open`);
    }
    await assert.rejects(
      async () => {
        for await (const _ of db.stream('UPDATE t_order SET qty = qty')) break;
      },
      (err: unknown) => isPeakError(err, ErrorCodes.DATA_UNSUPPORTED),
    );
  });
});

describe('data: differential on time-interval shards (range pruning)', () => {
  it('prunes shards by time ranges without losing a row', async () => {
    const random = seededRandom(99);
    const time = () =>
      random() < 0.5
        ? pick(random, eventTimes)
        : new Date(
            Date.UTC(2025, 11, 15) + Math.floor(random() * 140 * 24) * 3_600_000,
          ).toISOString();
    let pruned = 0;
    for (let i = 0; i < 400; i++) {
      const params: unknown[] = [];
      const p = (v: unknown) => {
        params.push(v);
        return `$${params.length}`;
      };
      const cond = pick(random, [
        () => `at >= ${p(time())} AND at < ${p(time())}`,
        () => `at BETWEEN ${p(time())} AND ${p(time())}`,
        () => `at > ${p(time())}`,
        () => `at <= ${p(time())}`,
        () => `at = ${p(pick(random, eventTimes))}`,
        () => `at IN (${p(pick(random, eventTimes))}, ${p(pick(random, eventTimes))})`,
        () => `(at < ${p(time())} OR kind = ${p('buy')})`,
      ])();
      const shape = pick(random, [
        () =>
          `SELECT id, at, kind, v FROM t_event WHERE ${cond} ORDER BY at DESC, id LIMIT ${p(1 + Math.floor(random() * 20))}`,
        () =>
          `SELECT kind, count(*), sum(v), min(at), max(at), avg(v) FROM t_event WHERE ${cond} GROUP BY kind ORDER BY kind`,
        () => `SELECT count(*) FROM t_event WHERE ${cond}`,
      ])();
      const label = `event query #${i}: ${shape} ${JSON.stringify(params)}`;
      const expected = await reference.query(shape, params);
      const actual = await db.query(shape, params);
      if (actual.route.units.flatMap((u) => u.shards ?? [u.shard]).length < 4) pruned++;
      assert.deepEqual(normalise(actual.rows), normalise(expected.rows), label);
    }
    assert.ok(pruned > 100, `range conditions pruned shards in ${pruned} queries`);
  });
});

describe('data: routing facts', () => {
  it("routes a gene id lookup to the buyer's shard and finds the row", async () => {
    const genes = new GeneIdGenerator({ layout: db.layout, table: 't_order', workerId: 3 });
    for (const buyer of [1, 7, 123456789, 4242]) {
      const id = genes.next(buyer);
      const byBuyer = db.route('SELECT * FROM t_order WHERE buyer_id = $1', [buyer]);
      const byId = db.route('SELECT * FROM t_order WHERE id = $1', [id]);
      assert.equal(byBuyer.units.length, 1);
      assert.deepEqual(
        byId.units.map((u) => [u.dataSource, u.shard]),
        byBuyer.units.map((u) => [u.dataSource, u.shard]),
        `buyer ${buyer}`,
      );
      await db.query(
        'INSERT INTO t_order (id, buyer_id, region_id, amount, qty, status, created_at) VALUES ($1, $2, 1, 1, 1, $3, now())',
        [id, buyer, 'created'],
      );
      const found = await db.query<{ buyer_id: string }>(
        'SELECT buyer_id FROM t_order WHERE id = $1',
        [id],
      );
      assert.deepEqual(found.rows, [{ buyer_id: String(buyer) }]);
      assert.equal(found.route.units.length, 1);
      // An id made for another buyer's gene is time-ordered too.
      assert.ok(genes.timestampOf(id) <= Date.now());
      await db.query('DELETE FROM t_order WHERE id = $1', [id]);
    }
  });

  it('rejects bad SQL with an error naming the statement and the reason', async () => {
    const cases: [string, unknown[], string, RegExp][] = [
      ['SELEC * FROM t_order', [], ErrorCodes.DATA_SQL, /syntax error.*SELEC \* FROM t_order/],
      ['SELECT 1; SELECT 2', [], ErrorCodes.DATA_SQL, /exactly one SQL statement/],
      [
        'UPDATE t_order SET buyer_id = $1 WHERE id = $2',
        [1, 2],
        ErrorCodes.DATA_UNSUPPORTED,
        /sharding column t_order\.buyer_id/,
      ],
      [
        'INSERT INTO t_order (amount) VALUES ($1)',
        [1],
        ErrorCodes.DATA_ROUTE,
        /no value for its sharding column buyer_id/,
      ],
      [
        'SELECT * FROM t_order o JOIN t_unknown u ON u.id = o.id',
        [],
        ErrorCodes.DATA_UNSUPPORTED,
        /t_unknown is not declared/,
      ],
      [
        'SELECT DISTINCT ON (status) status, count(*) FROM t_order GROUP BY status',
        [],
        ErrorCodes.DATA_UNSUPPORTED,
        /DISTINCT ON with aggregates.*statement: SELECT DISTINCT ON \(status\)/,
      ],
      [
        'SELECT status, count(*) FROM t_order GROUP BY status HAVING sum(qty) > $1',
        [],
        ErrorCodes.DATA_ROUTE,
        /uses \$1 but 0 parameters/,
      ],
      [
        "SELECT string_agg(status, ',') FROM t_order",
        [],
        ErrorCodes.DATA_UNSUPPORTED,
        /string_agg/,
      ],
      [
        'SELECT * FROM t_order WHERE buyer_id = $1',
        [],
        ErrorCodes.DATA_ROUTE,
        /uses \$1 but 0 parameters/,
      ],
      [
        'CREATE TABLE x (a int)',
        [],
        ErrorCodes.DATA_UNSUPPORTED,
        /only SELECT, INSERT, UPDATE and DELETE/,
      ],
    ];
    for (const [sql, params, code, pattern] of cases) {
      await assert.rejects(db.query(sql, params), (err: unknown) => {
        assert.ok(isPeakError(err, code as never), `${sql}: ${(err as Error).message}`);
        assert.match((err as Error).message, pattern);
        return true;
      });
    }
  });

  it('names the data source whose primary cannot be reached, and validates connections', async () => {
    await assert.rejects(
      ShardedDatabase.connect({
        layout: LAYOUT,
        connections: {
          ds0: { primary: cluster.url(0) },
          ds1: { primary: 'postgres://peak:x@127.0.0.1:1/none' },
        },
      }),
      (err: unknown) =>
        isPeakError(err, ErrorCodes.DB_UNREACHABLE) &&
        /data source ds1: cannot reach its primary/.test((err as Error).message),
    );
    await assert.rejects(
      ShardedDatabase.connect({
        layout: LAYOUT,
        connections: { ds0: { primary: cluster.url(0) } },
      }),
      (err: unknown) =>
        isPeakError(err, ErrorCodes.DATA_LAYOUT) && /connections\.ds1/.test((err as Error).message),
    );
  });

  it('honours the call context deadline', async () => {
    await assert.rejects(
      runWithContext(createContext({ deadline: Date.now() - 5 }), () =>
        db.query('SELECT id FROM t_order WHERE buyer_id = $1', [1]),
      ),
      (err: unknown) =>
        isPeakError(err, ErrorCodes.DEADLINE_EXCEEDED) &&
        /work was not started/.test((err as Error).message),
    );
    // A statement that cannot finish while this test holds the lock it waits for (on both
    // data sources, wherever it routes): the answer can only come from the deadline, and
    // it must come while the statement is still blocked.
    const holders = [new pg.Client(cluster.url(0)), new pg.Client(cluster.url(1))];
    try {
      for (const h of holders) {
        await h.connect();
        await h.query('BEGIN');
        await h.query('SELECT pg_advisory_xact_lock(4242)');
      }
      await assert.rejects(
        runWithContext(createContext({ timeoutMs: 300 }), () =>
          db.query('SELECT pg_advisory_xact_lock(4242)'),
        ),
        (err: unknown) =>
          isPeakError(err, ErrorCodes.DEADLINE_EXCEEDED) &&
          /deadline passed while waiting/.test((err as Error).message),
      );
    } finally {
      for (const h of holders) await h.end();
    }
  });

  it('never puts a value into SQL text: every value stays a parameter', () => {
    const evil = "x'); DROP TABLE t_order; --";
    const plan = db.route(
      'SELECT * FROM t_order WHERE buyer_id IN ($1, $2) AND status = $3 LIMIT $4',
      [1, 2, evil, 5],
    );
    for (const u of plan.units) {
      assert.ok(!u.sql.includes('DROP'), u.sql);
      assert.ok(u.params.includes(evil));
    }
  });
});

describe('data: transactions', () => {
  it('commits and rolls back a single-shard transaction, and shares its client', async () => {
    const genes = new GeneIdGenerator({ layout: db.layout, table: 't_order' });
    const buyer = 9001;
    const id = genes.next(buyer);
    await db.transaction(async (tx) => {
      await tx.query(
        'INSERT INTO t_order (id, buyer_id, region_id, amount, qty, status, created_at) VALUES ($1, $2, 1, 5, 1, $3, now())',
        [id, buyer, 'created'],
      );
      await tx.query(
        'INSERT INTO t_order_item (id, order_id, buyer_id, sku, qty) VALUES ($1, $2, $3, $4, 1)',
        [900_000_001, id, buyer, 'sku-tx'],
      );
      // The raw client is inside the same transaction: what mq's sendInTransaction(client, …)
      // needs (its SqlClient type must accept it: this line stops compiling if it drifts).
      const forMq: SqlClient = tx.client;
      assert.ok(forMq);
      const seen = await tx.client.query(
        `SELECT count(*)::int AS n FROM ${db.route('SELECT 1 FROM t_order WHERE buyer_id = $1', [buyer]).units[0]!.sql.match(/FROM (\S+)/)![1]} WHERE id = $1`,
        [String(id)],
      );
      assert.equal(seen.rows[0]?.n, 1);
    });
    assert.equal((await db.query('SELECT id FROM t_order WHERE id = $1', [id])).rows.length, 1);

    const id2 = genes.next(buyer);
    await assert.rejects(
      db.transaction(async (tx) => {
        await tx.query(
          'INSERT INTO t_order (id, buyer_id, region_id, amount, qty, status, created_at) VALUES ($1, $2, 1, 5, 1, $3, now())',
          [id2, buyer, 'created'],
        );
        throw new Error('business rule failed');
      }),
      /business rule failed/,
    );
    assert.equal((await db.query('SELECT id FROM t_order WHERE id = $1', [id2])).rows.length, 0);
    await db.query('DELETE FROM t_order_item WHERE buyer_id = $1', [buyer]);
    await db.query('DELETE FROM t_order WHERE buyer_id = $1', [buyer]);
  });

  it('refuses a statement routed to another shard database inside a transaction', async () => {
    // Find two buyers on different data sources.
    const dsOf = (b: number) =>
      db.route('SELECT 1 FROM t_order WHERE buyer_id = $1', [b]).units[0]!.dataSource;
    const a = 1;
    let b = 2;
    while (dsOf(b) === dsOf(a)) b++;
    await assert.rejects(
      db.transaction(async (tx) => {
        await tx.query('UPDATE t_order SET qty = qty WHERE buyer_id = $1', [a]);
        await tx.query('UPDATE t_order SET qty = qty WHERE buyer_id = $1', [b]);
      }),
      (err: unknown) =>
        isPeakError(err, ErrorCodes.DATA_CROSS_SHARD) &&
        /is bound to ds/.test((err as Error).message),
    );
    await assert.rejects(
      db.transaction((tx) => tx.query('SELECT count(*) FROM t_order')),
      (err: unknown) => isPeakError(err, ErrorCodes.DATA_CROSS_SHARD),
    );
    // Explicitly best-effort: allowed.
    const n = await db.transaction(
      (tx) => tx.query<{ count: string }>('SELECT count(*) FROM t_order'),
      { bestEffort: true },
    );
    assert.equal(
      n.rows[0]!.count,
      String((await reference.query('SELECT count(*) FROM t_order')).rows[0].count),
    );
    // routeBy binds up front, so the client is available before any statement.
    await db.transaction(
      async (tx) => {
        assert.equal(tx.dataSource, dsOf(b));
        await tx.client.query('SELECT 1');
      },
      { routeBy: { table: 't_order', value: b } },
    );
  });
});

describe('data: the DataSource seam', () => {
  it('runs statements and sessions through a data source, and hands out its pg pool on purpose', async () => {
    const primary = db.primary('ds1');
    assert.equal(primary.role, 'primary');
    const { rows } = await primary.query<{ db: string }>('SELECT current_database() AS db');
    // A session is one connection: what it does before COMMIT is visible only to itself.
    const session = await primary.session();
    try {
      await session.query('BEGIN');
      await session.query('CREATE TEMP TABLE seam_check (v int) ON COMMIT DROP');
      await session.query('INSERT INTO seam_check VALUES ($1)', [7]);
      const seen = await session.query<number[]>('SELECT v FROM seam_check', [], {
        rowMode: 'array',
      });
      assert.deepEqual(seen.rows, [[7]]);
      await session.query('ROLLBACK');
    } finally {
      session.release();
    }
    // The escape hatch for code that needs pg itself (mq's Outbox): the same database.
    const pool: pg.Pool = PgDataSource.from(primary).pool;
    const direct = await pool.query('SELECT current_database() AS db');
    assert.equal(direct.rows[0].db, rows[0]?.db);
    const other: DataSource = {
      role: 'primary',
      query: () => Promise.resolve({ rows: [], rowCount: 0, fields: [] }),
      isTimeout: () => false,
      session: () => Promise.reject(new Error('no sessions')),
      close: () => Promise.resolve(),
    };
    assert.throws(
      () => PgDataSource.from(other),
      (err: unknown) =>
        isPeakError(err, ErrorCodes.INVALID_ARGUMENT) &&
        /not a PgDataSource/.test((err as Error).message),
    );
    assert.throws(
      () => db.primary('ds9'),
      (err: unknown) => isPeakError(err, ErrorCodes.INVALID_ARGUMENT),
    );
  });
});

describe('data: shadow tables under stress traffic', () => {
  it('sends every stress read and write to shadow tables and changes zero real rows', async () => {
    // `peak data shadow create` builds them from the real tables; a second run finds them.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'peak-data-shadow-'));
    try {
      const file = path.join(dir, 'layout.json');
      await writeFile(
        file,
        JSON.stringify({
          ...LAYOUT,
          connections: { ds0: { primary: cluster.url(0) }, ds1: { primary: cluster.url(1) } },
        }),
      );
      let out = '';
      const stdout = new PassThrough();
      stdout.on('data', (b) => {
        out += b;
      });
      const code = await runCli(
        rootCommand,
        ['data', 'shadow', 'create', '--layout', file, '--json'],
        {
          stdout,
          stderr: new PassThrough(),
          env: {},
        },
      );
      assert.equal(code, 0, out);
      const created = JSON.parse(out).tables as { created: boolean; shadow: string }[];
      assert.equal(created.length, 8 + 8 + 4 + 2);
      assert.ok(created.every((t) => t.created));
      assert.ok(created.some((t) => t.shadow === 't_order_7_shadow'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const made = await db.createShadowTables();
    assert.equal(made.length, 8 + 8 + 4 + 2);
    assert.ok(
      made.every((t) => !t.created),
      'already there',
    );
    // LIKE ... INCLUDING ALL copied the primary key.
    const pk = await db
      .primary('ds1')
      .query("SELECT count(*)::int AS n FROM pg_indexes WHERE tablename = 't_order_7_shadow'");
    assert.equal(pk.rows[0]?.n, 1);
    const fingerprint = async () => {
      const out: string[] = [];
      for (const t of db.physicalTables()) {
        const r = await db
          .primary(t.dataSource)
          .query(
            `SELECT md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')) AS h, count(*) AS n FROM ${t.table} x`,
          );
        out.push(`${t.dataSource}.${t.table}:${r.rows[0]?.n}:${r.rows[0]?.h}`);
      }
      return out;
    };
    const before = await fingerprint();
    const genes = new GeneIdGenerator({ layout: db.layout, table: 't_order', workerId: 9 });
    const stress = createContext({ stress: true });
    await runWithContext(stress, async () => {
      for (let buyer = 1; buyer <= 30; buyer++) {
        const id = genes.next(buyer);
        await db.query(
          'INSERT INTO t_order (id, buyer_id, region_id, amount, qty, status, created_at) VALUES ($1, $2, 1, 9, 1, $3, now())',
          [id, buyer, 'stress'],
        );
        await db.transaction(async (tx) => {
          await tx.query(
            'INSERT INTO t_order_item (id, order_id, buyer_id, sku, qty) VALUES ($1, $2, $3, $4, 1)',
            [800_000_000 + buyer, id, buyer, 'stress'],
          );
          await tx.query('UPDATE t_order SET qty = qty + 1 WHERE id = $1', [id]);
        });
      }
      await db.query('UPDATE t_order SET status = $1', ['stress-all']);
      await db.query('DELETE FROM t_order WHERE buyer_id < $1', [10]);
      await db.query('INSERT INTO t_region (id, name) VALUES ($1, $2)', [99, 'stress']);
      const seen = await db.query<{ count: string }>('SELECT count(*) FROM t_order');
      assert.equal(seen.rows[0]!.count, String(30 - 9), 'stress reads see only shadow rows');
      const plan = db.route(
        'SELECT * FROM t_order o JOIN t_region r ON r.id = o.region_id WHERE o.buyer_id = $1',
        [3],
      );
      assert.match(plan.units[0]!.sql, /t_order_\d+_shadow AS o JOIN t_region_shadow AS r/);
    });
    assert.deepEqual(await fingerprint(), before, 'real tables unchanged');
    const normal = await db.query<{ count: string }>(
      'SELECT count(*) FROM t_order WHERE status = $1',
      ['stress-all'],
    );
    assert.equal(normal.rows[0]!.count, '0');
  });
});

describe('data: read/write split and statement events', () => {
  it('reads from replicas, writes and transactions on the primary, skips lagging replicas', async () => {
    const events: StatementEvent[] = [];
    // Stand-in replicas: a second pool to the same instance (no streaming replication here),
    // and an unreachable one whose lag is unknown (Infinity), which must never be used.
    const split = await ShardedDatabase.connect({
      layout: LAYOUT,
      connections: {
        ds0: {
          primary: cluster.url(0),
          replicas: [cluster.url(0), 'postgres://nobody:x@127.0.0.1:1/none'],
        },
        ds1: {
          primary: cluster.url(1),
          replicas: [cluster.url(1)],
          maxReplicaLagMs: 500,
        },
      },
      poolSize: 2,
      collector: { record: (e) => events.push(e) },
      slowThresholdMs: 0,
    });
    try {
      assert.deepEqual(split.replicaLag().ds0?.[1], Number.POSITIVE_INFINITY);
      assert.deepEqual(split.replicaLag().ds1, [0]);
      for (let b = 1; b <= 20; b++)
        await split.query('SELECT id FROM t_order WHERE buyer_id = $1', [b]);
      const reads = events.filter((e) => e.sql.startsWith('SELECT id'));
      assert.equal(reads.length, 20);
      assert.ok(
        reads.every((e) => e.role === 'replica'),
        'reads go to replicas',
      );
      events.length = 0;
      await split.query('UPDATE t_order SET qty = qty WHERE buyer_id = $1', [1]);
      await split.query('SELECT id FROM t_order WHERE buyer_id = $1 FOR UPDATE', [1]);
      await split.transaction((tx) => tx.query('SELECT id FROM t_order WHERE buyer_id = $1', [1]));
      assert.ok(
        events.length === 3 && events.every((e) => e.role === 'primary'),
        JSON.stringify(events.map((e) => e.role)),
      );
      const e = events[0]!;
      assert.equal(e.sql, 'UPDATE t_order SET qty = qty WHERE buyer_id = $1');
      assert.match(e.fingerprint, /^[0-9a-f]{16}$/);
      assert.equal(
        e.fingerprint,
        split.router.fingerprint('update  t_order set qty = qty\n where buyer_id = $1'),
      );
      assert.ok(e.shard !== undefined && e.slow && e.durationMs >= 0 && e.rows >= 0);
      assert.match(e.physicalSql, /UPDATE t_order_\d+ AS t_order/);
    } finally {
      await split.close();
    }
    const lagging = await ShardedDatabase.connect({
      layout: LAYOUT,
      connections: {
        ds0: {
          primary: cluster.url(0),
          replicas: [cluster.url(0)],
          maxReplicaLagMs: 1000,
          replicaLagQuery: 'SELECT 5000 AS lag_ms',
        },
        ds1: { primary: cluster.url(1) },
      },
      poolSize: 1,
      collector: { record: (e) => events.push(e) },
    });
    try {
      assert.deepEqual(lagging.replicaLag().ds0, [5000]);
      events.length = 0;
      await lagging.query('SELECT count(*) FROM t_region');
      assert.deepEqual(
        events.map((e) => [e.dataSource, e.role]),
        [['ds0', 'primary']],
        'a replica over the maximum lag is not read',
      );
    } finally {
      await lagging.close();
    }
  });
});
