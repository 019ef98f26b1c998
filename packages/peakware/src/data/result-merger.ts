/**
 * Merges the answers of one SELECT from several shards into the answer one unsharded
 * table would give: a k-way merge of the shards' sorted rows (a binary heap over the
 * shard cursors, stopping after OFFSET + LIMIT rows), or a GROUP BY merge of partial
 * aggregates (COUNT and SUM add up, MIN / MAX compare, AVG is SUM / COUNT), then ORDER BY,
 * OFFSET and LIMIT, and finally the hidden helper columns are dropped. HAVING filters the
 * merged groups; DISTINCT drops rows repeated across shards before OFFSET and LIMIT count.
 */
import { BinaryHeap } from './binary-heap.js';
import { addDecimal, compareDecimal, divideDecimal, isDecimalString } from './decimal.js';
import { evaluateHaving, type HavingExpr } from './having-filter.js';

/** How one output column of an aggregated query merges. */
export interface OutputColumn {
  kind: 'key' | 'count' | 'sum' | 'min' | 'max' | 'avg';
  /** For `avg`: the (hidden) column holding the matching COUNT. */
  countColumn?: number;
}

/** A column position: `>= 0` counts from the left, `< 0` is hidden column `-i - 1`. */
export type ColumnPosition = number;

/** One ORDER BY key of the merged result. */
export interface MergeOrder {
  column: ColumnPosition;
  desc: boolean;
  nullsFirst: boolean;
}

/** What the router tells the merger about a scatter SELECT. */
export interface MergePlan {
  /** Helper columns appended at the end of each row, dropped from the answer. */
  hiddenCount: number;
  orderBy: MergeOrder[];
  /** Positions of the GROUP BY keys. */
  groupBy: ColumnPosition[];
  /** Per output column (aggregated queries only). */
  columns: OutputColumn[];
  /** True when the query aggregates (aggregates or GROUP BY). */
  aggregated: boolean;
  limit: number | undefined;
  offset: number;
  /** True when a shard answer is several sorted runs (UNION ALL of shards): sort it first. */
  sortInputs?: boolean;
  /** SELECT DISTINCT: a row equal to one already answered (visible columns) is dropped. */
  distinct?: boolean;
  /**
   * SELECT DISTINCT ON: a row whose values at these positions equal an answered row's is
   * dropped. Each shard answers its first row of each key in ORDER BY order (which begins
   * with the key), so the first one the sorted merge meets is the whole table's first.
   */
  distinctOn?: ColumnPosition[];
  /** HAVING, applied to the merged groups (parameters bound: `bindHaving`). */
  having?: HavingExpr;
}

/** A result column as `pg` describes it. */
export interface FieldInfo {
  name: string;
  dataTypeID: number;
}

/** One shard's answer in array row mode. */
export interface ShardRows {
  rows: unknown[][];
  fields: FieldInfo[];
}

/** The merged answer. */
export interface MergedRows {
  rows: Record<string, unknown>[];
  fields: FieldInfo[];
}

const INT8 = 20;
const NUMERIC = 1700;

type Compare = (a: unknown, b: unknown) => number;

function compareValues(typeId: number): Compare {
  const decimal = typeId === INT8 || typeId === NUMERIC;
  return (a, b) => {
    if (
      decimal &&
      typeof a === 'string' &&
      typeof b === 'string' &&
      isDecimalString(a) &&
      isDecimalString(b)
    ) {
      return compareDecimal(a, b);
    }
    if (a instanceof Date && b instanceof Date) return a.getTime() - b.getTime();
    if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : a > b ? 1 : 0;
    if (typeof a === 'bigint' && typeof b === 'bigint') return a < b ? -1 : a > b ? 1 : 0;
    if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
    // Text: code-unit order, which is PostgreSQL's "C" collation for the ASCII range.
    const x = String(a);
    const y = String(b);
    return x < y ? -1 : x > y ? 1 : 0;
  };
}

/** The index of a column position in a row of `width` columns with `hidden` helper columns at the end. */
export function position(p: ColumnPosition, width: number, hidden: number): number {
  return p >= 0 ? p : width - hidden + (-p - 1);
}

/** Compares two array rows by the plan's ORDER BY keys (NULLS FIRST / LAST, decimals exactly). */
export function rowComparator(
  plan: MergePlan,
  fields: FieldInfo[],
): (a: unknown[], b: unknown[]) => number {
  const keys = plan.orderBy.map((o) => {
    const i = position(o.column, fields.length, plan.hiddenCount);
    return {
      i,
      desc: o.desc,
      nullsFirst: o.nullsFirst,
      cmp: compareValues(fields[i]?.dataTypeID ?? 0),
    };
  });
  return (a, b) => {
    for (const k of keys) {
      const x = a[k.i];
      const y = b[k.i];
      const xn = x === null || x === undefined;
      const yn = y === null || y === undefined;
      let c: number;
      if (xn || yn) {
        if (xn && yn) continue;
        c = xn === k.nullsFirst ? -1 : 1;
        if (c !== 0) return c;
        continue;
      }
      c = k.cmp(x, y);
      if (c !== 0) return k.desc ? -c : c;
    }
    return 0;
  };
}

/** A k-way merge: yields rows of several sorted lists in order (ties: lower shard first). */
export function* kWayMerge<T>(lists: T[][], cmp: (a: T, b: T) => number): Generator<T> {
  const heap = new BinaryHeap<{ list: number; at: number }>((x, y) => {
    const c = cmp(lists[x.list]![x.at]!, lists[y.list]![y.at]!);
    return c < 0 || (c === 0 && x.list < y.list);
  });
  for (const [list, rows] of lists.entries()) {
    if (rows.length > 0) heap.push({ list, at: 0 });
  }
  for (let top = heap.peek(); top !== undefined; top = heap.peek()) {
    yield lists[top.list]![top.at]!;
    top.at++;
    if (top.at < lists[top.list]!.length) heap.siftTop();
    else heap.pop();
  }
}

