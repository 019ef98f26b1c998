/**
 * The real PostgreSQL parser (libpg_query compiled to WASM: no native build, no download
 * at install) and its deparser. Statements are parsed into PostgreSQL's own syntax tree,
 * rewritten there, and printed back; table names are never replaced in strings.
 */
import { fingerprintSync, loadModule, parseSync } from 'libpg-query';
import { deparseSync } from 'pgsql-deparser';
import { ErrorCodes, PeakError } from '../core/errors.js';

/** A node of PostgreSQL's syntax tree as libpg_query emits it (`{ SelectStmt: {...} }`). */
export type SqlNode = Record<string, unknown>;

let loaded: Promise<void> | undefined;
let ready = false;

/** Loads the WASM parser once; every other function here needs it loaded. */
export function loadSqlParser(): Promise<void> {
  loaded ??= loadModule().then(() => {
    ready = true;
  });
  return loaded;
}

function assertReady(): void {
  if (!ready) {
    throw new PeakError(
      ErrorCodes.INTERNAL,
      'the SQL parser is not loaded yet; await loadSqlParser() (ShardedDatabase.connect and createRouter do this)',
    );
  }
}

/** Shortens a statement for error messages. */
export function shortSql(sql: string): string {
  const one = sql.replace(/\s+/g, ' ').trim();
  return one.length > 200 ? `${one.slice(0, 197)}...` : one;
}

/** Parses one statement; throws PEAK_DATA_SQL naming the statement and the parser's reason. */
export function parseStatement(sql: string): SqlNode {
  assertReady();
  let result: { stmts?: { stmt?: SqlNode }[] };
  try {
    result = parseSync(sql) as unknown as { stmts?: { stmt?: SqlNode }[] };
  } catch (err) {
    const details = (err as { sqlDetails?: { cursorPosition?: number } }).sqlDetails;
    throw new PeakError(
      ErrorCodes.DATA_SQL,
      `cannot parse SQL: ${(err as Error).message}${details?.cursorPosition !== undefined ? ` at character ${details.cursorPosition + 1}` : ''}; statement: ${shortSql(sql)}`,
      { cause: err, details: { sql, position: details?.cursorPosition } },
    );
  }
  const stmts = result.stmts ?? [];
  if (stmts.length !== 1 || stmts[0]?.stmt === undefined) {
    throw new PeakError(
      ErrorCodes.DATA_SQL,
      `expected exactly one SQL statement, got ${stmts.length}; send statements one at a time: ${shortSql(sql)}`,
      { details: { sql } },
    );
  }
  return stmts[0].stmt;
}

/** Prints a statement node back to SQL (compact, one line). */
export function deparseStatement(stmt: SqlNode): string {
  return deparseSync({ version: 180004, stmts: [{ stmt }] } as never, { pretty: false });
}

/** The parser's fingerprint: equal for statements that differ only in constants. */
export function fingerprintStatement(sql: string): string {
  assertReady();
  try {
    return fingerprintSync(sql);
  } catch {
    return 'unparseable';
  }
}

/** Calls `visit` on every object in the tree (depth first), with its key in the parent. */
export function walk(
  node: unknown,
  visit: (obj: SqlNode, key: string) => boolean | undefined,
  key = '',
): void {
  if (Array.isArray(node)) {
    for (const item of node) walk(item, visit, key);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  const obj = node as SqlNode;
  if (visit(obj, key) === false) return;
  for (const [k, v] of Object.entries(obj)) {
    if (v !== null && typeof v === 'object') walk(v, visit, k);
  }
}

/** Structural equality of two expressions, ignoring source locations. */
export function sameExpression(a: unknown, b: unknown): boolean {
  return exprKey(a) === exprKey(b);
}

/** A location-free key of an expression, for equality and maps. */
export function exprKey(node: unknown): string {
  return JSON.stringify(node, (k, v) => (k === 'location' ? undefined : v));
}
