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

/** A map's values in key order: concurrent batches lock rows in one order (no deadlock). */
function sorted(rows: Map<string, unknown>): unknown[] {
  return [...rows.keys()].sort().map((k) => rows.get(k));
}

interface Waiting {
  write: JournalWrite;
  resolve: (applied: boolean) => void;
  reject: (err: unknown) => void;
}

const FLUSH_SQL = `
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
         finished_at = CASE WHEN u.status IN ('succeeded', 'failed') THEN now() END,
         lease_until = CASE WHEN u.status IN ('succeeded', 'failed') THEN NULL
                            ELSE greatest(g.lease_until, now() + $4 * interval '1 millisecond') END
    FROM jsonb_to_recordset($3::jsonb) AS u(gid text, status text, reason text, "from" text)
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
    WHERE excluded.status <> 'running' OR peak.txn_branches.status = 'running')
SELECT 'i' AS k, gid FROM ins UNION ALL SELECT 'u' AS k, gid FROM upd`;

/** How many batches may be committing at once (their WAL flushes overlap). */
const MAX_IN_FLIGHT = 3;

/** Coalesces the coordinator's writes into one statement per batch, a few batches in flight. */
export class TxnJournal {
  readonly #pool: pg.Pool;
  readonly #nodeId: string;
  readonly #leaseMs: number;
  #queue: Waiting[] = [];
  #inFlight = 0;
  #scheduled = false;

  constructor(pool: pg.Pool, nodeId: string, leaseMs: number) {
    this.#pool = pool;
    this.#nodeId = nodeId;
    this.#leaseMs = leaseMs;
  }

  /**
   * Queues a write for the next batch; resolves once it committed: true when it applied
   * (an insert of a new gid, a change of a transaction this node owns), false when not.
   * One transaction's status writes are awaited one after the other by its driver, so two
   * batches in flight never hold two of them.
   */
  write(write: JournalWrite): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.#queue.push({ write, resolve, reject });
      if (this.#inFlight < MAX_IN_FLIGHT && !this.#scheduled) {
        // The first write of a quiet period goes at the end of this turn, so the others
        // made in the same turn join it.
        this.#scheduled = true;
        setImmediate(() => {
          this.#scheduled = false;
          this.#next();
        });
      }
    });
  }

  /** Queues branch events without waiting for them (the timeline may trail the calls). */
  note(event: BranchEvent): void {
    this.write(event).catch(() => undefined);
  }

  #next(): void {
    if (this.#queue.length === 0 || this.#inFlight >= MAX_IN_FLIGHT) return;
    const batch = this.#queue.splice(0, 1000);
    this.#inFlight++;
    this.#flush(batch.map((w) => w.write))
      .then(
        (applied) => {
          for (const w of batch) {
            w.resolve(
              w.write.kind === 'branch' ? true : applied.has(`${w.write.kind}:${w.write.gid}`),
            );
          }
        },
        (err: unknown) => {
          for (const w of batch) w.reject(err);
        },
      )
      .finally(() => {
        this.#inFlight--;
        this.#next();
      });
  }

  async #flush(writes: JournalWrite[]): Promise<Set<string>> {
    const inserts = new Map<string, unknown>();
    const statuses = new Map<string, unknown>();
    const branches = new Map<string, unknown>();
    for (const w of writes) {
      if (w.kind === 'insert') {
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
        });
      } else {
        // The last event of one operation wins (one row per operation and batch).
        branches.set(`${w.gid}\u0000${w.branch}\u0000${w.op}`, {
          gid: w.gid,
          branch: w.branch,
          op: w.op,
          status: w.status,
          attempts: w.attempts,
          error: w.error ?? null,
          started: w.startedAt,
          finished: w.finishedAt ?? null,
        });
      }
    }
    const res = await this.#pool.query<{ k: string; gid: string }>(FLUSH_SQL, [
      this.#nodeId,
      JSON.stringify([...inserts.values()]),
      JSON.stringify(sorted(statuses)),
      this.#leaseMs,
      JSON.stringify(sorted(branches)),
    ]);
    return new Set(res.rows.map((r) => `${r.k === 'i' ? 'insert' : 'status'}:${r.gid}`));
  }
}
