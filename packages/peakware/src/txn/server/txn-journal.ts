/**
 * The coordinator's batched writer: new global transactions, status changes and branch
 * events from every transaction this node drives go to PostgreSQL together, one statement
 * per batch (three CTEs), while the previous batch commits (group commit). A two-branch saga
 * waits on two of these writes (its insert and its end), and a busy node shares each
 * write's WAL flush among every transaction that arrived meanwhile.
 *
 * Status changes are conditional on this node still owning the transaction (its lease not
 * taken over by another node's recovery) and on the status they follow (`succeeded` only
 * from `running` or `committing`: an operator's stop, which sets `aborting`, makes a
 * driver's late `succeeded` fail): the answer says, per
 * write, whether it applied, and a driver that lost its transaction stops.
 *
 * Two lanes. The **durable** lane commits as PostgreSQL is configured (a WAL flush). The
 * **lazy** lane commits with `synchronous_commit = off` (no wait for the flush; lost only if
 * PostgreSQL itself crashes within a few hundred ms, never by a crash of this node) and takes
 * only the writes whose loss recovery repairs: branch events (a lost `succeeded` makes
 * recovery call that operation again, which its barrier filters) and the ends that follow
 * a decided direction (a TCC's `succeeded` or `failed`, a saga's `failed`: lost, the
 * transaction is `committing` or `aborting` again, and recovery repeats its confirms or
 * compensations, filtered by their barriers, and writes the end again). WAL is flushed in
 * order, so a lost lazy write is never followed by a kept one of the same transaction.
 * Branch events also ride along in the next durable batch when one goes first.
 *
 * A branch operation that succeeded at once is not a row of its own: its drive holds it and
 * the transaction's end carries it into the row's `timeline` (one UPDATE for the end and
 * every such event; a two-branch saga wrote two `txn_branches` rows besides). Failed and
 * slow operations, and those of a drive handed to recovery, are rows as before; readers
 * merge the two (txn-store.ts). Held events lost with a crashed node are
 * lost the way a lazy write is: recovery calls the operation again and its barrier filters it.
 */
import type pg from 'pg';
import type { BranchOp, TxnKind, TxnStatus } from '../txn-types.js';

/** A new global transaction, owned by this node from the start. */
export interface NewGlobal {
  kind: 'insert';
  gid: string;
  txnKind: TxnKind;
  status: TxnStatus;
  spec: unknown;
  deadline: number;
  leaseMs: number;
  traceId?: string;
  /** The app that submitted it (undefined: an operator). */
  app?: string;
}

/** The statuses each status may be reached from: a change from any other does not apply. */
const REACHED_FROM: Record<TxnStatus, string> = {
  prepared: '',
  running: '',
  committing: 'running',
  aborting: 'running',
  succeeded: 'running,committing',
  failed: 'aborting',
};

/** A status change of a transaction this node owns (only from the status it follows). */
export interface StatusChange {
  kind: 'status';
  gid: string;
  status: TxnStatus;
  reason?: string;
  /** Commit without waiting for the WAL flush: only for a change recovery repeats if lost. */
  lazy?: boolean;
  /**
   * Branch operations that succeeded, stored in the row's `timeline` with this change (one
   * UPDATE, no `txn_branches` row each); only with an end, whose transaction recovery
   * never reads them for.
   */
  timeline?: BranchEvent[];
}

/** A branch operation started, succeeded or failed (the timeline). */
export interface BranchEvent {
  kind: 'branch';
  gid: string;
  branch: string;
  op: BranchOp;
  status: 'running' | 'succeeded' | 'failed';
  attempts: number;
  error?: string;
  startedAt: number;
  finishedAt?: number;
}

/** One write of the journal. */
export type JournalWrite = NewGlobal | StatusChange | BranchEvent;

