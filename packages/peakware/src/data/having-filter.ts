/**
 * HAVING over several shards. A shard cannot apply HAVING to its partial groups (a group
 * whose count is 3 on one shard and 4 on another has 7), so the scatter rewrite takes HAVING
 * off the shards' statement, makes every aggregate it names an output column (hidden when
 * the select list has no such column), and the merger applies the predicate to the merged
 * groups, as ShardingSphere's merge engine does. The predicate is compiled once per
 * statement into {@link HavingExpr}: comparisons (`= <> < <= > >=`), `AND` / `OR` / `NOT`,
 * `[NOT] IN (…)`, `[NOT] BETWEEN`, `IS [NOT] NULL`, over count/sum/min/max/avg, GROUP BY
 * keys, literals and parameters, with SQL's three-valued logic (a comparison with NULL is
 * unknown, and a group is kept only when the predicate is true).
 */
import { compareDecimal, isDecimalString } from './decimal.js';
import type { ColumnPosition } from './result-merger.js';
import { unsupported } from './route-errors.js';
import type { SqlNode } from './sql-parser.js';
import { resolveValue, type ValueRef, valueRefOf } from './value-ref.js';

/** A value the predicate reads: a column of the merged row, or a literal / parameter. */
export type HavingOperand = { column: ColumnPosition } | { ref: ValueRef };

type CompareOp = '=' | '<>' | '<' | '<=' | '>' | '>=';

/** A compiled HAVING predicate. */
export type HavingExpr =
  | { k: 'and' | 'or'; parts: HavingExpr[] }
  | { k: 'not'; part: HavingExpr }
  | { k: 'cmp'; op: CompareOp; left: HavingOperand; right: HavingOperand }
  | { k: 'in'; not: boolean; left: HavingOperand; list: HavingOperand[] }
  | { k: 'between'; not: boolean; left: HavingOperand; low: HavingOperand; high: HavingOperand }
  | { k: 'null'; not: boolean; operand: HavingOperand };

const OPS = new Set<string>(['=', '<>', '<', '<=', '>', '>=']);

const SUPPORTED =
  'HAVING over several shards takes comparisons (= <> < <= > >=), AND / OR / NOT, IN, BETWEEN and IS NULL of count/sum/min/max/avg, GROUP BY keys, literals and parameters';

/**
 * Compiles a HAVING clause. `column` turns an expression that is neither a literal nor a
 * parameter into the merged row's column holding it (an aggregate or a GROUP BY key), or
 * throws when it is neither.
 */
export function compileHaving(
  node: SqlNode,
  sql: string,
  column: (expr: SqlNode) => ColumnPosition,
): HavingExpr {
  const operand = (expr: unknown): HavingOperand => {
    const ref = valueRefOf(expr);
    if (ref !== undefined) return { ref };
    return { column: column(expr as SqlNode) };
  };
  const compile = (n: SqlNode): HavingExpr => {
    const bool = n.BoolExpr as SqlNode | undefined;
    if (bool !== undefined) {
      const parts = (bool.args as SqlNode[]).map(compile);
      if (bool.boolop === 'AND_EXPR') return { k: 'and', parts };
      if (bool.boolop === 'OR_EXPR') return { k: 'or', parts };
      return { k: 'not', part: parts[0]! };
    }
    const nt = n.NullTest as SqlNode | undefined;
    if (nt !== undefined)
      return { k: 'null', not: nt.nulltesttype === 'IS_NOT_NULL', operand: operand(nt.arg) };
    const e = n.A_Expr as SqlNode | undefined;
    if (e !== undefined) {
      const names = (e.name as SqlNode[] | undefined) ?? [];
      const op = (names[names.length - 1]?.String as { sval?: string } | undefined)?.sval ?? '';
      const items = () => ((e.rexpr as SqlNode).List as { items?: SqlNode[] } | undefined)?.items;
      if (e.kind === 'AEXPR_OP' && OPS.has(op) && names.length === 1)
        return {
          k: 'cmp',
          op: op as CompareOp,
          left: operand(e.lexpr),
          right: operand(e.rexpr),
        };
      if (e.kind === 'AEXPR_IN' && (op === '=' || op === '<>') && items() !== undefined)
        return { k: 'in', not: op === '<>', left: operand(e.lexpr), list: items()!.map(operand) };
      if ((e.kind === 'AEXPR_BETWEEN' || e.kind === 'AEXPR_NOT_BETWEEN') && items()?.length === 2) {
        const [low, high] = items()!;
        return {
          k: 'between',
          not: e.kind === 'AEXPR_NOT_BETWEEN',
          left: operand(e.lexpr),
          low: operand(low),
          high: operand(high),
        };
      }
      throw unsupported(sql, `${SUPPORTED}; not the operator ${op || String(e.kind)}`);
    }
    throw unsupported(sql, `${SUPPORTED}; not ${Object.keys(n)[0] ?? 'this expression'}`);
  };
  return compile(node);
}

