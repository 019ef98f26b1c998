/**
 * Server-side prepared statements for a `pg` pool, as pgjdbc does by default
 * (`prepareThreshold`): a parameterised statement run a second time gets a name, so each
 * connection parses and analyses it once and PostgreSQL may keep its plan, instead of
 * parsing it on every execution (pg's default, an unnamed statement). On the shop's order
 * INSERT that is about half of the statement's CPU in PostgreSQL.
 *
 * Bounded: at most {@link MAX_NAMED} distinct texts per process get a name (an application
 * has a bounded set of parameterised statements; generated one-off texts stay unnamed).
 * A statement whose cached plan no longer fits the table ("cached plan must not change
 * result type", after DDL) fails once on a connection, which then prepares it again under
 * a new name (the old one is left to the connection's end: no DEALLOCATE racing an
 * aborted transaction). Not for connection poolers that do not keep prepared statements
 * across transactions (PgBouncer's transaction mode before 1.21): turn it off there.
 *
 * Loaded only by the modules that use `pg` (not re-exported by `core/index.ts`).
 */
import type pg from 'pg';

/** Distinct statement texts given a name, per process. */
export const MAX_NAMED = 1000;
/** A text is named from this run on (one-off statements stay unnamed). */
const THRESHOLD = 2;
/** SQLSTATE of "cached plan must not change result type". */
const PLAN_CHANGED = '0A000';

const seen = new Map<string, number>();
const names = new Map<string, string>();
let renamed = 0;

/** The name for `text` if it has earned one (counting this run). */
function nameFor(text: string): string | undefined {
  const name = names.get(text);
  if (name !== undefined) return name;
  if (names.size >= MAX_NAMED) return undefined;
  const n = (seen.get(text) ?? 0) + 1;
  if (n < THRESHOLD) {
    // One-off texts (generated SQL) must not crowd out the statements that repeat.
    if (seen.size >= MAX_NAMED * 4) seen.clear();
    seen.set(text, n);
    return undefined;
  }
  seen.delete(text);
  const given = `peak_s${names.size + 1}`;
  names.set(text, given);
  return given;
}

interface QueryConfigLike {
  text: string;
  values?: unknown[];
  name?: string;
}

type QueryFn = (...args: unknown[]) => unknown;

/** Names the parameterised statements of one client (see the module comment). */
function patchClient(client: pg.PoolClient | pg.Client): void {
  const base = client.query.bind(client) as unknown as QueryFn;
  /** This connection's replacement names, for statements whose cached plan went stale. */
  const replaced = new Map<string, string>();
  (client as unknown as { query: QueryFn }).query = (...args: unknown[]) => {
    const [first, second] = args;
    let config: QueryConfigLike | undefined;
    if (typeof first === 'string' && Array.isArray(second) && second.length > 0) {
      config = { text: first, values: second };
      args = [config, ...args.slice(2)];
    } else if (
      typeof first === 'object' &&
      first !== null &&
      typeof (first as QueryConfigLike).text === 'string' &&
      (first as QueryConfigLike).name === undefined &&
      typeof (first as { submit?: unknown }).submit !== 'function' &&
      Array.isArray((first as QueryConfigLike).values) &&
      (first as QueryConfigLike).values!.length > 0
    ) {
      config = { ...(first as QueryConfigLike) };
      args = [config, ...args.slice(1)];
    }
    const shared = config === undefined ? undefined : nameFor(config.text);
    if (config === undefined || shared === undefined) return base(...args);
    config.name = replaced.get(shared) ?? shared;
    const stale = (err: unknown) => {
      if ((err as { code?: string } | null)?.code === PLAN_CHANGED) {
        replaced.set(shared, `peak_r${++renamed}`);
      }
    };
    // pg-pool's own query passes a callback; a caller of the client may take a promise.
    const last = args.length - 1;
    const callback = args[last];
    if (typeof callback === 'function') {
      args[last] = (err: unknown, res: unknown) => {
        stale(err);
        (callback as (e: unknown, r: unknown) => void)(err, res);
      };
      return base(...args);
    }
    const result = base(...args);
    if (!(result instanceof Promise)) return result;
    return result.catch((err: unknown) => {
      stale(err);
      throw err;
    });
  };
}

/**
 * Makes every client of `pool` (now and future) name its parameterised statements; returns
 * the pool.
 */
export function autoPrepare<P extends pg.Pool>(pool: P): P {
  pool.on('connect', (client) => patchClient(client));
  return pool;
}