/** A branch event as stored: a `txn_branches` row's columns, or an entry of a row's `timeline`. */
export interface TimelineEntry {
  branch: string;
  op: BranchOp;
  status: BranchEvent['status'];
  attempts: number;
  error: string | null;
  /** Epoch ms. */
  started: number;
  finished: number | null;
}

function timelineEntry(e: BranchEvent): TimelineEntry {
  return {
    branch: e.branch,
    op: e.op,
    status: e.status,
    attempts: e.attempts,
    error: e.error ?? null,
    started: e.startedAt,
    finished: e.finishedAt ?? null,
  };
}

/** A map's values in key order: concurrent batches lock rows in one order (no deadlock). */
function sorted(rows: Map<string, unknown>): unknown[] {
  return [...rows.keys()].sort().map((k) => rows.get(k));
}

interface Waiting {
  write: JournalWrite;
  resolve: (applied: boolean) => void;
  reject: (err: unknown) => void;
}

/** The batch's statement (exported for the test of its plan). */
export const FLUSH_SQL = `
WITH ins AS (
  INSERT INTO peak.txn_globals (gid, kind, status, spec, owner, lease_until, deadline, trace_id, app)
  SELECT i.gid, i.kind, i.status, i.spec, $1, now() + i.lease * interval '1 millisecond',
         to_timestamp(i.deadline / 1000.0), i.trace, i.app
    FROM jsonb_to_recordset($2::jsonb) AS i(gid text, kind text, status text, spec jsonb, lease bigint, deadline bigint, trace text, app text)
  ON CONFLICT (gid) DO NOTHING
  RETURNING gid),
upd AS (
  UPDATE peak.txn_globals g
     SET status = u.status, reason = coalesce(u.reason, g.reason), updated_at = now(),
         timeline = coalesce(u.timeline, g.timeline),
         finished_at = CASE WHEN u.status IN ('succeeded', 'failed') THEN now() END,
         lease_until = CASE WHEN u.status IN ('succeeded', 'failed') THEN NULL
                            ELSE greatest(g.lease_until, now() + $4 * interval '1 millisecond') END
    -- LIMIT with the batch's own count: the planner's estimate of the batch (100 rows for
    -- any jsonb_to_recordset, 10 under the LIMIT in a generic plan) would otherwise make a
    -- hash join over a sequential scan look cheaper than one index lookup per row until
    -- the table holds tens of thousands of rows.
    FROM (SELECT * FROM jsonb_to_recordset($3::jsonb)
            AS r(gid text, status text, reason text, "from" text, timeline jsonb) LIMIT $7) AS u
   WHERE g.gid = u.gid AND g.owner = $1 AND g.status = ANY(string_to_array(u."from", ','))
  RETURNING g.gid),
br AS (
  INSERT INTO peak.txn_branches (gid, branch, op, status, attempts, error, started_at, finished_at)
  SELECT b.gid, b.branch, b.op, b.status, b.attempts, b.error, to_timestamp(b.started / 1000.0),
         to_timestamp(b.finished / 1000.0)
    FROM jsonb_to_recordset($5::jsonb) AS b(gid text, branch text, op text, status text, attempts int, error text, started bigint, finished bigint)
  ON CONFLICT (gid, branch, op) DO UPDATE
    SET status = excluded.status, attempts = excluded.attempts, error = excluded.error,
        finished_at = excluded.finished_at
    -- batches commit concurrently: a late 'running' never hides how the call ended
    WHERE excluded.status <> 'running' OR peak.txn_branches.status = 'running'),
-- the lazy lane's commit does not wait for the WAL flush (this statement's transaction only)
cfg AS (
  SELECT set_config('synchronous_commit', coalesce($6, current_setting('synchronous_commit')), true) AS v)
SELECT 'i' AS k, gid FROM ins UNION ALL SELECT 'u' AS k, gid FROM upd
UNION ALL SELECT 'c' AS k, v FROM cfg`;

/** Rows inserted before the first ANALYZE of `txn_globals` (see TxnJournal.#grew). */
const ANALYZE_FIRST = 1000;

