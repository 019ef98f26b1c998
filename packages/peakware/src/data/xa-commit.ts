/**
 * Two-phase commit over shard databases (XA on PostgreSQL's `PREPARE TRANSACTION`), and the
 * recovery that resolves what a crash left in doubt.
 *
 * The protocol: the first database the transaction bound is its coordinator. Before any
 * other database prepares, the coordinator's own (still open) transaction inserts the
 * global id into `peak_xa.log` with outcome `commit`. Then every other database runs
 * `PREPARE TRANSACTION`; then the coordinator COMMITs, and that commit is the decision;
 * then the others run `COMMIT PREPARED`, and the log row is deleted.
 *
 * Recovery needs no clock to be right (DTM's insert-that-blocks, applied to XA): for an
 * in-doubt prepared transaction it inserts the global id into the coordinator's log with
 * outcome `abort`, `ON CONFLICT DO NOTHING`. While the coordinator's transaction is still
 * open, that insert waits on its row; once it has committed, the insert finds the `commit`
 * row; if it rolled back or never got there, the `abort` row goes in first, and a
 * coordinator still trying to commit afterwards cannot (its insert would conflict). So
 * every participant ends the way the coordinator did. A minimum age (`recoverAfterMs`)
 * only keeps recovery from waiting on transactions that are simply running.
 *
 * Prepared transactions are named `peak_xa:<uuid>:<hex of the coordinator's data source>:<n>`
 * (n numbers the participants), so recovery on any process that has the layout finds the
 * coordinator. PostgreSQL needs `max_prepared_transactions` > 0 on every participant (the
 * embedded PostgreSQL has it); without it the transaction is refused before anything is
 * prepared.
 */
import { randomUUID } from 'node:crypto';
import { ErrorCodes, errorMessage, PeakError } from '../core/errors.js';
import type { DataSource, DataSourceSession } from './data-source.js';

/** The phase boundaries of a two-phase commit, for {@link XaHook}. */
export type XaPhase = 'prepared' | 'decided';

/**
 * Runs at each phase boundary of a two-phase commit: `prepared` (every participant but the
 * coordinator prepared, nothing decided), `decided` (the coordinator committed, the others
 * not yet). Throw to fail there; fault drills and crash tests plug in here.
 */
export type XaHook = (phase: XaPhase, gid: string) => Promise<void> | void;

/** One in-doubt prepared transaction, as recovery found and resolved it. */
export interface XaResolution {
  /** The prepared transaction's name in PostgreSQL. */
  prepared: string;
  /** The global id (shared by every participant of the transaction). */
  gid: string;
  /** The participant's data source. */
  dataSource: string;
  /** The coordinator's data source. */
  coordinator: string;
  /** What recovery did; `skipped` when the coordinator is not in this layout or could not be read. */
  outcome: 'committed' | 'rolled-back' | 'skipped';
  /** Why it was skipped, or what failed. */
  error?: string;
}

const PREFIX = 'peak_xa:';
/** SQLSTATE of "prepared transaction … does not exist". */
const UNDEFINED_OBJECT = '42704';
/** SQLSTATE of "prepared transaction … is busy" (another session is finishing it). */
const NOT_IN_PREREQUISITE_STATE = '55000';
/** PostgreSQL's limit on a prepared transaction's name. */
const MAX_NAME = 200;

const LOG_DDL = `CREATE SCHEMA IF NOT EXISTS peak_xa;
CREATE TABLE IF NOT EXISTS peak_xa.log (
  gid text PRIMARY KEY,
  outcome text NOT NULL CHECK (outcome IN ('commit', 'abort')),
  created_at timestamptz NOT NULL DEFAULT now()
)`;

const hex = (s: string) => Buffer.from(s, 'utf8').toString('hex');
const unhex = (s: string) => Buffer.from(s, 'hex').toString('utf8');
/** A prepared transaction's name as an SQL literal (only [0-9a-z:_-] by construction). */
const literal = (name: string) => `'${name.replace(/'/g, "''")}'`;

