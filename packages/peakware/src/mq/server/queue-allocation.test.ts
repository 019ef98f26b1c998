import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { allocateQueues } from './queue-allocation.js';

describe('allocateQueues', () => {
  const queues = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];

  it('gives every queue to exactly one consumer, evenly, whatever the input order', () => {
    for (const consumers of [
      ['a'],
      ['a', 'b', 'c'],
      ['c', 'a', 'b'],
      ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l'],
    ]) {
      const all = consumers.flatMap((c) => allocateQueues(queues, consumers, c));
      assert.deepEqual(
        [...all].sort((x, y) => x - y),
        queues,
      );
      const sizes = consumers.map((c) => allocateQueues(queues, consumers, c).length);
      assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `even split: ${sizes}`);
    }
  });

  it('agrees between consumers that see the list in different orders', () => {
    assert.deepEqual(
      allocateQueues(queues, ['b', 'a'], 'a'),
      allocateQueues(queues, ['a', 'b'], 'a'),
    );
  });

  it('gives nothing to an unknown consumer and moves queues when one leaves', () => {
    assert.deepEqual(allocateQueues(queues, ['a', 'b'], 'z'), []);
    assert.equal(allocateQueues(queues, ['a', 'b'], 'a').length, 5);
    assert.equal(allocateQueues(queues, ['a'], 'a').length, 10);
  });
});
