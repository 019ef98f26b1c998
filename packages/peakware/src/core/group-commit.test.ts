import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { currentContext, withContext } from './context.js';
import { GroupCommit } from './group-commit.js';

describe('GroupCommit', () => {
  it('commits writes of one turn together, and those arriving meanwhile in the next batch', async () => {
    const batches: number[][] = [];
    let release: (() => void) | undefined;
    const gc = new GroupCommit<number, number>(async (items) => {
      batches.push(items);
      // The first batch waits (a WAL flush in flight) until released.
      if (batches.length === 1) await new Promise<void>((r) => (release = r));
      return items.map((x) => x * 10);
    });
    const first = [1, 2, 3].map((x) => gc.submit(x));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(batches, [[1, 2, 3]]);
    const second = [4, 5].map((x) => gc.submit(x));
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(batches.length, 1, 'no second batch while the first is in flight');
    release?.();
    assert.deepEqual(await Promise.all([...first, ...second]), [10, 20, 30, 40, 50]);
    assert.deepEqual(batches, [
      [1, 2, 3],
      [4, 5],
    ]);
  });

  it('fails every write of a failed batch and goes on with the next', async () => {
    let calls = 0;
    const gc = new GroupCommit<string, string>(async (items) => {
      calls++;
      if (items.includes('bad')) throw new Error('statement failed');
      return items;
    });
    const failed = [gc.submit('a'), gc.submit('bad')];
    const results = await Promise.allSettled(failed);
    assert.deepEqual(
      results.map((r) => r.status),
      ['rejected', 'rejected'],
    );
    assert.equal(await gc.submit('c'), 'c');
    assert.equal(calls, 2);
  });

  it('splits a long queue into batches of at most maxBatch', async () => {
    const sizes: number[] = [];
    const gc = new GroupCommit<number, number>(async (items) => {
      sizes.push(items.length);
      return items;
    }, 4);
    const all = await Promise.all(Array.from({ length: 10 }, (_, i) => gc.submit(i)));
    assert.deepEqual(all, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(sizes, [4, 4, 2]);
  });

  it("runs a batch outside every caller's context (no one caller's deadline or trace)", async () => {
    const seen: unknown[] = [];
    const gc = new GroupCommit<number, number>(async (items) => {
      seen.push(currentContext());
      await new Promise((r) => setTimeout(r, 5));
      seen.push(currentContext());
      return items;
    });
    const a = withContext({ timeoutMs: 1000, tags: { caller: 'a' } }, () => gc.submit(1));
    const b = withContext({ stress: true }, () => gc.submit(2));
    assert.deepEqual(await Promise.all([a, b]), [1, 2]);
    assert.deepEqual(seen, [undefined, undefined]);
  });
});
