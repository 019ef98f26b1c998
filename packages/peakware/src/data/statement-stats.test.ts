import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { StatementEvent } from './statement-collector.js';
import { StatementStats } from './statement-stats.js';

const event = (over: Partial<StatementEvent>): StatementEvent => ({
  sql: 'SELECT 1',
  fingerprint: 'f1',
  physicalSql: 'SELECT 1',
  dataSource: 'ds0',
  shard: 0,
  role: 'primary',
  rows: 1,
  durationMs: 1,
  slow: false,
  shadow: false,
  ...over,
});

describe('statement stats', () => {
  it('aggregates by fingerprint and keeps a bounded slow log', () => {
    const stats = new StatementStats({ slowLogSize: 2, maxFingerprints: 2 });
    stats.record(event({ durationMs: 2 }));
    stats.record(event({ durationMs: 5, slow: true, dataSource: 'ds1', rows: 3 }));
    stats.record(
      event({ fingerprint: 'f2', sql: 'SELECT 2', durationMs: 50, slow: true, error: 'boom' }),
    );
    stats.record(event({ fingerprint: 'f3', sql: 'SELECT 3', durationMs: 1, slow: true }));
    const snap = stats.snapshot();
    assert.deepEqual(
      snap.map((s) => [s.fingerprint, s.count, s.rows, s.totalMs, s.maxMs, s.errors, s.slow]),
      [
        ['f2', 1, 1, 50, 50, 1, 1],
        ['f1', 2, 4, 7, 5, 0, 1],
        // A fingerprint beyond maxFingerprints is counted under `other`.
        ['other', 1, 1, 1, 1, 0, 1],
      ],
    );
    assert.deepEqual(snap[1]!.dataSources, { ds0: 1, ds1: 1 });
    assert.deepEqual(
      stats.slowLog().map((e) => e.fingerprint),
      ['f2', 'f3'],
    );
    stats.reset();
    assert.deepEqual(stats.snapshot(), []);
  });
});