/** The name of participant `n`'s prepared transaction. */
export function preparedName(gid: string, coordinator: string, n: number): string {
  const name = `${PREFIX}${gid}:${hex(coordinator)}:${n}`;
  if (name.length > MAX_NAME) {
    throw new PeakError(
      ErrorCodes.DATA_XA,
      `the data source name ${JSON.stringify(coordinator)} is too long to coordinate a two-phase commit (PostgreSQL names a prepared transaction in at most ${MAX_NAME} bytes); use a shorter data source name`,
      { details: { input: 'dataSource', dataSource: coordinator } },
    );
  }
  return name;
}

/** Parses a prepared transaction's name; undefined for one that is not ours. */
export function parsePreparedName(
  name: string,
): { gid: string; coordinator: string; n: number } | undefined {
  const m = /^peak_xa:([0-9a-f-]{36}):([0-9a-f]*):(\d+)$/.exec(name);
  if (m === null) return undefined;
  return { gid: m[1]!, coordinator: unhex(m[2]!), n: Number(m[3]) };
}

/** What the two-phase commit needs of its database. */
export interface XaHost {
  primary(dataSource: string): DataSource;
  hook(): XaHook | undefined;
}

/** Data sources known to allow prepared transactions, and coordinators known to have the log. */
const checked = new WeakMap<DataSource, Promise<void>>();
const logged = new WeakMap<DataSource, Promise<void>>();

/** Once per data source: refuses one with `max_prepared_transactions` = 0 (not remembered on failure). */
function checkPrepares(source: DataSource, name: string): Promise<void> {
  let done = checked.get(source);
  if (done === undefined) {
    done = (async () => {
      const { rows } = await source.query<{ max_prepared_transactions: string }>(
        'SHOW max_prepared_transactions',
      );
      if (Number(rows[0]?.max_prepared_transactions ?? 0) === 0) {
        throw new PeakError(
          ErrorCodes.DATA_XA,
          `data source ${name}: max_prepared_transactions is 0, so PostgreSQL cannot prepare a transaction; set it above 0 (postgresql.conf, then a restart; the embedded PostgreSQL has it) or do not pass { xa: true }`,
          { details: { dataSource: name } },
        );
      }
    })();
    done.catch(() => checked.delete(source));
    checked.set(source, done);
  }
  return done;
}

/** Once per data source: creates the coordinator log (two processes at once: one wins). */
function createLog(source: DataSource): Promise<void> {
  let done = logged.get(source);
  if (done === undefined) {
    done = (async () => {
      try {
        for (const statement of LOG_DDL.split(';')) await source.query(statement);
      } catch (err) {
        const { rows } = await source.query<{ t: string | null }>(
          `SELECT to_regclass('peak_xa.log')::text AS t`,
        );
        if (rows[0]?.t == null) throw err;
      }
    })();
    done.catch(() => logged.delete(source));
    logged.set(source, done);
  }
  return done;
}

/**
 * Commits the sessions' transactions atomically: the first is the coordinator. Releases
 * every session. Throws when the transaction did not commit anywhere (every participant
 * rolled back); once the coordinator has committed it resolves, and a participant whose
 * `COMMIT PREPARED` failed is left to recovery (it will commit).
 */
