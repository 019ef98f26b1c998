/**
 * WITH over several shards. A common table expression that the SELECT reads once, in its
 * own FROM, is that SELECT's subquery in FROM under another name (PostgreSQL inlines it so
 * too, since version 12), so `WITH x AS (SELECT …) SELECT … FROM x` is rewritten to `SELECT
 * … FROM (SELECT …) AS x` before routing: the derived-table rules then apply as they are
 * (row-wise or grouped by the sharding key: exact shard by shard; its own WHERE narrows the
 * shards; the outer WHERE reads only the outer tables). A WITH that is RECURSIVE,
 * MATERIALIZED, data-modifying, read twice, read from another CTE or from a subquery stays
 * as written: it runs on one shard, and is refused across shards with the reason.
 */
import type { SqlNode } from './sql-parser.js';
import { walk } from './sql-parser.js';

/**
 * The RangeVars of `node` that name `cte` (no schema), anywhere in it: a nested WITH that
 * reuses the name counts too, which only keeps the CTE as written (never a wrong inline).
 */
function referencesTo(node: unknown, cte: string): SqlNode[] {
  const out: SqlNode[] = [];
  walk(node, (o) => {
    const rv = o.RangeVar as SqlNode | undefined;
    if (rv !== undefined && rv.schemaname === undefined && rv.relname === cte) out.push(rv);
    return undefined;
  });
  return out;
}

/** The FROM items of a SELECT, joins opened: where a reference may be replaced in place. */
function fromSlots(sel: SqlNode): { holder: SqlNode | SqlNode[]; key: string | number }[] {
  const slots: { holder: SqlNode | SqlNode[]; key: string | number }[] = [];
  const visit = (holder: SqlNode | SqlNode[], key: string | number): void => {
    const item = (holder as Record<string | number, SqlNode>)[key]!;
    slots.push({ holder, key });
    const join = item.JoinExpr as SqlNode | undefined;
    if (join !== undefined) {
      visit(join, 'larg');
      visit(join, 'rarg');
    }
  };
  const from = (sel.fromClause as SqlNode[] | undefined) ?? [];
  for (let i = 0; i < from.length; i++) visit(from, i);
  return slots;
}

/**
 * Rewrites, in place, a SELECT's WITH into subqueries in its FROM when every CTE qualifies
 * (see the header); returns whether it did. Anything else is left exactly as written.
 */
export function inlineCommonTableExpressions(stmt: SqlNode): boolean {
  const sel = stmt.SelectStmt as SqlNode | undefined;
  const withClause = sel?.withClause as SqlNode | undefined;
  if (sel === undefined || withClause === undefined || withClause.recursive === true) return false;
  const ctes = ((withClause.ctes as SqlNode[] | undefined) ?? []).map(
    (c) => c.CommonTableExpr as SqlNode,
  );
  const body = { ...sel, withClause: undefined };
  const slots = fromSlots(sel);
  const plan: { slot: (typeof slots)[number]; cte: SqlNode }[] = [];
  for (const cte of ctes) {
    const name = cte.ctename as string;
    const query = cte.ctequery as SqlNode;
    if (query.SelectStmt === undefined || cte.ctematerialized === 'CTEMaterializeAlways')
      return false;
    // Read by another CTE: left as written.
    if (ctes.some((o) => o !== cte && referencesTo(o.ctequery, name).length > 0)) return false;
    const refs = referencesTo(body, name);
    if (refs.length !== 1) return false;
    const slot = slots.find(
      (s) => (s.holder as Record<string | number, SqlNode>)[s.key]!.RangeVar === refs[0],
    );
    if (slot === undefined) return false; // read from a subquery, not the SELECT's own FROM
    plan.push({ slot, cte });
  }
  for (const { slot, cte } of plan) {
    const rv = (slot.holder as Record<string | number, SqlNode>)[slot.key]!.RangeVar as SqlNode;
    const alias = rv.alias as SqlNode | undefined;
    const colnames = (alias?.colnames ?? cte.aliascolnames) as SqlNode[] | undefined;
    (slot.holder as Record<string | number, SqlNode>)[slot.key] = {
      RangeSubselect: {
        subquery: cte.ctequery,
        alias: {
          aliasname: (alias?.aliasname as string | undefined) ?? (cte.ctename as string),
          ...(colnames === undefined ? {} : { colnames }),
        },
      },
    };
  }
  delete sel.withClause;
  return true;
}
