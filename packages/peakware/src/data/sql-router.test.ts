import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { ErrorCodes, isPeakError } from '../core/errors.js';
import { createLayout } from './sharding-layout.js';
import { loadSqlParser, parseStatement } from './sql-parser.js';
import { SqlRouter } from './sql-router.js';

let router: SqlRouter;
let combined: SqlRouter;

before(async () => {
  await loadSqlParser();
  const layout = createLayout({
    dataSources: ['ds0', 'ds1'],
    tables: {
      t_order: {
        shardingColumn: 'buyer_id',
        geneColumns: ['id'],
        algorithm: { type: 'mod' },
        tablesPerDataSource: 4,
      },
      t_item: { shardingColumn: 'buyer_id', algorithm: { type: 'mod' }, tablesPerDataSource: 4 },
      t_log: {
        shardingColumn: 'at',
        algorithm: { type: 'range', bounds: [100, 200, 300] },
        tablesPerDataSource: 2,
      },
    },
    bindingGroups: [['t_order', 't_item']],
    broadcastTables: ['t_region'],
  });
  router = new SqlRouter(layout, { combinePerDataSource: false });
  combined = new SqlRouter(layout);
});

const where = (sql: string, params: unknown[] = []) =>
  router.route(sql, params).units.map((u) => `${u.dataSource}:${u.shard}`);

