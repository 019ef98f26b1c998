import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { METRICS_HISTORY_MS, tierFor } from './metrics-tiers.js';

describe('metrics tiers', () => {
  const now = Date.UTC(2026, 0, 10, 12);
  it('answers per second within the hour, per minute within the day, per hour beyond', () => {
    assert.equal(tierFor(now - 5 * 60_000, now).stepSeconds, 1);
    assert.equal(tierFor(now - 3_600_000, now).stepSeconds, 1);
    assert.equal(tierFor(now - 3_600_001, now).stepSeconds, 60);
    assert.equal(tierFor(now - 86_400_000, now).stepSeconds, 60);
    assert.equal(tierFor(now - 2 * 86_400_000, now).stepSeconds, 3600);
  });
  it('answers the coarsest tier past the history', () => {
    assert.equal(tierFor(now - METRICS_HISTORY_MS - 1, now).stepSeconds, 3600);
  });
});
