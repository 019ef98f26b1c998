import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { kWayMerge, type MergePlan, mergeRows } from './result-merger.js';

const INT4 = 23;
const INT8 = 20;
const NUMERIC = 1700;
const TEXT = 25;

const plan = (p: Partial<MergePlan>): MergePlan => ({
  hiddenCount: 0,
  orderBy: [],
  groupBy: [],
  columns: [],
  aggregated: false,
  limit: undefined,
  offset: 0,
  ...p,
});

describe('result merger', () => {
  it('k-way merges sorted lists stably', () => {
    const lists = [[1, 4, 9], [2, 3, 10], [], [0, 4, 11, 12]];
    assert.deepEqual([...kWayMerge(lists, (a, b) => a - b)], [0, 1, 2, 3, 4, 4, 9, 10, 11, 12]);
  });

  it('merges ORDER BY with NULLS placement, OFFSET and LIMIT, and drops hidden columns', () => {
    const fields = [
      { name: 'id', dataTypeID: INT8 },
      { name: '__peak_0', dataTypeID: NUMERIC },
    ];
    const merged = mergeRows(
      plan({
        hiddenCount: 1,
        orderBy: [
          { column: -1, desc: true, nullsFirst: true },
          { column: 0, desc: false, nullsFirst: false },
        ],
        limit: 3,
        offset: 1,
      }),
      [
        {
          fields,
          rows: [
            ['1', null],
            ['2', '10.5'],
            ['3', '9'],
          ],
        },
        {
          fields,
          rows: [
            ['4', '100'],
            ['5', '9.75'],
          ],
        },
      ],
    );
    assert.deepEqual(merged.rows, [{ id: '4' }, { id: '2' }, { id: '5' }]);
    assert.deepEqual(
      merged.fields.map((f) => f.name),
      ['id'],
    );
  });

  it('merges GROUP BY partial aggregates: COUNT/SUM add exactly, MIN/MAX compare, AVG = SUM/COUNT', () => {
    const fields = [
      { name: 'status', dataTypeID: TEXT },
      { name: 'count', dataTypeID: INT8 },
      { name: 'sum', dataTypeID: NUMERIC },
      { name: 'min', dataTypeID: INT4 },
      { name: 'avg', dataTypeID: NUMERIC },
      { name: '__peak_0', dataTypeID: INT8 },
    ];
    const merged = mergeRows(
      plan({
        aggregated: true,
        hiddenCount: 1,
        groupBy: [0],
        orderBy: [{ column: 0, desc: false, nullsFirst: false }],
        columns: [
          { kind: 'key' },
          { kind: 'count' },
          { kind: 'sum' },
          { kind: 'min' },
          { kind: 'avg', countColumn: -1 },
          { kind: 'count' },
        ],
      }),
      [
        {
          fields,
          rows: [
            ['paid', '9007199254740993', '1.10', 5, '3', '2'],
            ['new', '1', null, null, null, '0'],
          ],
        },
        { fields, rows: [['paid', '1', '2.20', 3, '4', '2']] },
      ],
    );
    assert.deepEqual(merged.rows, [
      { status: 'new', count: '1', sum: null, min: null, avg: null },
      { status: 'paid', count: '9007199254740994', sum: '3.30', min: 3, avg: '1.7500000000000000' },
    ]);
  });
});
