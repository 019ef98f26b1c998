/**
 * The router: a parameterised statement in, a route plan out (which physical tables on
 * which data sources, the rewritten SQL for each, and how to merge the answers).
 *
 * Lifecycle of one statement, one file a stage:
 * parse (cached per statement text, here) → find tables (`statement-tables.ts`) → extract
 * sharding conditions from WHERE (`sharding-condition.ts`) / INSERT values
 * (`insert-rows.ts`), together the cached analysis (`statement-analysis.ts`) → evaluate them
 * against the parameters (`condition-evaluator.ts`) → rewrite the syntax tree per shard
 * (`shard-sql-template.ts`; for scatter SELECTs `scatter-rewrite.ts`: LIMIT pushdown, AVG as
 * SUM + COUNT, hidden ORDER BY / GROUP BY columns; INSERTs split per shard in
 * `insert-routing.ts`) → deparse (cached per shard, `shard-sql-template.ts`).
 * Values stay parameters throughout; the router never splices a value into SQL text.
 */
import { ErrorCodes, PeakError } from '../core/errors.js';
import { evaluateCondition, type ShardSet, shardOf } from './condition-evaluator.js';
import { bindHaving } from './having-filter.js';
import { routeInsert } from './insert-routing.js';
import { routeError, unsupported } from './route-errors.js';
import type { RoutePlan, RouteUnit } from './route-plan.js';
import { renderTemplate } from './shard-sql-template.js';
import type { ShardingLayout } from './sharding-layout.js';
import { fingerprintStatement, parseStatement } from './sql-parser.js';
import { type Analysis, analyseStatement } from './statement-analysis.js';
import { resolveValue, type ValueRef } from './value-ref.js';

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
    const plan = this.#plan(a, params, shadow, options);
    if (a.localTable !== undefined && plan.units.length !== 1) {
      throw unsupported(
        sql,
        `${a.localTable} is a per-data-source table, and this statement would run on ${plan.units.length} shards; route it to one shard (a condition or VALUES row on ${a.shardedTable?.shardingColumn ?? 'the sharding column'})`,
      );
    }
    return plan;
  }

  /** The route plan of an analysed statement. */
  #plan(
    a: Analysis,
    params: readonly unknown[],
    shadow: boolean,
    options: { combine?: boolean },
  ): RoutePlan {
    const sql = a.sql;
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
          sql: renderTemplate(a.direct, undefined, suffix),
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
    if (a.insert !== undefined)
      return routeInsert(a, table, params, suffix, tables, shadow, this.layout);

    let shards: ShardSet;
    try {
      const c = a.condition;
      if (c.k === 'eq' && c.values.length === 1) {
        // The point query: one value, one shard (no sets on the hot path).
        const v = resolveValue(c.values[0]!, params, sql);
        if (v !== null) {
          const s = shardOf(c.table, c.gene, v, this.layout.geneBits);
          return {
            sql,
            kind: a.kind,
            write: a.write,
            units: [
              {
                dataSource: this.layout.node(table, s).dataSource,
                shard: s,
                sql: renderTemplate(a.direct, s, suffix),
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
      shards = evaluateCondition(a.condition, params, sql, this.layout.geneBits);
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
          sql: renderTemplate(a.direct, s, suffix),
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
      sql: renderTemplate(sc.template, s, suffix, limit !== undefined && !sc.merge.aggregated),
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
      merge: {
        ...sc.merge,
        limit,
        offset,
        sortInputs,
        ...(sc.merge.having === undefined
          ? {}
          : { having: bindHaving(sc.merge.having, params, sql) }),
      },
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

  /** Statement cache counters: cached statements, hits and misses (parses) since creation. */
  cacheStats(): { statements: number; hits: number; misses: number } {
    return { statements: this.#cache.size, hits: this.#hits, misses: this.#misses };
  }

  /** The statement's analysis: from the cache, or parsed and analysed (evicting the oldest). */
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
    const a = analyseStatement(sql, parseStatement(sql), this.layout);
    if (this.#cache.size >= this.#cacheSize)
      this.#cache.delete(this.#cache.keys().next().value as string);
    this.#cache.set(sql, a);
    return a;
  }
}
