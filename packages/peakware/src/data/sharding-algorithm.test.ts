import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes, isPeakError } from '../core/errors.js';
import { createAlgorithm, fnv1a32 } from './sharding-algorithm.js';

describe('sharding algorithms', () => {
  it('mod: integers of any form land alike; small ranges are enumerated, large ones scatter', () => {
    const mod = createAlgorithm({ type: 'mod' }, 8, 't');
    assert.equal(mod.shard(13, 8), 5);
    assert.equal(mod.shard('13', 8), 5);
    assert.equal(mod.shard(13n, 8), 5);
    assert.equal(mod.shard(-3, 8), 5);
    assert.deepEqual(
      mod
        .shardsForRange?.({ value: 6, inclusive: true }, { value: 9, inclusive: false }, 8)
        ?.sort(),
      [0, 6, 7],
    );
    assert.equal(
      mod.shardsForRange?.({ value: 0, inclusive: true }, { value: 100, inclusive: true }, 8),
      undefined,
    );
    assert.throws(
      () => mod.shard('abc', 8),
      (e: unknown) => isPeakError(e, ErrorCodes.DATA_ROUTE),
    );
  });

  it('hash-mod: spreads sequential keys evenly and agrees with its gene', () => {
    const alg = createAlgorithm({ type: 'hash-mod' }, 8, 't');
    const counts = new Array(8).fill(0);
    for (let k = 0; k < 8000; k++) counts[alg.shard(k, 8)]++;
    for (const c of counts) assert.ok(c > 800 && c < 1200, `uneven: ${counts}`);
    for (let k = 0; k < 500; k++)
      assert.equal(alg.shardOfGene!(alg.gene!(k, 8), 8), alg.shard(k, 8));
    assert.equal(alg.shard('42', 8), alg.shard(42, 8));
    assert.equal(alg.shard('42.00', 8), alg.shard(42n, 8));
    assert.equal(alg.shard(' 042', 8), alg.shard(42, 8));
    assert.notEqual(fnv1a32('a'), fnv1a32('b'));
  });

  it('range: bounds pick shards and ranges name exactly the shards they cover', () => {
    const alg = createAlgorithm({ type: 'range', bounds: [100, 200, 300] }, 4, 't');
    assert.deepEqual(
      [0, 99, 100, 250, 1e9].map((v) => alg.shard(v, 4)),
      [0, 0, 1, 2, 3],
    );
    assert.deepEqual(
      alg.shardsForRange?.({ value: 150, inclusive: true }, { value: 220, inclusive: true }, 4),
      [1, 2],
    );
    assert.deepEqual(alg.shardsForRange?.(undefined, { value: 50, inclusive: true }, 4), [0]);
    assert.throws(
      () => createAlgorithm({ type: 'range', bounds: [1, 2] }, 4, 'tables.x'),
      /3 ranges, but the table has 4/,
    );
    assert.throws(
      () => createAlgorithm({ type: 'range', bounds: [2, 1, 3] }, 4, 'x'),
      /strictly increasing/,
    );
  });

  it('interval: months from a start; out-of-range times are clear errors', () => {
    const alg = createAlgorithm(
      { type: 'interval', start: '2026-01-01T00:00:00Z', unit: 'month' },
      12,
      't',
    );
    assert.equal(alg.shard('2026-01-31T23:59:59Z', 12), 0);
    assert.equal(alg.shard(new Date('2026-02-01T00:00:00Z'), 12), 1);
    assert.equal(alg.shard('2026-12-15', 12), 11);
    assert.throws(() => alg.shard('2027-01-01', 12), /falls outside the 12 declared intervals/);
    assert.deepEqual(
      alg.shardsForRange?.(
        { value: '2026-03-10', inclusive: true },
        { value: '2026-05-01', inclusive: false },
        12,
      ),
      [2, 3, 4],
    );
    const days = createAlgorithm(
      { type: 'interval', start: '2026-01-01T00:00:00Z', unit: 'day', step: 7 },
      4,
      't',
    );
    assert.equal(days.shard('2026-01-08T00:00:00Z', 4), 1);
  });

  it('consistent-hash: adding a shard moves only part of the buckets', () => {
    const alg = createAlgorithm({ type: 'consistent-hash', buckets: 256 }, 4, 't');
    let moved = 0;
    for (let k = 0; k < 4000; k++) if (alg.shard(k, 4) !== alg.shard(k, 5)) moved++;
    assert.ok(moved > 0 && moved < 4000 * 0.4, `moved ${moved} of 4000`);
    for (let k = 0; k < 200; k++)
      assert.equal(alg.shardOfGene!(alg.gene!(k, 8), 4), alg.shard(k, 4));
    assert.throws(
      () => createAlgorithm({ type: 'consistent-hash', buckets: 100 }, 4, 'x'),
      /power of two/,
    );
  });

  it('custom: the function decides; a bad answer is an error, not a wrong shard', () => {
    const alg = createAlgorithm(
      { type: 'custom', shard: (v) => (String(v).startsWith('vip') ? 0 : 1) },
      2,
      't',
    );
    assert.equal(alg.shard('vip-7', 2), 0);
    const bad = createAlgorithm({ type: 'custom', shard: () => 5 }, 2, 't');
    assert.throws(() => bad.shard('x', 2), /must return an integer in \[0, 2\)/);
    assert.throws(
      () => createAlgorithm({ type: 'nope' } as never, 2, 'tables.t.algorithm'),
      /unknown algorithm "nope"/,
    );
  });
});