export async function commitTwoPhase(
  host: XaHost,
  sessions: ReadonlyMap<string, DataSourceSession>,
): Promise<void> {
  const entries = [...sessions];
  const [coordinatorName, coordinator] = entries[0]!;
  const others = entries.slice(1);
  const gid = randomUUID();
  let names: string[] = [];
  const prepared: { dataSource: string; name: string }[] = [];
  const released = new Set<DataSourceSession>();
  const release = (s: DataSourceSession, err?: Error) => {
    if (released.has(s)) return;
    released.add(s);
    s.release(err);
  };
  const rollBack = async (cause: unknown, stage: string): Promise<never> => {
    for (const [, s] of entries) {
      if (released.has(s)) continue;
      try {
        await s.query('ROLLBACK');
        release(s);
      } catch (err) {
        release(s, err as Error);
      }
    }
    for (const p of prepared) {
      await host
        .primary(p.dataSource)
        .query(`ROLLBACK PREPARED ${literal(p.name)}`)
        .catch(() => undefined); // left to recovery, which rolls it back (no commit row)
    }
    throw new PeakError(
      ErrorCodes.DATA_XA,
      `two-phase commit ${gid} rolled back: ${stage} failed (${errorMessage(cause)}); nothing was committed on ${entries.map(([d]) => d).join(', ')}`,
      { cause, details: { gid, stage } },
    );
  };

  let stage = 'the checks before PREPARE';
  try {
    names = others.map((_, i) => preparedName(gid, coordinatorName, i + 1));
    await Promise.all([
      ...entries.map(([name]) => checkPrepares(host.primary(name), name)),
      createLog(host.primary(coordinatorName)),
    ]);
    stage = 'the coordinator log';
    await coordinator.query(`INSERT INTO peak_xa.log (gid, outcome) VALUES ($1, 'commit')`, [gid]);
  } catch (err) {
    return rollBack(err, stage);
  }
  for (const [i, [dataSource, session]] of others.entries()) {
    const name = names[i]!;
    try {
      await session.query(`PREPARE TRANSACTION ${literal(name)}`);
      prepared.push({ dataSource, name });
      release(session);
    } catch (err) {
      // A failed PREPARE rolls that transaction back by itself.
      release(session, isConnectionError(err) ? (err as Error) : undefined);
      return rollBack(err, `PREPARE on ${dataSource}`);
    }
  }
  try {
    await host.hook()?.('prepared', gid);
  } catch (err) {
    return rollBack(err, 'the prepared hook');
  }
  try {
    await coordinator.query('COMMIT');
    release(coordinator);
  } catch (err) {
    release(coordinator, err as Error);
    // The commit's answer was lost: the log says what happened (recovery's insert decides).
    const outcome = await resolveGid(host.primary(coordinatorName), gid).catch(() => undefined);
    if (outcome === 'abort') {
      for (const p of prepared) {
        await host
          .primary(p.dataSource)
          .query(`ROLLBACK PREPARED ${literal(p.name)}`)
          .catch(() => undefined);
      }
      throw new PeakError(
        ErrorCodes.DATA_XA,
        `two-phase commit ${gid}: the coordinator ${coordinatorName} did not commit (${errorMessage(err)}); rolled back everywhere`,
        { cause: err, details: { gid, stage: 'commit' } },
      );
    }
    if (outcome !== 'commit') {
      throw new PeakError(
        ErrorCodes.DATA_XA,
        `two-phase commit ${gid}: the coordinator ${coordinatorName}'s COMMIT got no answer (${errorMessage(err)}) and its log could not be read; the transaction is in doubt and recovery (ShardedDatabase.recoverXa) settles it the way the coordinator ended`,
        { cause: err, details: { gid, stage: 'commit' } },
      );
    }
  }
  try {
    await host.hook()?.('decided', gid);
  } catch {
    return; // decided and committed: the prepared participants are left to recovery (a drill)
  }
  let pending = 0;
  for (const p of prepared) {
    try {
      await host.primary(p.dataSource).query(`COMMIT PREPARED ${literal(p.name)}`);
    } catch {
      pending++; // decided: recovery commits it (the log row stays until then)
    }
  }
  if (pending === 0) {
    await host
      .primary(coordinatorName)
      .query('DELETE FROM peak_xa.log WHERE gid = $1', [gid])
      .catch(() => undefined); // an old row is harmless; recovery clears rows it resolves
  }
}

/**
 * The outcome of a global transaction, deciding it now if it was not: inserts `abort`
 * unless the coordinator's row is there; while the coordinator's transaction is open the
 * insert waits on its row (at most `waitMs`). `unknown` when the row is gone (resolved and
 * cleared meanwhile) or the wait ran out.
 */
async function resolveGid(
  coordinator: DataSource,
  gid: string,
  waitMs = 5000,
): Promise<'commit' | 'abort' | 'unknown'> {
  await createLog(coordinator);
  const inserted = await coordinator.query(
    `INSERT INTO peak_xa.log (gid, outcome) VALUES ($1, 'abort') ON CONFLICT (gid) DO NOTHING RETURNING gid`,
    [gid],
    { timeoutMs: waitMs },
  );
  if (inserted.rows.length > 0) return 'abort';
  // A new statement, so a new snapshot: it sees the row the insert waited for.
  const { rows } = await coordinator.query<{ outcome: 'commit' | 'abort' }>(
    'SELECT outcome FROM peak_xa.log WHERE gid = $1',
    [gid],
  );
  return rows[0]?.outcome ?? 'unknown';
}