/** The columns the journal's own ANALYZE takes statistics of: those the hot statements filter on. */
const ANALYZED_COLUMNS = 'gid, status, owner, lease_until';

/** How many batches of one lane may be committing at once (their WAL flushes overlap). */
const MAX_IN_FLIGHT = 3;

interface Lane {
  lazy: boolean;
  queue: Waiting[];
  inFlight: number;
  scheduled: boolean;
}

/** Whether a write may go in the lazy lane (see the module comment). */
function isLazy(write: JournalWrite): boolean {
  return write.kind === 'branch' || (write.kind === 'status' && write.lazy === true);
}

/** Coalesces the coordinator's writes into one statement per batch, a few batches in flight. */
export class TxnJournal {
  readonly #pool: pg.Pool;
  readonly #nodeId: string;
  readonly #leaseMs: number;
  readonly #durable: Lane = { lazy: false, queue: [], inFlight: 0, scheduled: false };
  readonly #lazy: Lane = { lazy: true, queue: [], inFlight: 0, scheduled: false };

  /** Rows this node inserted since the table's statistics were last taken, and the mark. */
  #inserted = 0;
  #analyzeAt: number | undefined;
  #analyzing = false;
  readonly #onError: (err: unknown) => void;

  constructor(
    pool: pg.Pool,
    nodeId: string,
    leaseMs: number,
    onError: (err: unknown) => void = () => undefined,
  ) {
    this.#pool = pool;
    this.#nodeId = nodeId;
    this.#leaseMs = leaseMs;
    this.#onError = onError;
  }

