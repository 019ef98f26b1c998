import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes, isPeakError } from '../core/errors.js';
import { createLayout } from './sharding-layout.js';

const ok = {
  dataSources: ['ds0', 'ds1'],
  tables: {
    t_order: {
      shardingColumn: 'buyer_id',
      algorithm: { type: 'mod' as const },
      tablesPerDataSource: 4,
    },
    t_item: {
      shardingColumn: 'buyer_id',
      algorithm: { type: 'mod' as const },
      tablesPerDataSource: 4,
    },
  },
  bindingGroups: [['t_order', 't_item']],
  broadcastTables: ['t_region'],
};

describe('sharding layout', () => {
  it('numbers shards across data sources × tables (TSharding style)', () => {
    const layout = createLayout(ok);
    const t = layout.tables.get('t_order')!;
    assert.equal(t.shardCount, 8);
    assert.deepEqual(layout.node(t, 0), { dataSource: 'ds0', table: 't_order_0', index: 0 });
    assert.deepEqual(layout.node(t, 5), { dataSource: 'ds1', table: 't_order_5', index: 5 });
    assert.equal(layout.tables.get('t_item')!.bindingGroup, 't_order');
    assert.equal(layout.shadowSuffix, '_shadow');
  });

  it('names the offending input in every validation error', () => {
    const bad: [unknown, RegExp][] = [
      [{ ...ok, dataSources: [] }, /dataSources: list at least one/],
      [{ ...ok, dataSources: ['a', 'a'] }, /duplicate name "a"/],
      [
        { ...ok, tables: { 'T-x': ok.tables.t_order } },
        /tables\.T-x: table names must be lower-case/,
      ],
      [
        { ...ok, tables: { t: { ...ok.tables.t_order, dataSources: ['ds9'] } }, bindingGroups: [] },
        /tables\.t\.dataSources: "ds9"/,
      ],
      [
        {
          ...ok,
          tables: { ...ok.tables, t_item: { ...ok.tables.t_item, tablesPerDataSource: 2 } },
        },
        /t_item and t_order are bound but differ/,
      ],
      [{ ...ok, bindingGroups: [['t_order', 'nope']] }, /nope is not a declared sharded table/],
      [{ ...ok, broadcastTables: ['t_order'] }, /declared both sharded and broadcast/],
      [
        {
          ...ok,
          tables: {
            t: {
              shardingColumn: 'k',
              geneColumns: ['id'],
              algorithm: { type: 'range', bounds: [1] },
              tablesPerDataSource: 1,
            },
          },
          bindingGroups: [],
        },
        /range algorithm cannot carry genes/,
      ],
      [
        {
          ...ok,
          tables: {
            t: {
              shardingColumn: 'k',
              geneColumns: ['id'],
              algorithm: { type: 'mod' },
              tablesPerDataSource: 3,
            },
          },
          bindingGroups: [],
        },
        /6 shards do not divide 2\^8/,
      ],
      [{ ...ok, shadowSuffix: 'shadow' }, /shadowSuffix/],
    ];
    for (const [options, pattern] of bad) {
      assert.throws(
        () => createLayout(options as never),
        (e: unknown) =>
          isPeakError(e, ErrorCodes.DATA_LAYOUT) && pattern.test((e as Error).message),
        String(pattern),
      );
    }
  });
});
