import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lineDiff } from './line-diff.js';

describe('lineDiff', () => {
  it('keeps common lines and marks removed and added ones', () => {
    const d = lineDiff('a\nb\nc', 'a\nx\nc\nd');
    assert.deepEqual(
      d.map((l) => `${l.op}${l.text}`),
      [' a', '-b', '+x', ' c', '+d'],
    );
  });

  it('is empty of changes for equal input', () => {
    assert.ok(lineDiff('same\ntext', 'same\ntext').every((l) => l.op === ' '));
  });
});