  /**
   * Takes the statistics of `txn_globals` again (ANALYZE) each time this node's inserts
   * have doubled it. The flush statement is prepared (core/pg-auto-prepare.ts) and
   * PostgreSQL keeps one generic plan for it; made while the table was small, that plan
   * joins a batch by a sequential scan, and keeps doing so as the table grows until its
   * statistics change. A table filling at a thousand rows a second outruns autovacuum's
   * once-a-minute analyze: in `bench txn` a batch of 17 status changes took 5 ms scanning
   * 800 rows. With fresh statistics the plan is an index lookup per row. The marks double
   * (1 000 rows, then the table's size), so a large table is analyzed a handful of times.
   * Only the columns the coordinator's statements filter on are analyzed (the row count and
   * page count, which decide the plan, are taken by any ANALYZE): the `spec` and `timeline`
   * jsonb made a full one about three times as dear (290–410 ms against 106–113 at 64 000
   * rows), and autovacuum still analyzes every column on its own schedule.
   */
  #grew(rows: number): void {
    this.#inserted += rows;
    if (this.#analyzing || this.#inserted < (this.#analyzeAt ?? ANALYZE_FIRST)) return;
    this.#analyzing = true;
    void this.#pool
      .query(`ANALYZE peak.txn_globals (${ANALYZED_COLUMNS})`)
      .then(() =>
        this.#pool.query<{ n: number }>(
          "SELECT greatest(reltuples, 0)::float8 AS n FROM pg_class WHERE oid = 'peak.txn_globals'::regclass",
        ),
      )
      .then((res) => {
        this.#inserted = 0;
        this.#analyzeAt = Math.max(ANALYZE_FIRST, res.rows[0]?.n ?? 0);
      })
      .catch((err: unknown) => {
        // Tried again after as many rows more; autovacuum still analyzes it meanwhile.
        this.#inserted = 0;
        this.#onError(err);
      })
      .finally(() => {
        this.#analyzing = false;
      });
  }

  /**
   * Queues a write for the next batch; resolves once it committed: true when it applied
   * (an insert of a new gid, a change of a transaction this node owns), false when not.
   * One transaction's status writes are awaited one after the other by its driver, so two
   * batches in flight never hold two of them.
   */
  write(write: JournalWrite): Promise<boolean> {
    const lane = isLazy(write) ? this.#lazy : this.#durable;
    return new Promise<boolean>((resolve, reject) => {
      lane.queue.push({ write, resolve, reject });
      if (lane.inFlight < MAX_IN_FLIGHT && !lane.scheduled) {
        // The first write of a quiet period goes at the end of this turn, so the others
        // made in the same turn join it.
        lane.scheduled = true;
        setImmediate(() => {
          lane.scheduled = false;
          this.#next(lane);
        });
      }
    });
  }

  /** Queues branch events without waiting for them (the timeline may trail the calls). */
  note(event: BranchEvent): void {
    this.write(event).catch(() => undefined);
  }

  #next(lane: Lane): void {
    if (lane.queue.length === 0 || lane.inFlight >= MAX_IN_FLIGHT) return;
    const batch = lane.queue.splice(0, 1000);
    if (!lane.lazy) {
      // Branch events waiting in the lazy lane ride along (nobody waits for them).
      const lazy = this.#lazy.queue;
      this.#lazy.queue = lazy.filter((w) => w.write.kind !== 'branch');
      for (const w of lazy) if (w.write.kind === 'branch') batch.push(w);
    }
    lane.inFlight++;
    this.#flush(
      batch.map((w) => w.write),
      lane.lazy,
    )
      .then(
        (applied) => {
          // Two inserts of one gid in a batch (a client's retry, two processes submitting
          // one keyed transaction at once): the row holds the first, and only the first is
          // told it applied; the others see the gid taken, as in separate batches.
          const inserted = new Set<string>();
          for (const w of batch) {
            const { write } = w;
            if (write.kind === 'branch') w.resolve(true);
            else if (write.kind === 'status') w.resolve(applied.has(`status:${write.gid}`));
            else {
              const first = applied.has(`insert:${write.gid}`) && !inserted.has(write.gid);
              inserted.add(write.gid);
              w.resolve(first);
            }
          }
        },
        (err: unknown) => {
          for (const w of batch) w.reject(err);
        },
      )
      .finally(() => {
        lane.inFlight--;
        this.#next(lane);
      });
  }

  async #flush(writes: JournalWrite[], lazy: boolean): Promise<Set<string>> {
    const inserts = new Map<string, unknown>();
    const statuses = new Map<string, unknown>();
    const branches = new Map<string, unknown>();
    for (const w of writes) {
      if (w.kind === 'insert') {
        // The first insert of a gid in the batch is the one written (and told it applied).
        if (inserts.has(w.gid)) continue;
        inserts.set(w.gid, {
          gid: w.gid,
          kind: w.txnKind,
          status: w.status,
          spec: w.spec,
          lease: w.leaseMs,
          deadline: w.deadline,
          trace: w.traceId ?? null,
          app: w.app ?? null,
        });
      } else if (w.kind === 'status') {
        statuses.set(w.gid, {
          gid: w.gid,
          status: w.status,
          reason: w.reason ?? null,
          from: REACHED_FROM[w.status],
          timeline: w.timeline?.map(timelineEntry) ?? null,
        });
      } else {
        // The last event of one operation wins (one row per operation and batch).
        branches.set(`${w.gid}\u0000${w.branch}\u0000${w.op}`, {
          gid: w.gid,
          ...timelineEntry(w),
        });
      }
    }
    const res = await this.#pool.query<{ k: string; gid: string }>(FLUSH_SQL, [
      this.#nodeId,
      JSON.stringify([...inserts.values()]),
      JSON.stringify(sorted(statuses)),
      this.#leaseMs,
      JSON.stringify(sorted(branches)),
      lazy ? 'off' : null,
      statuses.size,
    ]);
    this.#grew(inserts.size);
    return new Set(
      res.rows
        .filter((r) => r.k !== 'c')
        .map((r) => `${r.k === 'i' ? 'insert' : 'status'}:${r.gid}`),
    );
  }
}
