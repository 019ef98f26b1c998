/**
 * The router: a parameterised statement in, a route plan out (which physical tables on
 * which data sources, the rewritten SQL for each, and how to merge the answers).
 *
 * Lifecycle of one statement: parse (cached per statement text) → find tables → extract
 * sharding conditions from WHERE / INSERT values → evaluate them against the parameters →
 * rewrite the syntax tree per shard (table names, and for scatter SELECTs: LIMIT pushdown,
 * AVG as SUM + COUNT, hidden ORDER BY / GROUP BY columns) → deparse (cached per shard).
 * Values stay parameters throughout; the router never splices a value into SQL text.
 */
import { ErrorCodes, PeakError } from '../core/errors.js';
import type { MergePlan, OutputColumn } from './result-merger.js';
import type { RangeBound, ShardValue } from './sharding-algorithm.js';
import type { ShardedTable, ShardingLayout } from './sharding-layout.js';
import {
  deparseStatement,
  fingerprintStatement,
  parseStatement,
  type SqlNode,
  sameExpression,
  shortSql,
  walk,
} from './sql-parser.js';

/** One physical statement to run. */
export interface RouteUnit {
  /** The data source (database) it runs on. */
  dataSource: string;
  /** The shard index, or undefined for broadcast / unsharded tables and combined units. */
  shard: number | undefined;
  /** For a unit combining several shards of one data source (UNION ALL): their indexes. */
  shards?: number[];
  /** The rewritten SQL. */
  sql: string;
  /** Its parameters. */
  params: unknown[];
}

/** Where a statement goes and how its answers are combined. */
export interface RoutePlan {
  /** The statement as given. */
  sql: string;
  /** The statement kind. */
  kind: 'select' | 'insert' | 'update' | 'delete';
  /** True when the statement must run on a primary (writes, SELECT ... FOR UPDATE). */
  write: boolean;
  /** The physical statements. */
  units: RouteUnit[];
  /** How to merge several SELECT answers; undefined for one unit or for writes. */
  merge: MergePlan | undefined;
  /** The sharded logical tables involved. */
  tables: string[];
  /** One line: why these shards (for `peak data route` and logs). */
  reason: string;
  /** True when the route was computed for stress (shadow) traffic. */
  shadow: boolean;
}

type ValueRef = { param: number } | { value: ShardValue };

type Condition =
  | { k: 'all' }
  | { k: 'and' | 'or'; parts: Condition[] }
  | { k: 'eq'; table: ShardedTable; gene: boolean; values: ValueRef[] }
  | { k: 'any'; table: ShardedTable; gene: boolean; param: number }
  | {
      k: 'range';
      table: ShardedTable;
      low?: { ref: ValueRef; inclusive: boolean };
      high?: { ref: ValueRef; inclusive: boolean };
    };

interface TableRef {
  node: SqlNode;
  logical: string;
  kind: 'sharded' | 'broadcast' | 'single';
  alias: string | undefined;
}

/** A statement's rewrite target: an AST whose table nodes are renamed per shard. */
interface Template {
  ast: SqlNode;
  tableNodes: { node: SqlNode; logical: string; sharded: boolean; alias: unknown }[];
  /** New parameter i (0-based) takes old parameter paramMap[i] (0-based); -1 = the LIMIT. */
  paramMap: number[] | undefined;
  sqlCache: Map<string, string>;
  /** Rendered SQL by shard + 1 (0: no shard), without and with the shadow suffix. */
  plain: (string | undefined)[];
  shadow: (string | undefined)[];
}

interface Analysis {
  sql: string;
  kind: RoutePlan['kind'];
  write: boolean;
  tables: TableRef[];
  /** True when an INSERT / UPDATE / DELETE writes a broadcast table (goes to every data source). */
  broadcastWrite: boolean;
  shardedTable: ShardedTable | undefined;
  condition: Condition;
  insert: { rows: SqlNode[][]; columnIndex: number; gene: boolean } | undefined;
  direct: Template;
  scatter:
    | {
        template: Template;
        merge: Omit<MergePlan, 'limit' | 'offset' | 'sortInputs'>;
        limit: ValueRef | undefined;
        offset: ValueRef | undefined;
      }
    | undefined;
  scatterError: PeakError | undefined;
  fingerprint: string | undefined;
  /** Rendered INSERT splits by shard and row set. */
  splits: Map<string, { sql: string; map: number[] }>;
  /** The sharded logical tables of the statement, deduplicated. */
  shardedNames: string[];
  /** The route reason of a one-shard answer. */
  pointReason: string;
}

const AGGREGATES = new Set(['count', 'sum', 'min', 'max', 'avg']);
/** Aggregates that cannot be merged from per-shard partial results. */
const OTHER_AGGREGATES = new Set([
  'array_agg',
  'string_agg',
  'bool_and',
  'bool_or',
  'every',
  'json_agg',
  'jsonb_agg',
  'json_object_agg',
  'jsonb_object_agg',
  'stddev',
  'stddev_pop',
  'stddev_samp',
  'variance',
  'var_pop',
  'var_samp',
  'percentile_cont',
  'percentile_disc',
  'mode',
  'bit_and',
  'bit_or',
  'corr',
  'covar_pop',
  'covar_samp',
  'regr_slope',
  'xmlagg',
  'any_value',
]);

