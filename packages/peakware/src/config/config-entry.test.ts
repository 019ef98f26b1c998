import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { effectiveEntry } from './config-entry.js';

describe('effectiveEntry', () => {
  const item = { group: 'g', key: 'k', version: 3, format: 'text' as const, value: 'released' };
  const gray = { format: 'text' as const, value: 'gray', tags: ['canary'], instanceIds: ['i-7'] };

  it('gives the gray value to instances in the audience (by tag or id), the released one to others', () => {
    assert.equal(effectiveEntry({ item, gray }, 'i-1', new Set(['canary'])).value, 'gray');
    assert.equal(effectiveEntry({ item, gray }, 'i-7', new Set()).gray, true);
    const other = effectiveEntry({ item, gray }, 'i-2', new Set(['blue']));
    assert.deepEqual(other, { ...item, gray: false });
    assert.equal(
      effectiveEntry({ item, gray: null }, 'i-7', new Set(['canary'])).value,
      'released',
    );
  });
});