function keyOf(v: unknown): string {
  if (v instanceof Date) return `d${v.getTime()}`;
  if (v === null || v === undefined) return 'n';
  if (typeof v === 'string') {
    return `s${v}`;
  }
  if (typeof v === 'object') return `o${JSON.stringify(v)}`;
  return `${typeof v}${String(v)}`;
}

function add(a: unknown, b: unknown): unknown {
  if (a === null || a === undefined) return b;
  if (b === null || b === undefined) return a;
  if (typeof a === 'number' && typeof b === 'number') return a + b;
  if (typeof a === 'bigint' && typeof b === 'bigint') return a + b;
  return addDecimal(String(a), String(b));
}

function mergeAggregates(plan: MergePlan, shards: ShardRows[], fields: FieldInfo[]): unknown[][] {
  const width = fields.length;
  const keyPositions = plan.groupBy.map((g) => position(g, width, plan.hiddenCount));
  const cmps = fields.map((f) => compareValues(f.dataTypeID));
  const groups = new Map<string, unknown[]>();
  for (const shard of shards) {
    for (const row of shard.rows) {
      const key = keyPositions.map((i) => keyOf(row[i])).join('\u0000');
      const acc = groups.get(key);
      if (acc === undefined) {
        groups.set(key, [...row]);
        continue;
      }
      for (const [i, col] of plan.columns.entries()) {
        const v = row[i];
        switch (col.kind) {
          case 'count':
          case 'sum':
          case 'avg':
            acc[i] = add(acc[i], v);
            break;
          case 'min':
          case 'max':
            if (v === null || v === undefined) break;
            if (acc[i] === null || acc[i] === undefined) acc[i] = v;
            else {
              const c = cmps[i]!(v, acc[i]);
              if (col.kind === 'min' ? c < 0 : c > 0) acc[i] = v;
            }
            break;
          case 'key':
            break;
        }
      }
    }
  }
  const out = [...groups.values()];
  for (const row of out) {
    for (const [i, col] of plan.columns.entries()) {
      if (col.kind !== 'avg') continue;
      const sum = row[i];
      const count = row[position(col.countColumn!, width, plan.hiddenCount)];
      if (
        sum === null ||
        sum === undefined ||
        count === null ||
        count === undefined ||
        Number(count) === 0
      ) {
        row[i] = null;
      } else if (typeof sum === 'number') {
        row[i] = sum / Number(count);
      } else {
        row[i] = divideDecimal(String(sum), String(count));
      }
    }
  }
  return out;
}

/**
 * For DISTINCT (a row's first `visible` columns) and DISTINCT ON (its key's positions; the
 * row has `hidden` helper columns after the visible ones): a function telling whether a row
 * is new, or undefined when the plan keeps every row.
 */
export function distinctFilter(
  plan: Pick<MergePlan, 'distinct' | 'distinctOn'> | undefined,
  visible: number,
  hidden = 0,
): ((row: readonly unknown[]) => boolean) | undefined {
  let at: number[];
  if (plan?.distinctOn !== undefined)
    at = plan.distinctOn.map((p) => position(p, visible + hidden, hidden));
  else if (plan?.distinct === true) at = Array.from({ length: visible }, (_, i) => i);
  else return undefined;
  const seen = new Set<string>();
  return (row) => {
    let key = '';
    for (const i of at) key += `${keyOf(row[i])}\u0000`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  };
}

/** Merges shard answers according to the plan. */
export function mergeRows(plan: MergePlan, shards: ShardRows[]): MergedRows {
  const fields = shards.find((s) => s.fields.length > 0)?.fields ?? [];
  const cmp = rowComparator(plan, fields);
  const end = plan.limit === undefined ? Number.POSITIVE_INFINITY : plan.offset + plan.limit;
  const fresh = distinctFilter(plan, fields.length - plan.hiddenCount, plan.hiddenCount);
  let rows: unknown[][] = [];
  if (plan.aggregated) {
    rows = mergeAggregates(plan, shards, fields);
    const having = plan.having;
    if (having !== undefined) {
      const at = (p: ColumnPosition) => position(p, fields.length, plan.hiddenCount);
      rows = rows.filter((r) => evaluateHaving(having, r, at) === true);
    }
    if (fresh !== undefined) rows = rows.filter(fresh);
    if (plan.orderBy.length > 0) rows.sort(cmp);
    rows = rows.slice(plan.offset, end);
  } else if (plan.orderBy.length > 0) {
    let n = 0;
    const lists = shards.map((s) => (plan.sortInputs === true ? [...s.rows].sort(cmp) : s.rows));
    for (const row of kWayMerge(lists, cmp)) {
      if (n >= end) break;
      if (fresh !== undefined && !fresh(row)) continue;
      if (n >= plan.offset) rows.push(row);
      n++;
    }
  } else {
    for (const s of shards) {
      for (const row of s.rows) if (fresh === undefined || fresh(row)) rows.push(row);
      if (rows.length >= end) break;
    }
    rows = rows.slice(plan.offset, end);
  }
  const visible = fields.slice(0, fields.length - plan.hiddenCount);
  return {
    fields: visible,
    rows: rows.map((r) => {
      const o: Record<string, unknown> = {};
      for (let i = 0; i < visible.length; i++) o[visible[i]!.name] = r[i];
      return o;
    }),
  };
}
