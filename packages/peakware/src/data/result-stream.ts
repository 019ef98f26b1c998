/**
 * The streaming merge: shard answers arrive in batches (server-side cursors) and are
 * merged lazily, so a scatter SELECT over large shards holds only one batch per shard in
 * memory. Sorted answers merge through a heap over the shards' current rows (ShardingSphere's
 * "stream merge"); unsorted ones are read shard after shard; OFFSET / LIMIT apply while
 * yielding and stop the reading early. Aggregated answers are merged in memory (their
 * per-shard results are one row per group).
 */
import { BinaryHeap } from './binary-heap.js';
import {
  distinctFilter,
  type FieldInfo,
  type MergePlan,
  mergeRows,
  rowComparator,
} from './result-merger.js';

/** One shard's answer, fetched in batches; an empty batch means the end. */
export interface RowSource {
  fetch(): Promise<{ rows: unknown[][]; fields: FieldInfo[] }>;
}

function toObjects(
  fields: FieldInfo[],
  hidden: number,
): (row: unknown[]) => Record<string, unknown> {
  const visible = fields.slice(0, fields.length - hidden);
  return (row) => {
    const o: Record<string, unknown> = {};
    for (let i = 0; i < visible.length; i++) o[visible[i]!.name] = row[i];
    return o;
  };
}

interface Cursor {
  source: RowSource;
  rows: unknown[][];
  at: number;
}

/** Merges shard row sources lazily according to the plan (undefined: one source, as is). */
export async function* mergeStream(
  plan: MergePlan | undefined,
  sources: RowSource[],
): AsyncGenerator<Record<string, unknown>> {
  const first = await Promise.all(sources.map((s) => s.fetch()));
  const fields = first.find((f) => f.fields.length > 0)?.fields ?? [];
  const hidden = plan?.hiddenCount ?? 0;
  const make = toObjects(fields, hidden);
  if (plan?.aggregated === true) {
    const all = first.map((f) => ({ rows: [...f.rows], fields: f.fields }));
    for (const [i, s] of sources.entries()) {
      for (;;) {
        const next = await s.fetch();
        if (next.rows.length === 0) break;
        for (const r of next.rows) all[i]!.rows.push(r);
      }
    }
    yield* mergeRows(plan, all).rows;
    return;
  }
  const offset = plan?.offset ?? 0;
  const end = plan?.limit === undefined ? Number.POSITIVE_INFINITY : offset + plan.limit;
  let n = 0;
  const fresh = distinctFilter(plan, fields.length - hidden, hidden);
  const emit = (row: unknown[]): Record<string, unknown> | undefined => {
    if (fresh !== undefined && !fresh(row)) return undefined;
    const keep = n >= offset;
    n++;
    return keep ? make(row) : undefined;
  };
  if (plan === undefined || plan.orderBy.length === 0) {
    for (const [i, s] of sources.entries()) {
      let batch = first[i]!.rows;
      while (batch.length > 0) {
        for (const row of batch) {
          if (n >= end) return;
          const o = emit(row);
          if (o !== undefined) yield o;
        }
        if (n >= end) return;
        batch = (await s.fetch()).rows;
      }
    }
    return;
  }
  const cmp = rowComparator(plan, fields);
  const heap = new BinaryHeap<Cursor>((x, y) => cmp(x.rows[x.at]!, y.rows[y.at]!) < 0);
  for (const [i, s] of sources.entries()) {
    if (first[i]!.rows.length > 0) {
      heap.push({ source: s, rows: first[i]!.rows, at: 0 });
    }
  }
  for (let top = heap.peek(); top !== undefined && n < end; top = heap.peek()) {
    const o = emit(top.rows[top.at]!);
    if (o !== undefined) yield o;
    if (n >= end) return;
    top.at++;
    if (top.at >= top.rows.length) {
      top.rows = (await top.source.fetch()).rows;
      top.at = 0;
    }
    if (top.rows.length === 0) heap.pop();
    else heap.siftTop();
  }
}