/**
 * Resolves every in-doubt prepared transaction of ours on `dataSources` that is older than
 * `olderThanMs`: committed when its coordinator committed, rolled back otherwise. Returns
 * what it settled or could not (one settled meanwhile by its owner is not listed). Log rows
 * of global transactions with nothing left prepared are deleted.
 */
export async function recoverTwoPhase(
  host: XaHost,
  dataSources: readonly string[],
  olderThanMs: number,
): Promise<XaResolution[]> {
  const found: { dataSource: string; name: string }[] = [];
  for (const dataSource of dataSources) {
    const { rows } = await host.primary(dataSource).query<{ gid: string }>(
      `SELECT gid FROM pg_prepared_xacts
        WHERE gid LIKE 'peak\\_xa:%' AND database = current_database()
          AND prepared < now() - $1 * interval '1 millisecond'`,
      [olderThanMs],
    );
    for (const r of rows) found.push({ dataSource, name: r.gid });
  }
  const out: XaResolution[] = [];
  const outcomes = new Map<string, Promise<'commit' | 'abort' | 'unknown'>>();
  for (const f of found) {
    const parsed = parsePreparedName(f.name);
    if (parsed === undefined) continue;
    const base = {
      prepared: f.name,
      gid: parsed.gid,
      dataSource: f.dataSource,
      coordinator: parsed.coordinator,
    };
    if (!dataSources.includes(parsed.coordinator)) {
      out.push({
        ...base,
        outcome: 'skipped',
        error: `its coordinator ${parsed.coordinator} is not a data source of this layout`,
      });
      continue;
    }
    try {
      let outcome = outcomes.get(parsed.gid);
      if (outcome === undefined) {
        outcome = resolveGid(host.primary(parsed.coordinator), parsed.gid);
        outcomes.set(parsed.gid, outcome);
      }
      const decided = await outcome;
      if (decided === 'unknown') {
        // The log row went with the transaction's end (settled by its owner meanwhile), or
        // the coordinator's transaction is still open past the wait.
        const { rows } = await host
          .primary(f.dataSource)
          .query('SELECT 1 FROM pg_prepared_xacts WHERE gid = $1', [f.name]);
        if (rows.length > 0) {
          out.push({ ...base, outcome: 'skipped', error: 'its outcome could not be read yet' });
        }
        continue;
      }
      const commit = decided === 'commit';
      const settled = await finishPrepared(host.primary(f.dataSource), f.name, commit);
      if (settled) out.push({ ...base, outcome: commit ? 'committed' : 'rolled-back' });
    } catch (err) {
      out.push({ ...base, outcome: 'skipped', error: errorMessage(err) });
    }
  }
  // Rows of transactions resolved everywhere (no skip) go; an abort row stays until then too.
  const done = new Set(out.filter((r) => r.outcome !== 'skipped').map((r) => r.gid));
  for (const r of out) if (r.outcome === 'skipped') done.delete(r.gid);
  for (const gid of done) {
    const coordinator = out.find((r) => r.gid === gid)!.coordinator;
    await host
      .primary(coordinator)
      .query('DELETE FROM peak_xa.log WHERE gid = $1', [gid])
      .catch(() => undefined);
  }
  return out;
}

/**
 * COMMIT or ROLLBACK PREPARED `name`; false when another session settled it (its owner or
 * another recovery, by the same log row). One that another session is finishing right now
 * answers "is busy" (55000): asked again until it is gone or ours, for at most `waitMs`.
 */
async function finishPrepared(
  source: DataSource,
  name: string,
  commit: boolean,
  waitMs = 5000,
): Promise<boolean> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      await source.query(`${commit ? 'COMMIT' : 'ROLLBACK'} PREPARED ${literal(name)}`);
      return true;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === UNDEFINED_OBJECT) return false;
      const busy = code === NOT_IN_PREREQUISITE_STATE && /is busy/.test(errorMessage(err));
      if (!busy || Date.now() >= deadline) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code);
}
