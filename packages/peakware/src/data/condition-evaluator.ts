/**
 * Evaluating a sharding condition against one call's parameters: the shard of a value
 * (by the table's algorithm, or by the shard bits of a gene id), and the set of shards a
 * condition allows (`AND` intersects, `OR` unions, `'all'` when it does not narrow).
 */
import { ErrorCodes, PeakError } from '../core/errors.js';
import type { RangeBound, ShardValue } from './sharding-algorithm.js';
import type { Condition } from './sharding-condition.js';
import type { ShardedTable } from './sharding-layout.js';
import { resolveValue, type ValueRef } from './value-ref.js';

/** A set of shard indexes, or every shard. */
export type ShardSet = Set<number> | 'all';

function intersect(a: ShardSet, b: ShardSet): ShardSet {
  if (a === 'all') return b;
  if (b === 'all') return a;
  return new Set([...a].filter((x) => b.has(x)));
}

function union(a: ShardSet, b: ShardSet): ShardSet {
  if (a === 'all' || b === 'all') return 'all';
  return new Set([...a, ...b]);
}

/** The shard of a sharding-column value, or (gene) of the gene id's low `geneBits` bits. */
export function shardOf(
  table: ShardedTable,
  gene: boolean,
  value: ShardValue,
  geneBits: number,
): number {
  if (!gene) return table.algorithm.shard(value, table.shardCount);
  if (value === null) throw new PeakError(ErrorCodes.DATA_ROUTE, 'a NULL gene id matches no shard');
  let id: bigint;
  try {
    id = BigInt(value as string | number | bigint);
  } catch {
    throw new PeakError(
      ErrorCodes.DATA_ROUTE,
      `a gene id must be an integer, got ${JSON.stringify(String(value))}`,
    );
  }
  const g = Number(id & BigInt(2 ** geneBits - 1));
  return table.algorithm.shardOfGene!(g, table.shardCount);
}

/** The shards a condition allows under these parameters. */
export function evaluateCondition(
  c: Condition,
  params: readonly unknown[],
  sql: string,
  geneBits: number,
): ShardSet {
  switch (c.k) {
    case 'all':
      return 'all';
    case 'and':
      return c.parts.reduce<ShardSet>(
        (acc, p) => intersect(acc, evaluateCondition(p, params, sql, geneBits)),
        'all',
      );
    case 'or': {
      let acc: ShardSet = new Set();
      for (const p of c.parts) {
        acc = union(acc, evaluateCondition(p, params, sql, geneBits));
        if (acc === 'all') return acc;
      }
      return acc;
    }
    case 'eq': {
      const out = new Set<number>();
      for (const ref of c.values) {
        const v = resolveValue(ref, params, sql);
        if (v === null) continue; // col = NULL is never true
        out.add(shardOf(c.table, c.gene, v, geneBits));
      }
      return out;
    }
    case 'any': {
      const arr = resolveValue({ param: c.param }, params, sql) as unknown;
      if (!Array.isArray(arr)) return 'all';
      const out = new Set<number>();
      for (const v of arr as ShardValue[])
        if (v !== null) out.add(shardOf(c.table, c.gene, v, geneBits));
      return out;
    }
    case 'range': {
      const alg = c.table.algorithm;
      if (alg.shardsForRange === undefined) return 'all';
      const bound = (
        b: { ref: ValueRef; inclusive: boolean } | undefined,
      ): RangeBound | undefined =>
        b === undefined
          ? undefined
          : { value: resolveValue(b.ref, params, sql), inclusive: b.inclusive };
      const low = bound(c.low);
      const high = bound(c.high);
      if (low?.value === null || high?.value === null) return new Set();
      const shards = alg.shardsForRange(low, high, c.table.shardCount);
      return shards === undefined ? 'all' : new Set(shards);
    }
  }
}