/** Milliseconds of a timestamp-like value, or undefined. */
function timeOf(v: unknown): number | undefined {
  if (v instanceof Date) return v.getTime();
  if (typeof v === 'string' || typeof v === 'number') {
    const t = new Date(v).getTime();
    return Number.isNaN(t) ? undefined : t;
  }
  return undefined;
}

/** SQL comparison of two non-null values: numbers and decimal strings exactly, then times, then text. */
export function compareScalars(a: unknown, b: unknown): number {
  if (a instanceof Date || b instanceof Date) {
    const x = timeOf(a);
    const y = timeOf(b);
    if (x !== undefined && y !== undefined) return x < y ? -1 : x > y ? 1 : 0;
  }
  if (typeof a === 'boolean' || typeof b === 'boolean') return Number(a) - Number(b);
  const numeric = (v: unknown) =>
    typeof v === 'number' || typeof v === 'bigint' || (typeof v === 'string' && isDecimalString(v));
  if (numeric(a) && numeric(b)) {
    const x = String(a);
    const y = String(b);
    if (isDecimalString(x) && isDecimalString(y)) return compareDecimal(x, y);
    const nx = Number(a);
    const ny = Number(b);
    return nx < ny ? -1 : nx > ny ? 1 : 0;
  }
  const x = String(a);
  const y = String(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** The predicate with this call's parameters written in (PEAK_DATA_ROUTE when one is missing). */
export function bindHaving(e: HavingExpr, params: readonly unknown[], sql: string): HavingExpr {
  const bind = (o: HavingOperand): HavingOperand =>
    'ref' in o && 'param' in o.ref ? { ref: { value: resolveValue(o.ref, params, sql) } } : o;
  switch (e.k) {
    case 'and':
    case 'or':
      return { k: e.k, parts: e.parts.map((p) => bindHaving(p, params, sql)) };
    case 'not':
      return { k: 'not', part: bindHaving(e.part, params, sql) };
    case 'null':
      return { ...e, operand: bind(e.operand) };
    case 'cmp':
      return { ...e, left: bind(e.left), right: bind(e.right) };
    case 'in':
      return { ...e, left: bind(e.left), list: e.list.map(bind) };
    case 'between':
      return { ...e, left: bind(e.left), low: bind(e.low), high: bind(e.high) };
  }
}

/**
 * The predicate (bound: {@link bindHaving}) on one merged row: true, false or null
 * (unknown). `at` maps a column position to the row's index.
 */
export function evaluateHaving(
  e: HavingExpr,
  row: readonly unknown[],
  at: (p: ColumnPosition) => number,
): boolean | null {
  const value = (o: HavingOperand): unknown => {
    const v = 'column' in o ? row[at(o.column)] : 'value' in o.ref ? o.ref.value : null;
    return v === undefined ? null : v;
  };
  const cmp = (a: unknown, b: unknown): number | null =>
    a === null || b === null ? null : compareScalars(a, b);
  const not = (v: boolean | null) => (v === null ? null : !v);
  switch (e.k) {
    case 'and': {
      let unknown = false;
      for (const p of e.parts) {
        const v = evaluateHaving(p, row, at);
        if (v === false) return false;
        if (v === null) unknown = true;
      }
      return unknown ? null : true;
    }
    case 'or': {
      let unknown = false;
      for (const p of e.parts) {
        const v = evaluateHaving(p, row, at);
        if (v === true) return true;
        if (v === null) unknown = true;
      }
      return unknown ? null : false;
    }
    case 'not':
      return not(evaluateHaving(e.part, row, at));
    case 'null': {
      const isNull = value(e.operand) === null;
      return e.not ? !isNull : isNull;
    }
    case 'cmp': {
      const c = cmp(value(e.left), value(e.right));
      if (c === null) return null;
      switch (e.op) {
        case '=':
          return c === 0;
        case '<>':
          return c !== 0;
        case '<':
          return c < 0;
        case '<=':
          return c <= 0;
        case '>':
          return c > 0;
        default:
          return c >= 0;
      }
    }
    case 'in': {
      const left = value(e.left);
      let unknown = false;
      let found = false;
      for (const item of e.list) {
        const c = cmp(left, value(item));
        if (c === null) unknown = true;
        else if (c === 0) {
          found = true;
          break;
        }
      }
      const v = found ? true : unknown ? null : false;
      return e.not ? not(v) : v;
    }
    case 'between': {
      const left = value(e.left);
      const lo = cmp(left, value(e.low));
      const hi = cmp(left, value(e.high));
      const ge = lo === null ? null : lo >= 0;
      const le = hi === null ? null : hi <= 0;
      const v = ge === false || le === false ? false : ge === null || le === null ? null : true;
      return e.not ? not(v) : v;
    }
  }
}
