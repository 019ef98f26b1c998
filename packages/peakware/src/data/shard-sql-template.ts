/**
 * Rewriting per shard and deparsing, cached: a template is a statement's tree with its
 * table nodes located once; rendering it for a shard renames those nodes in place
 * (`t_order` → `t_order_3`, plus the shadow suffix under stress, aliased to the logical
 * name so `t_order.col` still resolves), prints the tree, and puts the names back. Tables in
 * Peakware's own schemas (`peak_*`, e.g. the outbox `peak_outbox.messages`) keep their names
 * under stress: their rows carry the stress flag themselves (the outbox relay sends stress
 * rows to shadow topics), and no relay reads a shadow copy of them.
 */
import { deparseStatement, type SqlNode, walk } from './sql-parser.js';
import type { TableRef } from './statement-tables.js';

/** A statement's rewrite target: an AST whose table nodes are renamed per shard. */
export interface Template {
  ast: SqlNode;
  tableNodes: {
    node: SqlNode;
    logical: string;
    sharded: boolean;
    /** False for Peakware's own tables (schema `peak_*`): their rows carry the stress flag. */
    shadowed: boolean;
    alias: unknown;
  }[];
  /** New parameter i (0-based) takes old parameter paramMap[i] (0-based); -1 = the LIMIT. */
  paramMap: number[] | undefined;
  sqlCache: Map<string, string>;
  /** Rendered SQL by shard + 1 (0: no shard), without and with the shadow suffix. */
  plain: (string | undefined)[];
  shadow: (string | undefined)[];
}

/** A template over `ast`, whose table references are `tables`. */
export function createTemplate(
  ast: SqlNode,
  tables: TableRef[],
  paramMap: number[] | undefined,
): Template {
  return {
    ast,
    tableNodes: tables.map((t) => ({
      node: t.node,
      logical: t.logical,
      sharded: t.kind === 'sharded',
      shadowed: !(typeof t.node.schemaname === 'string' && t.node.schemaname.startsWith('peak_')),
      alias: t.node.alias,
    })),
    paramMap,
    sqlCache: new Map(),
    plain: [],
    shadow: [],
  };
}

/**
 * Deparses a template for one shard (cached), renaming every table node; `withLimit` adds
 * the pushed-down `LIMIT $k` (k: the -1 of `paramMap`); `noCache` skips the caches (the
 * caller caches, as the INSERT split does).
 */
export function renderTemplate(
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
      tn.node.relname = tn.shadowed ? `${physical}${suffix}` : physical;
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
        stmt.limitOption = savedLimit === undefined ? 'LIMIT_OPTION_DEFAULT' : 'LIMIT_OPTION_COUNT';
    }
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
