/**
 * `peak data route` end to end through the real command tree: human and JSON output, and
 * clear errors for a bad layout file, bad parameters and bad SQL.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { peakInProcess } from './support/peak-in-process.js';

let dir: string;
let layoutFile: string;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'peak-data-cli-'));
  layoutFile = path.join(dir, 'layout.json');
  await writeFile(
    layoutFile,
    JSON.stringify({
      dataSources: ['ds0', 'ds1'],
      tables: {
        t_order: { shardingColumn: 'buyer_id', algorithm: { type: 'mod' }, tablesPerDataSource: 4 },
      },
    }),
  );
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs one `peak` invocation in this process. */
function peak(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return peakInProcess(argv);
}

describe('peak data route', () => {
  it('shows the shard and the rewritten SQL', async () => {
    const r = await peak(
      'data',
      'route',
      'SELECT * FROM t_order WHERE buyer_id = $1',
      '--params',
      '[13]',
      '--layout',
      layoutFile,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /select → 1 unit \(buyer_id condition: 1 of 8 shards\)/);
    assert.match(r.stdout, /ds1 shard 5: SELECT \* FROM t_order_5 AS t_order WHERE buyer_id = \$1/);
    assert.match(r.stdout, /params \[13\]/);
  });

  it('prints the plan as JSON, including the merge of a scatter query and shadow routing', async () => {
    const r = await peak(
      'data',
      'route',
      'SELECT id FROM t_order ORDER BY id LIMIT 5',
      '--layout',
      layoutFile,
      '--stress',
      '--json',
    );
    assert.equal(r.code, 0, r.stderr);
    const plan = JSON.parse(r.stdout);
    assert.equal(plan.units.length, 2, 'one UNION ALL statement per data source');
    assert.deepEqual(plan.units[1].shards, [4, 5, 6, 7]);
    assert.equal(plan.shadow, true);
    assert.match(
      plan.units[1].sql,
      /\(SELECT id FROM t_order_7_shadow AS t_order ORDER BY id LIMIT \$1\)$/,
    );
    assert.equal(plan.merge.limit, 5);
  });

  it('explains bad input', async () => {
    const noLayout = await peak('data', 'route', 'SELECT 1');
    assert.equal(noLayout.code, 2);
    assert.match(noLayout.stderr, /--layout <file.json>/);
    const badParams = await peak(
      'data',
      'route',
      'SELECT 1',
      '--params',
      '{',
      '--layout',
      layoutFile,
    );
    assert.match(badParams.stderr, /--params must be a JSON array/);
    const badSql = await peak('data', 'route', 'SELECT FROM WHERE', '--layout', layoutFile);
    assert.equal(badSql.code, 1);
    assert.match(
      badSql.stderr,
      /cannot parse SQL: syntax error .*statement: SELECT FROM WHERE \[PEAK_DATA_SQL\]/,
    );
    const badLayout = path.join(dir, 'bad.json');
    await writeFile(badLayout, JSON.stringify({ dataSources: [] }));
    const r = await peak('data', 'route', 'SELECT 1', '--layout', badLayout);
    assert.match(
      r.stderr,
      /data layout: dataSources: list at least one data source name \[PEAK_DATA_LAYOUT\]/,
    );
  });
});
