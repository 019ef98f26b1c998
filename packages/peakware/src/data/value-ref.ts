/**
 * Values and columns as the syntax tree holds them: a `ValueRef` is a parameter (`$n`) or
 * a literal, read from the tree once per statement and resolved against each call's
 * parameters; `columnOf` reads a (qualified) column reference.
 */
import { routeError } from './route-errors.js';
import type { ShardValue } from './sharding-algorithm.js';
import type { SqlNode } from './sql-parser.js';

/** A value of a statement: parameter `$param`, or a literal. */
export type ValueRef = { param: number } | { value: ShardValue };

/** The column a node names (`col` or `qualifier.col`), or undefined when it is not a column. */
export function columnOf(
  node: unknown,
): { qualifier: string | undefined; column: string } | undefined {
  const ref = (node as SqlNode | undefined)?.ColumnRef as { fields?: SqlNode[] } | undefined;
  if (ref?.fields === undefined) return undefined;
  const names = ref.fields.map((f) => (f.String as { sval?: string } | undefined)?.sval);
  if (names.some((n) => n === undefined)) return undefined;
  const column = names[names.length - 1]!;
  const qualifier = names.length >= 2 ? names[names.length - 2] : undefined;
  return { qualifier, column };
}

/** The value a node stands for (a parameter, a literal, either under a cast), or undefined for an expression. */
export function valueRefOf(node: unknown): ValueRef | undefined {
  const n = node as SqlNode | undefined;
  if (n === undefined) return undefined;
  if (n.ParamRef !== undefined) return { param: (n.ParamRef as { number: number }).number };
  if (n.TypeCast !== undefined) return valueRefOf((n.TypeCast as SqlNode).arg);
  const c = n.A_Const as SqlNode | undefined;
  if (c === undefined) return undefined;
  if (c.isnull === true) return { value: null };
  if (c.ival !== undefined) return { value: (c.ival as { ival?: number }).ival ?? 0 };
  if (c.fval !== undefined) return { value: (c.fval as { fval: string }).fval };
  if (c.sval !== undefined) return { value: (c.sval as { sval?: string }).sval ?? '' };
  if (c.boolval !== undefined)
    return { value: (c.boolval as { boolval?: boolean }).boolval ?? false };
  return undefined;
}

/** The value of a reference under these parameters; PEAK_DATA_ROUTE when `$n` is missing. */
export function resolveValue(ref: ValueRef, params: readonly unknown[], sql: string): ShardValue {
  if ('value' in ref) return ref.value;
  if (ref.param < 1 || ref.param > params.length) {
    throw routeError(
      sql,
      `the statement uses $${ref.param} but ${params.length} parameters were given`,
    );
  }
  return params[ref.param - 1] as ShardValue;
}
