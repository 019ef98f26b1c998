import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GeneIdGenerator } from './gene-id-generator.js';
import { createLayout } from './sharding-layout.js';

const layout = createLayout({
  dataSources: ['a', 'b'],
  tables: {
    t_order: {
      shardingColumn: 'buyer_id',
      geneColumns: ['id'],
      algorithm: { type: 'hash-mod' },
      tablesPerDataSource: 4,
    },
    t_ring: {
      shardingColumn: 'k',
      geneColumns: ['id'],
      algorithm: { type: 'consistent-hash', buckets: 256 },
    },
    t_range: { shardingColumn: 'k', algorithm: { type: 'range', bounds: [10] } },
  },
});

describe('gene ids', () => {
  it('carry the shard of the donor key, stay unique and time-ordered', () => {
    let now = Date.UTC(2026, 5, 1);
    const gen = new GeneIdGenerator({ layout, table: 't_order', workerId: 5, clock: () => now });
    const t = layout.tables.get('t_order')!;
    const seen = new Set<bigint>();
    let last = 0n;
    for (let i = 0; i < 5000; i++) {
      if (i % 100 === 0) now++;
      const buyer = i % 97;
      const id = gen.next(buyer);
      assert.ok(id > last, 'ids increase');
      last = id;
      assert.ok(!seen.has(id));
      seen.add(id);
      assert.equal(t.algorithm.shardOfGene!(gen.geneOfId(id), 8), t.algorithm.shard(buyer, 8));
    }
    assert.equal(gen.timestampOf(last), now);
    // A sequence overflow within one millisecond borrows the next millisecond, never repeats.
    const burst = new GeneIdGenerator({ layout, table: 't_order', clock: () => now });
    const ids = Array.from({ length: 1000 }, () => burst.next(1));
    assert.equal(new Set(ids).size, 1000);
  });

  it('work with consistent hashing, and refuse algorithms without genes', () => {
    const gen = new GeneIdGenerator({ layout, table: 't_ring' });
    const t = layout.tables.get('t_ring')!;
    for (let k = 0; k < 100; k++) {
      assert.equal(
        t.algorithm.shardOfGene!(gen.geneOfId(gen.next(k)), t.shardCount),
        t.algorithm.shard(k, t.shardCount),
      );
    }
    assert.throws(
      () => new GeneIdGenerator({ layout, table: 't_range' }),
      /range algorithm, which has no gene/,
    );
    assert.throws(() => new GeneIdGenerator({ layout, table: 'nope' }), /not a sharded table/);
    assert.throws(
      () => new GeneIdGenerator({ layout, table: 't_order', workerBits: 12 }),
      /sequence bits/,
    );
  });
});
