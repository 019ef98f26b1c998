/**
 * core/pg-timestamps.ts on a real PostgreSQL: timestamptz text as PostgreSQL writes it in
 * several time zones (whole hours, half hours, a historical offset with seconds, negative
 * ones) and with every fraction length, read to the same millisecond as PostgreSQL's own
 * epoch (truncated, as node-pg's parser truncates); the values the fast path leaves alone
 * (infinity, BC, years below 1000, another DateStyle) are what node-pg's parser gives.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { parseTimestamptz, peakPgTypes, timestamptzMs } from '../src/core/pg-timestamps.js';
import { quietAtShutdown } from './support/pg-pool.js';
import { type PostgresCluster, startPostgresCluster } from './support/postgres-cluster.js';

const nodePg = pg.types.getTypeParser(1184, 'text') as (s: string) => unknown;

describe('core: timestamptz text read by character codes', { timeout: 60_000 }, () => {
  let cluster: PostgresCluster;
  let client: pg.Client;

  before(async () => {
    cluster = await startPostgresCluster(1);
    client = new pg.Client({ connectionString: cluster.url(0) });
    await client.connect();
  });

  after(async () => {
    await client?.end();
    await cluster?.stop();
  });

  it('reads what PostgreSQL writes, in every zone and fraction, to its own epoch millisecond', async () => {
    const zones = [
      'UTC',
      'Asia/Kolkata', // +05:30
      'America/St_Johns', // -03:30 / -02:30
      'America/Los_Angeles',
      'Europe/Amsterdam', // +00:19:32 before 1937: an offset with seconds
      'Pacific/Chatham', // +13:45
    ];
    const values = [
      '2026-12-06 20:27:22.570123+00',
      '2026-12-06 20:27:22.57+00',
      '2026-12-06 20:27:22.5+00',
      '2026-12-06 20:27:22+00',
      '2026-12-06 20:27:22.999999+00',
      '2026-12-06 20:27:22.000001+00',
      '2024-02-29 23:59:59.123+00',
      '1970-01-01 00:00:00+00',
      '1931-07-01 12:00:00.25+00',
      '9999-12-31 23:59:59.999999+00',
      '1000-01-01 00:00:00+00',
    ];
    let read = 0;
    for (const zone of zones) {
      await client.query(`SET TimeZone = '${zone}'`);
      for (const v of values) {
        const { rows } = await client.query<{ t: string; ms: string }>({
          text: `SELECT $1::timestamptz::text AS t,
                        floor(extract(epoch FROM $1::timestamptz) * 1000)::bigint::text AS ms`,
          values: [v],
        });
        const { t, ms } = rows[0]!;
        const parsed = parseTimestamptz(t);
        assert.ok(parsed instanceof Date, t);
        assert.equal(parsed.getTime(), Number(ms), `${zone}: ${t} (from ${v})`);
        // Years 1000-9999 are the fast path's; 10000 (9999-12-31 east of UTC) and 0999 (1000-01-01
        // west of it) are node-pg's.
        const fast = timestamptzMs(t);
        if (/^[1-9]\d{3}-/.test(t))
          assert.equal(fast, Number(ms), `${zone}: ${t} read by character codes`);
        else assert.equal(fast, undefined, t);
        if (fast !== undefined) read++;
      }
    }
    // Every value but the first and last instants in the zones away from UTC.
    assert.ok(read >= zones.length * (values.length - 2), `${read} read by character codes`);
  });

  it("leaves the other shapes to node-pg's parser, whose answer it gives", async () => {
    await client.query(`SET TimeZone = 'UTC'`);
    const odd = ['infinity', '-infinity', '0044-03-15 12:00:00+00 BC', '0099-01-01 00:00:00+00'];
    for (const v of odd) {
      const { rows } = await client.query<{ t: string }>('SELECT $1::timestamptz::text AS t', [v]);
      const t = rows[0]!.t;
      assert.equal(timestamptzMs(t), undefined, `${t} is not read by the fast path`);
      assert.deepEqual(parseTimestamptz(t), nodePg(t), t);
    }
    // Another DateStyle (a session that changed it): not the ISO shape, node-pg's answer.
    await client.query(`SET DateStyle = 'SQL, DMY'`);
    const { rows } = await client.query<{ t: string }>(
      `SELECT '2026-12-06 20:27:22.5+00'::timestamptz::text AS t`,
    );
    assert.equal(timestamptzMs(rows[0]!.t), undefined);
    await client.query(`SET DateStyle = 'ISO, MDY'`);
    // Text that is nearly the shape: refused, not misread.
    for (const bad of [
      '2026-12-06 20:27:22.+00',
      '2026-12-06 20:27:22+0',
      '2026-12-06 20:27:22+00:3',
      '2026-12-06 20:27:22+00:30:1',
      '2026-12-06T20:27:22+00',
      '2026-13-06 20:27:22+00',
      '2026-12-06 20:27:22+00 ',
      '2026-12-06 24:27:22+00',
      '2026-12-32 20:27:22+00',
      '2026-12-06 20:27:22',
      '2026-12-06 20:27:22.123',
    ])
      assert.equal(timestamptzMs(bad), undefined, bad);
  });

  it('a pool given peakPgTypes reads timestamptz through it, and nothing else changes', async () => {
    const pool = quietAtShutdown(
      new pg.Pool({ connectionString: cluster.url(0), max: 1, types: peakPgTypes }),
    );
    try {
      const { rows } = await pool.query<{ a: Date; n: number; j: { x: number }; d: Date }>(
        `SELECT '2026-12-06 20:27:22.57+05:30'::timestamptz AS a, 7::int AS n,
                '{"x":1}'::jsonb AS j, '2026-12-06'::date AS d`,
      );
      const r = rows[0]!;
      assert.equal(r.a.toISOString(), '2026-12-06T14:57:22.570Z');
      assert.equal(r.n, 7);
      assert.deepEqual(r.j, { x: 1 });
      assert.ok(r.d instanceof Date);
      // The process-wide parser is untouched.
      assert.equal(pg.types.getTypeParser(1184, 'text'), nodePg);
    } finally {
      await pool.end();
    }
  });
});
