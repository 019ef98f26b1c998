import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MergePlan } from './result-merger.js';
import { mergeStream, type RowSource } from './result-stream.js';

const fields = [{ name: 'v', dataTypeID: 23 }];

/** A source over sorted numbers, in batches, counting its fetches. */
function source(values: number[], batch: number): RowSource & { fetches: number } {
  let at = 0;
  const s = {
    fetches: 0,
    async fetch() {
      s.fetches++;
      const rows = values.slice(at, at + batch).map((v) => [v]);
      at += batch;
      return { rows, fields };
    },
  };
  return s;
}

const plan = (p: Partial<MergePlan>): MergePlan => ({
  hiddenCount: 0,
  orderBy: [{ column: 0, desc: false, nullsFirst: false }],
  groupBy: [],
  columns: [],
  aggregated: false,
  limit: undefined,
  offset: 0,
  ...p,
});

describe('streaming merge', () => {
  it('merges sorted batches lazily and stops reading at OFFSET + LIMIT', async () => {
    const a = source([1, 4, 7, 10, 13, 16, 19, 22, 25, 28], 2);
    const b = source([2, 5, 8, 11, 14, 17, 20, 23, 26, 29], 2);
    const c = source([3, 6, 9, 12, 15, 18, 21, 24, 27, 30], 2);
    const out: unknown[] = [];
    for await (const row of mergeStream(plan({ limit: 4, offset: 2 }), [a, b, c])) out.push(row.v);
    assert.deepEqual(out, [3, 4, 5, 6]);
    // Six rows were needed: each source fetched at most its first two batches, not all five.
    assert.ok(
      a.fetches <= 2 && b.fetches <= 2 && c.fetches <= 2,
      `${a.fetches} ${b.fetches} ${c.fetches}`,
    );
  });

  it('merges everything in order when unbounded, including empty sources', async () => {
    const out: unknown[] = [];
    for await (const row of mergeStream(
      plan({ orderBy: [{ column: 0, desc: true, nullsFirst: true }] }),
      [source([9, 5, 1], 1), source([], 3), source([8, 7, 6, 2], 3)],
    )) {
      out.push(row.v);
    }
    assert.deepEqual(out, [9, 8, 7, 6, 5, 2, 1]);
  });

  it('reads unsorted sources one after another, honouring LIMIT', async () => {
    const a = source([1, 2, 3], 2);
    const b = source([4, 5, 6], 2);
    const out: unknown[] = [];
    for await (const row of mergeStream(plan({ orderBy: [], limit: 2 }), [a, b])) out.push(row.v);
    assert.deepEqual(out, [1, 2]);
    assert.equal(a.fetches, 1);
  });
});
