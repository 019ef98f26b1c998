/** Test support: the layout of the XA tests (accounts sharded by id over ds0 and ds1). */
import type { ShardingLayoutOptions } from '../../src/data/index.js';

/** `accounts` by id: even ids on ds0 (accounts_0), odd ids on ds1 (accounts_1). */
export const XA_LAYOUT: ShardingLayoutOptions = {
  dataSources: ['ds0', 'ds1'],
  tables: {
    accounts: { shardingColumn: 'id', algorithm: { type: 'mod' }, tablesPerDataSource: 1 },
  },
};