describe('sql router', () => {
  it('routes = / IN / ANY / OR / BETWEEN / ranges to the right shards', () => {
    assert.deepEqual(where('SELECT * FROM t_order WHERE buyer_id = $1', [13]), ['ds1:5']);
    assert.deepEqual(where('SELECT * FROM t_order WHERE buyer_id IN ($1, 2, $2)', [1, 9]), [
      'ds0:1',
      'ds0:2',
    ]);
    assert.deepEqual(where('SELECT * FROM t_order WHERE buyer_id = ANY($1)', [[3, 11]]), ['ds0:3']);
    assert.deepEqual(where('SELECT * FROM t_order WHERE buyer_id = 1 OR buyer_id = 6'), [
      'ds0:1',
      'ds1:6',
    ]);
    assert.equal(where('SELECT * FROM t_order WHERE buyer_id = 1 OR amount > 5').length, 8);
    assert.deepEqual(
      where('SELECT * FROM t_order WHERE buyer_id = 1 AND buyer_id = 9 AND status = $1', ['x']),
      ['ds0:1'],
    );
    assert.deepEqual(where('SELECT * FROM t_order WHERE buyer_id BETWEEN 6 AND 9'), [
      'ds0:0',
      'ds0:1',
      'ds1:6',
      'ds1:7',
    ]);
    assert.deepEqual(where('SELECT * FROM t_log WHERE at >= $1 AND at < $2', [150, 250]), [
      'ds0:1',
      'ds1:2',
    ]);
    assert.deepEqual(where('SELECT * FROM t_log WHERE $1 > at', [50]), ['ds0:0']);
    assert.deepEqual(where('SELECT * FROM t_order WHERE buyer_id = $1::bigint', ['4']), ['ds1:4']);
    // An id carries its buyer's gene (low 8 bits): 0x105 → gene 5 → shard 5.
    assert.deepEqual(where('SELECT * FROM t_order o WHERE o.id = $1', ['261']), ['ds1:5']);
    // Another table's column of the same name does not route.
    assert.equal(where('SELECT * FROM t_order o WHERE x.buyer_id = 1').length, 8);
  });

  it('rewrites table names in the tree, keeping qualified columns valid', () => {
    const plan = router.route(
      'SELECT t_order.id, i.sku FROM t_order JOIN t_item i ON i.buyer_id = t_order.buyer_id JOIN t_region ON true WHERE t_order.buyer_id = $1',
      [2],
    );
    assert.equal(
      plan.units[0]!.sql,
      'SELECT t_order.id, i.sku FROM t_order_2 AS t_order JOIN t_item_2 AS i ON i.buyer_id = t_order.buyer_id JOIN t_region ON true WHERE t_order.buyer_id = $1',
    );
    const shadow = router.route('SELECT * FROM t_order WHERE buyer_id = $1', [2], true);
    assert.equal(
      shadow.units[0]!.sql,
      'SELECT * FROM t_order_2_shadow AS t_order WHERE buyer_id = $1',
    );
    assert.ok(shadow.shadow);
    // A string table name inside a literal is not a table: it is never touched.
    const lit = router.route("SELECT 't_order' AS t_order FROM t_order WHERE buyer_id = 1");
    assert.match(lit.units[0]!.sql, /SELECT 't_order' AS t_order FROM t_order_1 AS t_order/);
    // CTE names are not tables (one read once in FROM goes in as the subquery it is; one
    // read twice stays as written).
    const cte = router.route(
      'WITH x AS (SELECT 1 AS one) SELECT * FROM t_order, x WHERE buyer_id = 3',
    );
    assert.equal(
      cte.units[0]!.sql,
      'SELECT * FROM t_order_3 AS t_order, ( SELECT 1 AS one ) AS x WHERE buyer_id = 3',
    );
    const twice = router.route(
      'WITH x AS (SELECT 1 AS one) SELECT * FROM t_order, x, x AS y WHERE buyer_id = 3',
    );
    assert.equal(
      twice.units[0]!.sql,
      'WITH x AS (SELECT 1 AS one) SELECT * FROM t_order_3 AS t_order, x, x AS y WHERE buyer_id = 3',
    );
  });

  it('caches the parse: the same text is analysed once and rendered once per shard', () => {
    const sql = 'SELECT amount FROM t_order WHERE buyer_id = $1';
    const before = router.cacheStats();
    for (let i = 0; i < 50; i++) router.route(sql, [i]);
    const after = router.cacheStats();
    assert.equal(after.misses - before.misses, 1, 'parsed once');
    assert.equal(after.hits - before.hits, 49);
    const a = router.route(sql, [1]).units[0]!.sql;
    const b = router.route(sql, [9]).units[0]!.sql;
    assert.equal(a, b); // same shard (1): the cached string
    assert.notEqual(router.route(sql, [2]).units[0]!.sql, a);
  });

  it('splits a multi-row INSERT per shard with renumbered parameters', () => {
    const plan = router.route(
      "INSERT INTO t_order (id, buyer_id, note) VALUES ($1, $2, $3), ($4, $5, $3), ($6, $7, 'x') RETURNING id",
      [10, 1, 'n', 11, 2, 12, 9],
    );
    assert.deepEqual(
      plan.units.map((u) => [u.shard, u.sql, u.params]),
      [
        [
          1,
          "INSERT INTO t_order_1 AS t_order (id, buyer_id, note) VALUES ($1, $2, $3), ($4, $5, 'x') RETURNING id",
          [10, 1, 'n', 12, 9],
        ],
        [
          2,
          'INSERT INTO t_order_2 AS t_order (id, buyer_id, note) VALUES ($1, $2, $3) RETURNING id',
          [11, 2, 'n'],
        ],
      ],
    );
    // The cached tree is intact afterwards.
    const again = router.route(
      "INSERT INTO t_order (id, buyer_id, note) VALUES ($1, $2, $3), ($4, $5, $3), ($6, $7, 'x') RETURNING id",
      [10, 1, 'n', 11, 1, 12, 1],
    );
    assert.equal(again.units.length, 1);
    assert.match(
      again.units[0]!.sql,
      /VALUES \(\$1, \$2, \$3\), \(\$4, \$5, \$3\), \(\$6, \$7, 'x'\)/,
    );
    // Gene column instead of the sharding column.
    assert.deepEqual(
      router
        .route('INSERT INTO t_order (id, amount) VALUES ($1, 1)', ['262'])
        .units.map((u) => u.shard),
      [6],
    );
  });

  it('plans scatter SELECTs: LIMIT pushdown, hidden sort columns, AVG as SUM + COUNT', () => {
    const plan = router.route(
      'SELECT id FROM t_order ORDER BY amount DESC LIMIT $1 OFFSET $2',
      [10, 5],
    );
    assert.equal(plan.units.length, 8);
    assert.equal(
      plan.units[0]!.sql,
      'SELECT id, amount AS __peak_0 FROM t_order_0 AS t_order ORDER BY amount DESC LIMIT $1',
    );
    assert.deepEqual(plan.units[0]!.params, ['15']);
    assert.deepEqual(
      plan.merge && {
        limit: plan.merge.limit,
        offset: plan.merge.offset,
        hidden: plan.merge.hiddenCount,
      },
      {
        limit: 10,
        offset: 5,
        hidden: 1,
      },
    );
    const agg = router.route(
      'SELECT status, avg(amount) FROM t_order GROUP BY status ORDER BY 2 DESC LIMIT 3',
    );
    assert.equal(
      agg.units[0]!.sql,
      'SELECT status, sum(amount) AS avg, count(amount) AS __peak_0 FROM t_order_0 AS t_order GROUP BY status',
    );
    assert.deepEqual(agg.merge?.columns, [
      { kind: 'key' },
      { kind: 'avg', countColumn: -1 },
      { kind: 'count' },
    ]);
    assert.deepEqual(agg.merge?.orderBy, [{ column: 1, desc: true, nullsFirst: true }]);
  });

  it("combines a data source's shards into one UNION ALL round trip", () => {
    const plan = combined.route(
      'SELECT id FROM t_order WHERE buyer_id IN (1, 2, 6) ORDER BY id LIMIT 2',
      [],
    );
    assert.deepEqual(
      plan.units.map((u) => [u.dataSource, u.shard, u.shards, u.sql]),
      [
        [
          'ds0',
          undefined,
          [1, 2],
          '(SELECT id FROM t_order_1 AS t_order WHERE buyer_id IN (1, 2, 6) ORDER BY id LIMIT $1) UNION ALL (SELECT id FROM t_order_2 AS t_order WHERE buyer_id IN (1, 2, 6) ORDER BY id LIMIT $1)',
        ],
        [
          'ds1',
          6,
          undefined,
          'SELECT id FROM t_order_6 AS t_order WHERE buyer_id IN (1, 2, 6) ORDER BY id LIMIT $1',
        ],
      ],
    );
    assert.equal(plan.merge?.sortInputs, true);
    // Writes are never combined.
    assert.equal(combined.route('DELETE FROM t_order WHERE buyer_id IN (1, 2)').units.length, 2);
  });

  it('routes UNION / UNION ALL: the shards of any arm, the whole operation on each shard', () => {
    // Each arm's condition: buyer 1 is shard 1, buyer 6 shard 6; the union needs both.
    const plan = router.route(
      'SELECT id, amount FROM t_order WHERE buyer_id = $1 UNION ALL SELECT id, qty FROM t_item WHERE buyer_id = $2 ORDER BY amount DESC, 1 LIMIT $3 OFFSET 2',
      [1, 6, 5],
    );
    assert.deepEqual(
      plan.units.map((u) => [u.dataSource, u.shard, u.sql, u.params]),
      [
        [
          'ds0',
          1,
          'SELECT id, amount FROM t_order_1 AS t_order WHERE buyer_id = $1 UNION ALL SELECT id, qty FROM t_item_1 AS t_item WHERE buyer_id = $2 ORDER BY amount DESC, 1 LIMIT $3',
          [1, 6, '7'],
        ],
        [
          'ds1',
          6,
          'SELECT id, amount FROM t_order_6 AS t_order WHERE buyer_id = $1 UNION ALL SELECT id, qty FROM t_item_6 AS t_item WHERE buyer_id = $2 ORDER BY amount DESC, 1 LIMIT $3',
          [1, 6, '7'],
        ],
      ],
    );
    assert.deepEqual(plan.merge?.orderBy, [
      { column: 1, desc: true, nullsFirst: true },
      { column: 0, desc: false, nullsFirst: false },
    ]);
    assert.equal(plan.merge?.distinct, undefined);
    assert.equal(plan.merge?.limit, 5);
    assert.equal(plan.merge?.offset, 2);
    // UNION drops repeats across shards too; an arm over a broadcast table is fine under it.
    const union = router.route(
      'SELECT region_id AS id FROM t_order UNION SELECT id FROM t_region ORDER BY id',
    );
    assert.equal(union.units.length, 8);
    assert.equal(union.merge?.distinct, true);
    // Every arm selecting its sharding key at one position: equal rows share a shard, so
    // INTERSECT / EXCEPT run shard by shard and nothing repeats across shards.
    const local = router.route(
      'SELECT buyer_id, id FROM t_order o WHERE o.amount > $1 EXCEPT SELECT i.buyer_id, i.order_id FROM t_item i ORDER BY 1, 2',
      [5],
    );
    assert.equal(local.units.length, 8);
    assert.equal(local.merge?.distinct, undefined);
    assert.deepEqual(
      local.merge?.orderBy.map((o) => o.column),
      [0, 1],
    );
    assert.match(
      local.units[3]!.sql,
      /^SELECT buyer_id, id FROM t_order_3 AS o WHERE o\.amount > \$1 EXCEPT SELECT i\.buyer_id, i\.order_id FROM t_item_3 AS i ORDER BY 1, 2$/,
    );
    // Arms on one shard: the statement goes there whole, INTERSECT included.
    assert.deepEqual(
      where(
        'SELECT id FROM t_order WHERE buyer_id = $1 INTERSECT SELECT id FROM t_item WHERE buyer_id = $1',
        [13],
      ),
      ['ds1:5'],
    );
  });

  it('routes a subquery in FROM: by its own WHERE, and whole on each shard when row-wise or grouped by the key', () => {
    assert.deepEqual(where('SELECT * FROM (SELECT id FROM t_order WHERE buyer_id = $1) x', [13]), [
      'ds1:5',
    ]);
    // The outer WHERE names the derived table's column, whatever it is called inside.
    assert.equal(
      where('SELECT * FROM (SELECT region_id AS buyer_id, id FROM t_order) x WHERE buyer_id = 5')
        .length,
      8,
    );
    assert.deepEqual(
      where(
        'SELECT x.id FROM t_order o JOIN (SELECT id, buyer_id FROM t_item) x ON x.id = o.id AND x.buyer_id = o.buyer_id WHERE o.buyer_id = $1',
        [13],
      ),
      ['ds1:5'],
    );
    const top = router.route(
      'SELECT * FROM (SELECT buyer_id, sum(amount) AS s FROM t_order GROUP BY buyer_id) x ORDER BY s DESC LIMIT 3',
    );
    assert.equal(top.units.length, 8);
    assert.equal(top.merge?.limit, 3);
    assert.match(
      top.units[0]!.sql,
      /FROM \( SELECT buyer_id, sum\(amount\) AS s FROM t_order_0 AS t_order GROUP BY buyer_id \) AS x/,
    );
  });

  it('WITH read once in FROM is a subquery in FROM: its WHERE narrows, the outer WHERE names its columns', () => {
    // Its own WHERE on the key: one shard, the CTE inlined.
    const one = router.route(
      'WITH x AS (SELECT buyer_id, amount FROM t_order WHERE buyer_id = $1) SELECT * FROM x',
      [13],
    );
    assert.deepEqual(
      one.units.map((u) => `${u.dataSource}:${u.shard}`),
      ['ds1:5'],
    );
    assert.match(
      one.units[0]!.sql,
      /FROM \( SELECT buyer_id, amount FROM t_order_5 AS t_order WHERE buyer_id = \$1 \) AS x/,
    );
    // buyer_id here is a region (renamed): every shard, not buyer 3's.
    assert.equal(
      where(
        'WITH x AS (SELECT region_id AS buyer_id FROM t_order) SELECT * FROM x WHERE buyer_id = 3',
      ).length,
      8,
    );
    // Read twice, or RECURSIVE: left as written; over several shards, refused.
    assert.throws(
      () =>
        router.route(
          'WITH x AS (SELECT buyer_id FROM t_order) SELECT * FROM x a JOIN x b ON a.buyer_id = b.buyer_id',
        ),
      (e: unknown) => isPeakError(e, ErrorCodes.DATA_UNSUPPORTED) && /WITH/.test(e.message),
    );
    const rec = router.route(
      'WITH RECURSIVE n AS (SELECT 1 AS i UNION ALL SELECT i + 1 FROM n WHERE i < 3) SELECT * FROM t_order, n WHERE buyer_id = $1',
      [13],
    );
    assert.equal(rec.units.length, 1);
    assert.match(rec.units[0]!.sql, /^WITH RECURSIVE n AS/);
  });

  it('refuses what cannot run over shards, naming the statement and the reason', () => {
    const cases: [string, unknown[], string, RegExp][] = [
      [
        'SELECT * FROM t_order o JOIN t_log l ON true WHERE o.buyer_id = 1',
        [],
        ErrorCodes.DATA_UNSUPPORTED,
        /sharded separately and not bound/,
      ],
      [
        "SELECT status, count(*) FROM t_order GROUP BY status HAVING status LIKE 'p%'",
        [],
        ErrorCodes.DATA_UNSUPPORTED,
        /HAVING over several shards takes .*not the operator ~~/,
      ],
      [
        'SELECT status, count(*) FROM t_order GROUP BY status HAVING count(*) + 1 > 2',
        [],
        ErrorCodes.DATA_UNSUPPORTED,
        /HAVING over several shards reads only count\/sum\/min\/max\/avg/,
      ],
      [
        'SELECT DISTINCT ON (status) status, count(*) FROM t_order GROUP BY status',
        [],
        ErrorCodes.DATA_UNSUPPORTED,
        /DISTINCT ON with aggregates or GROUP BY over several shards/,
      ],
      [
        'SELECT DISTINCT status FROM t_order ORDER BY amount',
        [],
        ErrorCodes.DATA_UNSUPPORTED,
        /ORDER BY expressions must appear in the select list/,
      ],
      [
        'SELECT id, rank() OVER (ORDER BY amount) FROM t_order',
        [],
        ErrorCodes.DATA_UNSUPPORTED,
        /a window function over several shards needs the sharding column \(buyer_id\) in its PARTITION BY/,
      ],
      [
        // Partitioned by another column, or by the key of a table it does not read.
        'SELECT id, sum(qty) OVER (PARTITION BY status) FROM t_order',
        [],
        ErrorCodes.DATA_UNSUPPORTED,
        /needs the sharding column \(buyer_id\) in its PARTITION BY/,
      ],
      [
        'SELECT id FROM t_order WINDOW w AS (PARTITION BY region_id ORDER BY id) ORDER BY row_number() OVER w',
        [],
        ErrorCodes.DATA_UNSUPPORTED,
        /in its PARTITION BY/,
      ],
      [
        'SELECT buyer_id, count(*), rank() OVER (PARTITION BY buyer_id ORDER BY count(*)) FROM t_order GROUP BY buyer_id',
        [],
        ErrorCodes.DATA_UNSUPPORTED,
        /window functions beside aggregates or GROUP BY/,
      ],
      [
        'SELECT id FROM t_order INTERSECT SELECT id FROM t_item',
        [],
        ErrorCodes.DATA_UNSUPPORTED,
        /INTERSECT over several shards \(a row and its match may live on different shards\)/,
      ],
      [
        'SELECT id FROM t_order EXCEPT ALL SELECT id FROM t_item WHERE buyer_id = 2',
        [],
        ErrorCodes.DATA_UNSUPPORTED,
        /EXCEPT over several shards/,
      ],
      [
        // The key at different positions, or from a join: not shard-local.
        'SELECT buyer_id, id FROM t_order INTERSECT SELECT id, buyer_id FROM t_item',
        [],
        ErrorCodes.DATA_UNSUPPORTED,
        /select every arm's sharding column at the same position/,
      ],
      [
        'SELECT i.buyer_id FROM t_order o LEFT JOIN t_item i ON i.buyer_id = o.buyer_id INTERSECT SELECT buyer_id FROM t_item',
        [],
        ErrorCodes.DATA_UNSUPPORTED,
        /INTERSECT over several shards/,
      ],
      [
        'SELECT id FROM t_order UNION SELECT id FROM t_item UNION ALL SELECT buyer_id FROM t_order',
        [],
        ErrorCodes.DATA_UNSUPPORTED,
        /UNION inside a UNION ALL over several shards/,
      ],
      [
        'SELECT id FROM t_order UNION ALL SELECT id FROM t_region',
        [],
        ErrorCodes.DATA_UNSUPPORTED,
        /an arm of a UNION ALL reading no sharded table would answer its rows once per shard/,
      ],
      [
        'SELECT DISTINCT status FROM t_order UNION ALL SELECT status FROM t_item',
        [],
        ErrorCodes.DATA_UNSUPPORTED,
        /DISTINCT in an arm of a UNION ALL/,
      ],
      [
        'SELECT id FROM t_order UNION (SELECT id FROM t_item ORDER BY id LIMIT 3)',
        [],
        ErrorCodes.DATA_UNSUPPORTED,
        /LIMIT \/ OFFSET in an arm of a UNION/,
      ],
      [
        'SELECT status, count(*) FROM t_order GROUP BY status UNION SELECT status, 1 FROM t_item',
        [],
        ErrorCodes.DATA_UNSUPPORTED,
        /GROUP BY in an arm of a UNION/,
      ],
      [
        'SELECT max(amount) FROM t_order UNION SELECT 1 FROM t_item',
        [],
        ErrorCodes.DATA_UNSUPPORTED,
        /the aggregate max\(\) in an arm of a UNION/,
      ],
      [
        'SELECT * FROM t_order UNION SELECT * FROM t_order ORDER BY 1',
        [],
        ErrorCodes.DATA_UNSUPPORTED,
        /first arm selects \*/,
      ],
      [
        'SELECT id, amount FROM t_order UNION SELECT id, qty FROM t_item ORDER BY amount + 1',
        [],
        ErrorCodes.DATA_UNSUPPORTED,
        /ORDER BY on a UNION names one output column or its position/,
      ],
      [
        'SELECT * FROM (SELECT status, count(*) AS n FROM t_order GROUP BY status) x',
        [],
        ErrorCodes.DATA_UNSUPPORTED,
        /need the sharding column in its GROUP BY/,
      ],
      [
        'SELECT * FROM (SELECT id FROM t_order ORDER BY amount LIMIT 3) x',
        [],
        ErrorCodes.DATA_UNSUPPORTED,
        /LIMIT \/ OFFSET in a subquery in FROM/,
      ],
      [
        // The broadcast table's rows would come again from every shard (and NOT EXISTS
        // would be judged per shard).
        'SELECT r.id FROM t_region r WHERE EXISTS (SELECT 1 FROM t_order o WHERE o.buyer_id = r.id)',
        [],
        ErrorCodes.DATA_UNSUPPORTED,
        /a sharded table read only by a subquery .* join the sharded table in FROM/,
      ],
      [
        'SELECT id FROM t_order UNION SELECT r.id FROM t_region r WHERE NOT EXISTS (SELECT 1 FROM t_item i WHERE i.buyer_id = r.id)',
        [],
        ErrorCodes.DATA_UNSUPPORTED,
        /a sharded table read only by a subquery .* in an arm of a UNION/,
      ],
      [
        'SELECT * FROM (SELECT DISTINCT status FROM t_order) x',
        [],
        ErrorCodes.DATA_UNSUPPORTED,
        /DISTINCT in a subquery in FROM/,
      ],
      [
        'SELECT count(*) + 1 FROM t_order',
        [],
        ErrorCodes.DATA_UNSUPPORTED,
        /neither a GROUP BY key nor a plain/,
      ],
      [
        'INSERT INTO t_order (id, buyer_id) SELECT 1, 2',
        [],
        ErrorCodes.DATA_UNSUPPORTED,
        /INSERT \.\.\. SELECT/,
      ],
      [
        'INSERT INTO t_order (buyer_id) VALUES (now())',
        [],
        ErrorCodes.DATA_ROUTE,
        /as an expression/,
      ],
      [
        'INSERT INTO t_order (buyer_id) VALUES ($1)',
        ['abc'],
        ErrorCodes.DATA_ROUTE,
        /row 1: mod sharding needs an integer/,
      ],
      ['INSERT INTO t_log (at) VALUES ($1)', ['x'], ErrorCodes.DATA_ROUTE, /numeric sharding key/],
      [
        'INSERT INTO t_order (id, buyer_id) VALUES (1, 2) ON CONFLICT (id) DO UPDATE SET buyer_id = 3',
        [],
        ErrorCodes.DATA_UNSUPPORTED,
        /sharding column/,
      ],
      [
        'SELECT * FROM t_order LIMIT $1',
        [-1],
        ErrorCodes.DATA_ROUTE,
        /LIMIT must be a non-negative integer/,
      ],
      ['', [], ErrorCodes.DATA_SQL, /empty SQL/],
    ];
    for (const [sql, params, code, pattern] of cases) {
      assert.throws(
        () => router.route(sql, params),
        (e: unknown) => {
          assert.ok(isPeakError(e, code as never), `${sql}: ${(e as Error).message}`);
          assert.match((e as Error).message, pattern, sql);
          if (sql !== '') assert.match((e as Error).message, /statement: /);
          return true;
        },
      );
    }
  });

  it('sends a per-data-source table with its statement to the one shard, and refuses more', () => {
    const local = new SqlRouter(
      createLayout({
        dataSources: ['ds0', 'ds1'],
        tables: {
          t_order: {
            shardingColumn: 'buyer_id',
            algorithm: { type: 'mod' },
            tablesPerDataSource: 2,
          },
        },
        localTables: ['peak_outbox.messages'],
      }),
    );
    const sql =
      'WITH m AS (INSERT INTO peak_outbox.messages (topic, wire) VALUES ($3, $4)) INSERT INTO t_order (id, buyer_id) VALUES ($1, $2)';
    const plan = local.route(sql, [1, 3, 'orders', '{}']);
    assert.equal(plan.units.length, 1);
    assert.equal(plan.units[0]!.dataSource, 'ds1');
    assert.equal(
      plan.units[0]!.sql,
      'WITH m AS (INSERT INTO peak_outbox.messages (topic, wire) VALUES ($3, $4)) INSERT INTO t_order_3 AS t_order (id, buyer_id) VALUES ($1, $2)',
    );
    // Under stress the order goes to its shadow table, the outbox row stays in the real
    // outbox (marked stress by the outbox, relayed to the shadow topic): Peakware's own
    // tables (schema peak_*) are never shadowed.
    assert.equal(
      local.route(sql, [1, 3, 'orders', '{}'], true).units[0]!.sql,
      'WITH m AS (INSERT INTO peak_outbox.messages (topic, wire) VALUES ($3, $4)) INSERT INTO t_order_3_shadow AS t_order (id, buyer_id) VALUES ($1, $2)',
    );
    // Rows for two shards would write the message twice: refused, naming the table.
    assert.throws(
      () =>
        local.route(
          'WITH m AS (INSERT INTO peak_outbox.messages (topic) VALUES ($3)) INSERT INTO t_order (id, buyer_id) VALUES ($1, 1), ($2, 2)',
          [1, 2, 'orders'],
        ),
      (e) =>
        isPeakError(e, ErrorCodes.DATA_UNSUPPORTED) &&
        /peak_outbox\.messages.*2 shards/.test(e.message),
    );
    // An undeclared table beside a sharded one is still refused.
    assert.throws(
      () => local.route('SELECT * FROM t_order JOIN other.messages ON true WHERE buyer_id = 1'),
      (e) => isPeakError(e, ErrorCodes.DATA_UNSUPPORTED) && /not declared/.test(e.message),
    );
    assert.throws(
      () =>
        createLayout({
          dataSources: ['ds0'],
          tables: {
            t: { shardingColumn: 'k', algorithm: { type: 'mod' }, tablesPerDataSource: 1 },
          },
          localTables: ['t'],
        }),
      /declared both local and sharded/,
    );
  });

  it('sends broadcast writes everywhere and broadcast reads to one data source', () => {
    assert.deepEqual(where('INSERT INTO t_region (id) VALUES (1)'), [
      'ds0:undefined',
      'ds1:undefined',
    ]);
    assert.deepEqual(where('SELECT * FROM t_region'), ['ds0:undefined']);
    assert.deepEqual(where('SELECT 1'), ['ds0:undefined']);
    assert.equal(parseStatement('SELECT 1').SelectStmt !== undefined, true);
  });
});