function unsupported(sql: string, reason: string): PeakError {
  return new PeakError(
    ErrorCodes.DATA_UNSUPPORTED,
    `cannot run over shards: ${reason}; statement: ${shortSql(sql)}`,
    {
      details: { sql, reason },
    },
  );
}

function routeError(sql: string, reason: string, cause?: unknown): PeakError {
  return new PeakError(
    ErrorCodes.DATA_ROUTE,
    `cannot route: ${reason}; statement: ${shortSql(sql)}`,
    {
      cause,
      details: { sql, reason },
    },
  );
}

function columnOf(node: unknown): { qualifier: string | undefined; column: string } | undefined {
  const ref = (node as SqlNode | undefined)?.ColumnRef as { fields?: SqlNode[] } | undefined;
  if (ref?.fields === undefined) return undefined;
  const names = ref.fields.map((f) => (f.String as { sval?: string } | undefined)?.sval);
  if (names.some((n) => n === undefined)) return undefined;
  const column = names[names.length - 1]!;
  const qualifier = names.length >= 2 ? names[names.length - 2] : undefined;
  return { qualifier, column };
}

function valueRefOf(node: unknown): ValueRef | undefined {
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

function opName(expr: SqlNode): string | undefined {
  const name = expr.name as SqlNode[] | undefined;
  return (name?.[name.length - 1]?.String as { sval?: string } | undefined)?.sval;
}

function resolveValue(ref: ValueRef, params: readonly unknown[], sql: string): ShardValue {
  if ('value' in ref) return ref.value;
  if (ref.param < 1 || ref.param > params.length) {
    throw routeError(
      sql,
      `the statement uses $${ref.param} but ${params.length} parameters were given`,
    );
  }
  return params[ref.param - 1] as ShardValue;
}

function intersect(a: Set<number> | 'all', b: Set<number> | 'all'): Set<number> | 'all' {
  if (a === 'all') return b;
  if (b === 'all') return a;
  return new Set([...a].filter((x) => b.has(x)));
}

function union(a: Set<number> | 'all', b: Set<number> | 'all'): Set<number> | 'all' {
  if (a === 'all' || b === 'all') return 'all';
  return new Set([...a, ...b]);
}

/** Options for {@link SqlRouter}. */
export interface SqlRouterOptions {
  /** Statements whose analysis is cached (by exact text). Default 2000. */
  cacheSize?: number;
  /**
   * Send a scatter SELECT's shards on one data source as one UNION ALL statement (one
   * round trip per data source instead of one per shard). Default true.
   */
  combinePerDataSource?: boolean;
}

/** Routes and rewrites statements for one layout; caches per statement text. */
export class SqlRouter {
  /** The layout routed against. */
  readonly layout: ShardingLayout;
  readonly #cache = new Map<string, Analysis>();
  readonly #cacheSize: number;
  readonly #combine: boolean;
  #hits = 0;
  #misses = 0;

  constructor(layout: ShardingLayout, options: SqlRouterOptions = {}) {
    this.layout = layout;
    this.#cacheSize = options.cacheSize ?? 2000;
    this.#combine = options.combinePerDataSource ?? true;
  }

  /** The parser's fingerprint of a statement (cached with its analysis). */
  fingerprint(sql: string): string {
    const a = this.#cache.get(sql);
    if (a === undefined) return fingerprintStatement(sql);
    a.fingerprint ??= fingerprintStatement(sql);
    return a.fingerprint;
  }

  /**
   * Routes one statement with its parameters; `shadow` rewrites to shadow tables;
   * `options.combine` overrides `combinePerDataSource` (streams need one unit per shard).
   */
  route(
    sql: string,
    params: readonly unknown[] = [],
    shadow = false,
    options: { combine?: boolean } = {},
  ): RoutePlan {
    const a = this.#analysis(sql);
    const suffix = shadow ? this.layout.shadowSuffix : '';
    const table = a.shardedTable;
    if (table === undefined) {
      const dataSources = a.broadcastWrite
        ? [...this.layout.dataSources]
        : [this.layout.defaultDataSource];
      return {
        sql,
        kind: a.kind,
        write: a.write,
        units: dataSources.map((dataSource) => ({
          dataSource,
          shard: undefined,
          sql: this.#render(a.direct, undefined, suffix),
          params: params as unknown[],
        })),
        merge: undefined,
        tables: [],
        reason:
          dataSources.length > 1
            ? `broadcast write: every data source`
            : a.tables.some((t) => t.kind === 'broadcast')
              ? 'broadcast table: read from the default data source'
              : 'no sharded table: the default data source',
        shadow,
      };
    }
    const tables = a.shardedNames;
    if (a.insert !== undefined) return this.#routeInsert(a, table, params, suffix, tables, shadow);

    let shards: Set<number> | 'all';
    try {
      const c = a.condition;
      if (c.k === 'eq' && c.values.length === 1) {
        // The point query: one value, one shard (no sets on the hot path).
        const v = resolveValue(c.values[0]!, params, sql);
        if (v !== null) {
          const s = this.#shardOf(c.table, c.gene, v);
          return {
            sql,
            kind: a.kind,
            write: a.write,
            units: [
              {
                dataSource: this.layout.node(table, s).dataSource,
                shard: s,
                sql: this.#render(a.direct, s, suffix),
                params: params as unknown[],
              },
            ],
            merge: undefined,
            tables,
            reason: a.pointReason,
            shadow,
          };
        }
      }
      shards = this.#evaluate(a.condition, params, sql);
    } catch (err) {
      if (err instanceof PeakError && err.code !== ErrorCodes.DATA_ROUTE) throw err;
      throw routeError(sql, (err as Error).message, err);
    }
    let list: number[];
    let reason: string;
    if (shards === 'all') {
      list = Array.from({ length: table.shardCount }, (_, i) => i);
      reason = `no usable condition on ${table.shardingColumn}: all ${table.shardCount} shards`;
    } else if (shards.size === 0) {
      list = [0];
      reason = 'the sharding condition matches no shard: one shard answers the empty result';
    } else {
      list = [...shards].sort((x, y) => x - y);
      reason = `${table.shardingColumn} condition: ${list.length} of ${table.shardCount} shards`;
    }
    if (list.length === 1 || a.kind !== 'select') {
      return {
        sql,
        kind: a.kind,
        write: a.write,
        units: list.map((s) => ({
          dataSource: this.layout.node(table, s).dataSource,
          shard: s,
          sql: this.#render(a.direct, s, suffix),
          params: params as unknown[],
        })),
        merge: undefined,
        tables,
        reason,
        shadow,
      };
    }
    if (a.scatter === undefined) throw a.scatterError ?? unsupported(sql, 'scatter query');
    const sc = a.scatter;
    const limit = sc.limit === undefined ? undefined : this.#count(sc.limit, params, sql, 'LIMIT');
    const offset =
      sc.offset === undefined ? 0 : (this.#count(sc.offset, params, sql, 'OFFSET') ?? 0);
    const shardParams = (sc.template.paramMap ?? params.map((_, i) => i)).map((i) =>
      i === -1 ? String((limit ?? 0) + offset) : params[i],
    );
    let units: RouteUnit[] = list.map((s) => ({
      dataSource: this.layout.node(table, s).dataSource,
      shard: s,
      sql: this.#render(sc.template, s, suffix, limit !== undefined && !sc.merge.aggregated),
      params: shardParams,
    }));
    let sortInputs = false;
    if ((options.combine ?? this.#combine) && !a.write) {
      // One round trip per data source: its shards' statements joined by UNION ALL (each
      // keeps its own ORDER BY / LIMIT); the merger re-sorts each data source's rows.
      const byDataSource = new Map<string, RouteUnit[]>();
      for (const u of units) {
        const g = byDataSource.get(u.dataSource);
        if (g === undefined) byDataSource.set(u.dataSource, [u]);
        else g.push(u);
      }
      if (byDataSource.size < units.length) {
        units = [...byDataSource.values()].map((g) =>
          g.length === 1
            ? g[0]!
            : {
                dataSource: g[0]!.dataSource,
                shard: undefined,
                shards: g.map((u) => u.shard!),
                sql: g.map((u) => `(${u.sql})`).join(' UNION ALL '),
                params: shardParams,
              },
        );
        sortInputs = sc.merge.orderBy.length > 0 && !sc.merge.aggregated;
      }
    }
    return {
      sql,
      kind: a.kind,
      write: a.write,
      units,
      merge: { ...sc.merge, limit, offset, sortInputs },
      tables,
      reason,
      shadow,
    };
  }

  #count(ref: ValueRef, params: readonly unknown[], sql: string, what: string): number | undefined {
    const v = resolveValue(ref, params, sql);
    if (v === null) return undefined;
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0)
      throw routeError(sql, `${what} must be a non-negative integer, got ${String(v)}`);
    return n;
  }

  #routeInsert(
    a: Analysis,
    table: ShardedTable,
    params: readonly unknown[],
    suffix: string,
    tables: string[],
    shadow: boolean,
  ): RoutePlan {
    const ins = a.insert!;
    const groups = new Map<number, number[]>();
    for (const [i, row] of ins.rows.entries()) {
      const ref = valueRefOf(row[ins.columnIndex]);
      if (ref === undefined) {
        throw routeError(
          a.sql,
          `row ${i + 1} of the INSERT gives ${table.shardingColumn} as an expression; pass it as a parameter or a literal`,
        );
      }
      let shard: number;
      try {
        shard = this.#shardOf(table, ins.gene, resolveValue(ref, params, a.sql));
      } catch (err) {
        if (
          err instanceof PeakError &&
          err.code === ErrorCodes.DATA_ROUTE &&
          err.message.includes('statement:')
        )
          throw err;
        throw routeError(a.sql, `row ${i + 1}: ${(err as Error).message}`, err);
      }
      const g = groups.get(shard);
      if (g === undefined) groups.set(shard, [i]);
      else g.push(i);
    }
    const units: RouteUnit[] = [];
    if (groups.size === 1) {
      const s = groups.keys().next().value as number;
      units.push({
        dataSource: this.layout.node(table, s).dataSource,
        shard: s,
        sql: this.#render(a.direct, s, suffix),
        params: params as unknown[],
      });
    } else {
      // Split the multi-row INSERT: one statement per shard with only its rows, params
      // renumbered. The rendering depends only on (shard, rows), so it is cached by both.
      const valuesOwner = a.direct.ast.InsertStmt as SqlNode;
      const select = (valuesOwner.selectStmt as SqlNode).SelectStmt as SqlNode;
      const original = select.valuesLists;
      for (const [s, rows] of [...groups].sort((x, y) => x[0] - y[0])) {
        const key = `${s}${suffix}|${rows.join(',')}`;
        let split = a.splits.get(key);
        if (split === undefined) {
          select.valuesLists = rows.map((r) => (original as unknown[])[r]);
          const renumber = renumberParams(a.direct.ast);
          try {
            split = { sql: this.#render(a.direct, s, suffix, false, true), map: renumber.map };
          } finally {
            renumber.restore();
            select.valuesLists = original;
          }
          if (a.splits.size >= 256) a.splits.clear();
          a.splits.set(key, split);
        }
        units.push({
          dataSource: this.layout.node(table, s).dataSource,
          shard: s,
          sql: split.sql,
          params: split.map.map((i) => params[i]),
        });
      }
    }
    return {
      sql: a.sql,
      kind: 'insert',
      write: true,
      units,
      merge: undefined,
      tables,
      reason: `${ins.gene ? 'gene of ' : ''}${table.shardingColumn} in the VALUES: ${units.length} shard${units.length > 1 ? 's' : ''}`,
      shadow,
    };
  }

  #shardOf(table: ShardedTable, gene: boolean, value: ShardValue): number {
    if (!gene) return table.algorithm.shard(value, table.shardCount);
    if (value === null)
      throw new PeakError(ErrorCodes.DATA_ROUTE, 'a NULL gene id matches no shard');
    let id: bigint;
    try {
      id = BigInt(value as string | number | bigint);
    } catch {
      throw new PeakError(
        ErrorCodes.DATA_ROUTE,
        `a gene id must be an integer, got ${JSON.stringify(String(value))}`,
      );
    }
    const g = Number(id & BigInt(2 ** this.layout.geneBits - 1));
    return table.algorithm.shardOfGene!(g, table.shardCount);
  }

  #evaluate(c: Condition, params: readonly unknown[], sql: string): Set<number> | 'all' {
    switch (c.k) {
      case 'all':
        return 'all';
      case 'and':
        return c.parts.reduce<Set<number> | 'all'>(
          (acc, p) => intersect(acc, this.#evaluate(p, params, sql)),
          'all',
        );
      case 'or': {
        let acc: Set<number> | 'all' = new Set();
        for (const p of c.parts) {
          acc = union(acc, this.#evaluate(p, params, sql));
          if (acc === 'all') return acc;
        }
        return acc;
      }
      case 'eq': {
        const out = new Set<number>();
        for (const ref of c.values) {
          const v = resolveValue(ref, params, sql);
          if (v === null) continue; // col = NULL is never true
          out.add(this.#shardOf(c.table, c.gene, v));
        }
        return out;
      }
      case 'any': {
        const arr = resolveValue({ param: c.param }, params, sql) as unknown;
        if (!Array.isArray(arr)) return 'all';
        const out = new Set<number>();
        for (const v of arr as ShardValue[])
          if (v !== null) out.add(this.#shardOf(c.table, c.gene, v));
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

  /** Deparses a template for one shard (cached), renaming every table node. */
  #render(
    t: Template,
    shard: number | undefined,
    suffix: string,
    withLimit = false,
    noCache = false,
  ): string {
    // Hot path: plain renders are kept in arrays by shard (no key string per call).
    const slot = withLimit || noCache ? undefined : suffix === '' ? t.plain : t.shadow;
    const index = shard === undefined ? 0 : shard + 1;
    const fast = slot?.[index];
    if (fast !== undefined) return fast;
    const key = `${shard ?? '-'}${suffix}${withLimit ? 'L' : ''}`;
    if (!noCache) {
      const hit = t.sqlCache.get(key);
      if (hit !== undefined) return hit;
    }
    const saved = t.tableNodes.map(({ node }) => node.relname);
    const stmt = (t.ast.SelectStmt as SqlNode | undefined) ?? undefined;
    const savedLimit = stmt?.limitCount;
    try {
      for (const tn of t.tableNodes) {
        const physical = tn.sharded && shard !== undefined ? `${tn.logical}_${shard}` : tn.logical;
        tn.node.relname = `${physical}${suffix}`;
        if (tn.node.relname !== tn.logical && tn.alias === undefined)
          tn.node.alias = { aliasname: tn.logical };
      }
      if (withLimit && stmt !== undefined) {
        stmt.limitCount = { ParamRef: { number: t.paramMap!.indexOf(-1) + 1 } };
        stmt.limitOption = 'LIMIT_OPTION_COUNT';
      }
      const sql = deparseStatement(t.ast);
      if (slot !== undefined) slot[index] = sql;
      if (!noCache) {
        if (t.sqlCache.size > 4096) t.sqlCache.clear();
        t.sqlCache.set(key, sql);
      }
      return sql;
    } finally {
      for (const [i, tn] of t.tableNodes.entries()) {
        tn.node.relname = saved[i];
        if (tn.alias === undefined) delete tn.node.alias;
      }
      if (stmt !== undefined) {
        if (savedLimit === undefined) delete stmt.limitCount;
        else stmt.limitCount = savedLimit;
        if (withLimit)
          stmt.limitOption =
            savedLimit === undefined ? 'LIMIT_OPTION_DEFAULT' : 'LIMIT_OPTION_COUNT';
      }
    }
  }

  /** Statement cache counters: cached statements, hits and misses (parses) since creation. */
  cacheStats(): { statements: number; hits: number; misses: number } {
    return { statements: this.#cache.size, hits: this.#hits, misses: this.#misses };
  }

  #analysis(sql: string): Analysis {
    const hit = this.#cache.get(sql);
    if (hit !== undefined) {
      this.#hits++;
      return hit;
    }
    this.#misses++;
    if (typeof sql !== 'string' || sql.trim() === '') {
      throw new PeakError(ErrorCodes.DATA_SQL, 'empty SQL statement; pass the statement text', {
        details: { sql },
      });
    }
    const a = this.#analyse(sql, parseStatement(sql));
    if (this.#cache.size >= this.#cacheSize)
      this.#cache.delete(this.#cache.keys().next().value as string);
    this.#cache.set(sql, a);
    return a;
  }

  #analyse(sql: string, stmt: SqlNode): Analysis {
    const kindKey = Object.keys(stmt)[0];
    const kinds: Record<string, RoutePlan['kind']> = {
      SelectStmt: 'select',
      InsertStmt: 'insert',
      UpdateStmt: 'update',
      DeleteStmt: 'delete',
    };
    const kind = kindKey === undefined ? undefined : kinds[kindKey];
    if (kind === undefined) {
      throw unsupported(
        sql,
        `only SELECT, INSERT, UPDATE and DELETE are routed (got ${kindKey ?? 'nothing'}); run DDL per shard and use transaction() instead of BEGIN/COMMIT`,
      );
    }
    const body = stmt[kindKey!] as SqlNode;
    const tables = this.#tables(stmt);
    const sharded = tables.filter((t) => t.kind === 'sharded');
    let shardedTable: ShardedTable | undefined;
    if (sharded.length > 0) {
      const first = this.layout.tables.get(sharded[0]!.logical)!;
      for (const t of sharded) {
        const def = this.layout.tables.get(t.logical)!;
        if (def.bindingGroup !== first.bindingGroup) {
          throw unsupported(
            sql,
            `${first.name} and ${def.name} are sharded separately and not bound; a join between them would cross shards (declare them in one binding group if they share the sharding key)`,
          );
        }
      }
      const single = tables.find((t) => t.kind === 'single');
      if (single !== undefined) {
        throw unsupported(
          sql,
          `${single.logical} is not declared in the layout but is used with the sharded table ${first.name}; declare it as broadcast or sharded`,
        );
      }
      shardedTable = first;
    }
    const write = kind !== 'select' || body.lockingClause !== undefined;
    const direct: Template = {
      ast: stmt,
      tableNodes: tables.map((t) => ({
        node: t.node,
        logical: t.logical,
        sharded: t.kind === 'sharded',
        alias: t.node.alias,
      })),
      paramMap: undefined,
      sqlCache: new Map(),
      plain: [],
      shadow: [],
    };
    const analysis: Analysis = {
      sql,
      kind,
      write,
      tables,
      broadcastWrite:
        kind !== 'select' &&
        this.layout.broadcastTables.has(
          ((body.relation as SqlNode | undefined)?.relname as string | undefined) ?? '',
        ),
      shardedTable,
      condition: { k: 'all' },
      insert: undefined,
      direct,
      scatter: undefined,
      scatterError: undefined,
      fingerprint: undefined,
      splits: new Map(),
      shardedNames: [...new Set(sharded.map((t) => t.logical))],
      pointReason:
        shardedTable === undefined
          ? ''
          : `${shardedTable.shardingColumn} condition: 1 of ${shardedTable.shardCount} shards`,
    };
    if (shardedTable === undefined) return analysis;

    if (kind === 'insert') {
      analysis.insert = this.#insertShape(sql, body, shardedTable);
      return analysis;
    }
    if (kind === 'update')
      this.#checkUpdate(sql, body.targetList as SqlNode[] | undefined, sharded);
    if (kind === 'select' && (body.op ?? 'SETOP_NONE') !== 'SETOP_NONE') {
      analysis.scatterError = unsupported(sql, 'UNION / INTERSECT / EXCEPT over several shards');
      return analysis;
    }
    analysis.condition = this.#condition(body.whereClause as SqlNode | undefined, sharded);
    if (kind === 'select') {
      try {
        analysis.scatter = this.#scatterPlan(sql, stmt);
      } catch (err) {
        if (!(err instanceof PeakError)) throw err;
        analysis.scatterError = err;
      }
    }
    return analysis;
  }

  #tables(stmt: SqlNode): TableRef[] {
    const ctes = new Set<string>();
    walk(stmt, (o) => {
      const cte = o.CommonTableExpr as { ctename?: string } | undefined;
      if (cte?.ctename !== undefined) ctes.add(cte.ctename);
      return undefined;
    });
    const out: TableRef[] = [];
    walk(stmt, (o) => {
      if (typeof o.relname !== 'string' || typeof o.relpersistence !== 'string') return undefined;
      const name = o.relname;
      if (o.schemaname === undefined && ctes.has(name)) return false;
      const kind = this.layout.tables.has(name)
        ? 'sharded'
        : this.layout.broadcastTables.has(name)
          ? 'broadcast'
          : 'single';
      out.push({
        node: o,
        logical: name,
        kind,
        alias: (o.alias as { aliasname?: string } | undefined)?.aliasname,
      });
      return false;
    });
    return out;
  }

  #matchColumn(
    node: unknown,
    sharded: TableRef[],
  ): { table: ShardedTable; gene: boolean } | undefined {
    const col = columnOf(node);
    if (col === undefined) return undefined;
    for (const t of sharded) {
      if (col.qualifier !== undefined && col.qualifier !== (t.alias ?? t.logical)) continue;
      const def = this.layout.tables.get(t.logical)!;
      if (def.shardingColumn === col.column) return { table: def, gene: false };
      if (def.geneColumns.includes(col.column)) return { table: def, gene: true };
    }
    return undefined;
  }

  #condition(node: SqlNode | undefined, sharded: TableRef[]): Condition {
    if (node === undefined) return { k: 'all' };
    const bool = node.BoolExpr as SqlNode | undefined;
    if (bool !== undefined) {
      const parts = (bool.args as SqlNode[]).map((p) => this.#condition(p, sharded));
      if (bool.boolop === 'AND_EXPR') return { k: 'and', parts };
      if (bool.boolop === 'OR_EXPR') return { k: 'or', parts };
      return { k: 'all' };
    }
    const e = node.A_Expr as SqlNode | undefined;
    if (e === undefined) return { k: 'all' };
    const op = opName(e);
    let col = this.#matchColumn(e.lexpr, sharded);
    let other = e.rexpr;
    let flipped = false;
    if (col === undefined && e.kind === 'AEXPR_OP') {
      col = this.#matchColumn(e.rexpr, sharded);
      other = e.lexpr;
      flipped = true;
    }
    if (col === undefined) return { k: 'all' };
    if (e.kind === 'AEXPR_OP') {
      const ref = valueRefOf(other);
      if (ref === undefined) return { k: 'all' };
      if (op === '=') return { k: 'eq', ...col, values: [ref] };
      if (col.gene) return { k: 'all' };
      const effective = flipped
        ? ({ '<': '>', '<=': '>=', '>': '<', '>=': '<=' } as Record<string, string>)[op ?? '']
        : op;
      if (effective === '>' || effective === '>=')
        return { k: 'range', table: col.table, low: { ref, inclusive: effective === '>=' } };
      if (effective === '<' || effective === '<=')
        return { k: 'range', table: col.table, high: { ref, inclusive: effective === '<=' } };
      return { k: 'all' };
    }
    if (e.kind === 'AEXPR_IN' && op === '=') {
      const items = ((e.rexpr as SqlNode).List as { items?: SqlNode[] } | undefined)?.items ?? [];
      const refs = items.map(valueRefOf);
      if (refs.some((r) => r === undefined)) return { k: 'all' };
      return { k: 'eq', ...col, values: refs as ValueRef[] };
    }
    if (e.kind === 'AEXPR_OP_ANY' && op === '=') {
      const ref = valueRefOf(e.rexpr);
      if (ref !== undefined && 'param' in ref) return { k: 'any', ...col, param: ref.param };
      return { k: 'all' };
    }
    if (e.kind === 'AEXPR_BETWEEN' && !col.gene) {
      const items = ((e.rexpr as SqlNode).List as { items?: SqlNode[] } | undefined)?.items ?? [];
      const low = valueRefOf(items[0]);
      const high = valueRefOf(items[1]);
      if (low === undefined || high === undefined) return { k: 'all' };
      return {
        k: 'range',
        table: col.table,
        low: { ref: low, inclusive: true },
        high: { ref: high, inclusive: true },
      };
    }
    return { k: 'all' };
  }

  #insertShape(sql: string, body: SqlNode, table: ShardedTable): Analysis['insert'] {
    const cols = ((body.cols as SqlNode[] | undefined) ?? []).map(
      (c) => (c.ResTarget as { name: string }).name,
    );
    if (cols.length === 0) {
      throw routeError(sql, `an INSERT into the sharded table ${table.name} must name its columns`);
    }
    const values = ((body.selectStmt as SqlNode | undefined)?.SelectStmt as SqlNode | undefined)
      ?.valuesLists as SqlNode[] | undefined;
    if (values === undefined) {
      throw unsupported(
        sql,
        `INSERT ... SELECT into the sharded table ${table.name}; insert VALUES rows`,
      );
    }
    let columnIndex = cols.indexOf(table.shardingColumn);
    let gene = false;
    if (columnIndex < 0) {
      columnIndex = cols.findIndex((c) => table.geneColumns.includes(c));
      gene = columnIndex >= 0;
    }
    if (columnIndex < 0) {
      throw routeError(
        sql,
        `the INSERT into ${table.name} gives no value for its sharding column ${table.shardingColumn}${table.geneColumns.length > 0 ? ` or its gene columns (${table.geneColumns.join(', ')})` : ''}`,
      );
    }
    const conflict = (body.onConflictClause as SqlNode | undefined)?.targetList as
      | SqlNode[]
      | undefined;
    if (conflict !== undefined)
      this.#checkUpdate(sql, conflict, [
        { node: {}, logical: table.name, kind: 'sharded', alias: undefined },
      ]);
    return {
      rows: values.map((v) => ((v.List as { items?: SqlNode[] }).items ?? []) as SqlNode[]),
      columnIndex,
      gene,
    };
  }

  #checkUpdate(sql: string, targets: SqlNode[] | undefined, sharded: TableRef[]): void {
    for (const t of targets ?? []) {
      const name = (t.ResTarget as { name?: string } | undefined)?.name;
      for (const ref of sharded) {
        const def = this.layout.tables.get(ref.logical)!;
        if (name === def.shardingColumn || (name !== undefined && def.geneColumns.includes(name))) {
          throw unsupported(
            sql,
            `it updates the sharding column ${def.name}.${name}, which would move the row to another shard; delete and re-insert the row instead`,
          );
        }
      }
    }
  }

  /** Builds the scatter template of a SELECT: hidden sort / group columns, AVG split, LIMIT pushdown. */
  #scatterPlan(sql: string, original: SqlNode): NonNullable<Analysis['scatter']> {
    const stmt = structuredClone(original);
    const sel = stmt.SelectStmt as SqlNode;
    if (sel.distinctClause !== undefined)
      throw unsupported(sql, 'SELECT DISTINCT over several shards');
    if (sel.havingClause !== undefined) throw unsupported(sql, 'HAVING over several shards');
    if (sel.withClause !== undefined)
      throw unsupported(sql, 'WITH (common table expressions) over several shards');
    const fromSub = (sel.fromClause as SqlNode[] | undefined)?.some(
      (f) => f.RangeSubselect !== undefined,
    );
    if (fromSub) throw unsupported(sql, 'a subquery in FROM over several shards');
    const targets = (sel.targetList as SqlNode[] | undefined) ?? [];
    let windowed = false;
    walk(targets, (o) => {
      if ((o.FuncCall as SqlNode | undefined)?.over !== undefined) windowed = true;
      return undefined;
    });
    if (windowed) throw unsupported(sql, 'window functions (OVER) over several shards');
    const starAt = targets.findIndex((t) => {
      let star = false;
      walk((t.ResTarget as SqlNode).val, (o) => {
        if (o.A_Star !== undefined) star = true;
        return undefined;
      });
      return star;
    });
    const known = starAt < 0 ? targets.length : starAt;
    const hidden: SqlNode[] = [];
    const addHidden = (expr: unknown): number => {
      hidden.push({ ResTarget: { name: `__peak_${hidden.length}`, val: structuredClone(expr) } });
      return -hidden.length;
    };
    const resolve = (expr: SqlNode): number => {
      const c = valueRefOf(expr);
      if (
        c !== undefined &&
        'value' in c &&
        typeof c.value === 'number' &&
        expr.A_Const !== undefined
      ) {
        if (c.value < 1 || c.value > known)
          throw unsupported(
            sql,
            `ORDER BY / GROUP BY position ${c.value} next to * or out of range`,
          );
        return c.value - 1;
      }
      const col = columnOf(expr);
      for (let i = 0; i < known; i++) {
        const rt = targets[i]!.ResTarget as SqlNode;
        if (col !== undefined && col.qualifier === undefined && rt.name === col.column) return i;
        if (sameExpression(rt.val, expr)) return i;
      }
      return addHidden(expr);
    };
    const sortClause = (sel.sortClause as SqlNode[] | undefined) ?? [];
    const orderBy = sortClause.map((s) => {
      const sb = s.SortBy as SqlNode;
      if (sb.useOp !== undefined) throw unsupported(sql, 'ORDER BY ... USING over several shards');
      const desc = sb.sortby_dir === 'SORTBY_DESC';
      const nulls = sb.sortby_nulls as string | undefined;
      const nullsFirst =
        nulls === 'SORTBY_NULLS_FIRST' ? true : nulls === 'SORTBY_NULLS_LAST' ? false : desc;
      return { column: resolve(sb.node as SqlNode), desc, nullsFirst };
    });
    const groupClause = (sel.groupClause as SqlNode[] | undefined) ?? [];
    if (groupClause.some((g) => g.GroupingSet !== undefined))
      throw unsupported(sql, 'GROUPING SETS / ROLLUP / CUBE over several shards');
    const groupBy = groupClause.map((g) => resolve(g));

    // Classify every output column (visible and hidden) for aggregate merging.
    const all = [...targets, ...hidden];
    const aggOf = (val: unknown): { fn: string; node: SqlNode } | undefined => {
      const f = (val as SqlNode | undefined)?.FuncCall as SqlNode | undefined;
      if (f === undefined) return undefined;
      const names = (f.funcname as SqlNode[]).map((n) => (n.String as { sval: string }).sval);
      const fn = names[names.length - 1]!;
      return names.length === 1 && AGGREGATES.has(fn) ? { fn, node: f } : undefined;
    };
    let hasAgg = false;
    walk(all, (o) => {
      const f = o.FuncCall as SqlNode | undefined;
      if (f !== undefined) {
        const names = (f.funcname as SqlNode[]).map((n) => (n.String as { sval: string }).sval);
        const fn = names[names.length - 1]!;
        if (OTHER_AGGREGATES.has(fn)) {
          throw unsupported(sql, `the aggregate ${fn}() cannot be merged from per-shard results`);
        }
        if (AGGREGATES.has(fn) || f.agg_star === true) hasAgg = true;
      }
      return undefined;
    });
    const aggregated = hasAgg || groupBy.length > 0;
    const columns: OutputColumn[] = [];
    if (aggregated) {
      if (starAt >= 0)
        throw unsupported(sql, 'SELECT * with aggregates or GROUP BY over several shards');
      const groupExprs = groupClause.map((g, i) =>
        groupBy[i]! >= 0 ? (all[groupBy[i]!]!.ResTarget as SqlNode).val : g,
      );
      const count = all.length;
      for (let i = 0; i < count; i++) {
        const rt = all[i]!.ResTarget as SqlNode;
        const agg = aggOf(rt.val);
        if (agg !== undefined) {
          const f = agg.node;
          if (f.agg_distinct === true || f.agg_filter !== undefined || f.agg_order !== undefined) {
            throw unsupported(sql, `${agg.fn}(DISTINCT / FILTER / ORDER BY) over several shards`);
          }
          if (agg.fn === 'avg') {
            if (rt.name === undefined) rt.name = 'avg';
            f.funcname = [{ String: { sval: 'sum' } }];
            all.push({
              ResTarget: {
                name: `__peak_${hidden.length}`,
                val: {
                  FuncCall: { ...structuredClone(f), funcname: [{ String: { sval: 'count' } }] },
                },
              },
            });
            hidden.push(all[all.length - 1]!);
            columns.push({ kind: 'avg', countColumn: -hidden.length });
          } else {
            columns.push({ kind: agg.fn as 'count' | 'sum' | 'min' | 'max' });
          }
          continue;
        }
        const isKey =
          groupBy.includes(i < targets.length ? i : -(i - targets.length + 1)) ||
          groupExprs.some((g) => sameExpression(g, rt.val));
        if (!isKey) {
          throw unsupported(
            sql,
            `output column ${i + 1} is neither a GROUP BY key nor a plain count/sum/min/max/avg, so it cannot be merged across shards`,
          );
        }
        columns.push({ kind: 'key' });
      }
      for (let i = count; i < all.length; i++) columns.push({ kind: 'count' });
    }
    sel.targetList = [...targets, ...hidden];

    // LIMIT / OFFSET: shards return offset + limit rows (non-aggregated) or everything.
    const limit = sel.limitCount === undefined ? undefined : valueRefOf(sel.limitCount);
    const offset = sel.limitOffset === undefined ? undefined : valueRefOf(sel.limitOffset);
    if (
      (sel.limitCount !== undefined && limit === undefined) ||
      (sel.limitOffset !== undefined && offset === undefined)
    ) {
      throw unsupported(sql, 'LIMIT / OFFSET must be literals or parameters over several shards');
    }
    if (sel.limitOption === 'LIMIT_OPTION_WITH_TIES')
      throw unsupported(sql, 'FETCH ... WITH TIES over several shards');
    delete sel.limitCount;
    delete sel.limitOffset;
    sel.limitOption = 'LIMIT_OPTION_DEFAULT';
    if (aggregated) delete sel.sortClause;
    const renumber = renumberParams(stmt);
    const paramMap = [...renumber.map];
    if (limit !== undefined && !aggregated) paramMap.push(-1);
    const keyColumns = groupBy;
    return {
      template: {
        ast: stmt,
        tableNodes: this.#tables(stmt).map((t) => ({
          node: t.node,
          logical: t.logical,
          sharded: t.kind === 'sharded',
          alias: t.node.alias,
        })),
        paramMap,
        sqlCache: new Map(),
        plain: [],
        shadow: [],
      },
      merge: { hiddenCount: hidden.length, orderBy, groupBy: keyColumns, columns, aggregated },
      limit,
      offset,
    };
  }
}

/**
 * Renumbers the `$n` of a tree to `$1..$k` in order of first use; `map[i]` is the old
 * 0-based index of new parameter i. `restore()` puts the old numbers back.
 */
export function renumberParams(ast: SqlNode): { map: number[]; restore(): void } {
  const seen = new Map<number, number>();
  const touched: { node: { number: number }; old: number }[] = [];
  walk(ast, (o) => {
    const p = o.ParamRef as { number: number } | undefined;
    if (p !== undefined) {
      let n = seen.get(p.number);
      if (n === undefined) {
        n = seen.size + 1;
        seen.set(p.number, n);
      }
      touched.push({ node: p, old: p.number });
      p.number = n;
    }
    return undefined;
  });
  return {
    map: [...seen.keys()].map((old) => old - 1),
    restore() {
      for (const t of touched) t.node.number = t.old;
    },
  };
}
