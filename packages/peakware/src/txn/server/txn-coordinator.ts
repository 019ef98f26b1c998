/**
 * The transaction coordinator of one `peak server` node. Any node drives any global
 * transaction, one at a time by lease:
 *
 * - a node that takes a saga or TCC inserts it owning it (`owner`, `lease_until`) and drives
 *   it at once, calling the branches over RPC; its status changes are conditional on still
 *   owning it, and a renewer extends the leases of every transaction it drives;
 * - a node that dies (kill -9) stops renewing; when the lease runs out, the recovery loop of
 *   any node takes the transaction over and resumes it from its status: a saga still
 *   `running` goes on forward (before its deadline) or rolls back, a TCC `running` cancels,
 *   `committing` confirms, `aborting` compensates; a message still `prepared` asks its
 *   check-back. Branches repeat safely because each wraps its handler in the barrier;
 * - a drive that cannot finish for now (a compensation keeps failing) hands the
 *   transaction back with a growing delay; after `maxRecoveries` rounds it is parked for an
 *   operator (`peak txn retry`), and `peak txn stop` rolls a running one back.
 *
 * The decisions that must survive a crash (the insert, `committing`, `aborting`, the end)
 * are awaited before the calls that depend on them; branch events (the timeline) ride
 * along in the same batched writes without being waited for (see txn-journal.ts).
 */
import type pg from 'pg';
import { currentContext } from '../../core/context.js';
import { ErrorCodes, errorMessage, isPeakError, PeakError } from '../../core/errors.js';
import { uuidV7 } from '../../core/id-generator.js';
import type { Logger } from '../../core/logger.js';
import { parseHttpUrl, urlAllowed } from '../../core/url-allow-list.js';
import { sendInTransaction } from '../../mq/send-in-transaction.js';
import { MSG_BRANCH } from '../barrier.js';
import type { TxnBranch } from '../branch-context.js';
import {
  type BranchCall,
  type BranchOp,
  type HttpBranchCall,
  type MsgSpec,
  type RpcBranchCall,
  type SagaSpec,
  type SagaStep,
  STEP_DEFAULTS,
  type StepPolicy,
  type TccSpec,
  type TxnKind,
  type TxnOutcome,
  type TxnStatus,
} from '../txn-types.js';
import type { BranchCaller } from './branch-caller.js';
import { type BranchEvent, TxnJournal } from './txn-journal.js';
import {
  claimDue,
  type GlobalRow,
  pruneFinished,
  releaseLease,
  renewLeases,
  succeededOps,
} from './txn-store.js';

/** Options of {@link TxnCoordinator}. */
export interface CoordinatorOptions {
  pool: pg.Pool;
  nodeId: string;
  logger: Logger;
  caller: BranchCaller;
  /** How long a node owns a transaction without renewing, ms. */
  leaseMs: number;
  /** Time between recovery rounds, ms. */
  recoveryIntervalMs: number;
  /** Recovery rounds after which a transaction that keeps failing is parked. */
  maxRecoveries: number;
  /** How long finished transactions are kept, from their start, ms (none: kept for ever). */
  retentionMs?: number;
  /** Whether this node's recovery loop runs. */
  recovery: boolean;
  /** URL prefixes HTTP branches may be under; none (the default) refuses every URL. */
  httpBranches?: readonly URL[];
}

/** Defaults of the coordinator's per-transaction settings, in one place. */
export const COORDINATOR_DEFAULTS = {
  /** A global transaction's timeout when it names none, ms. */
  timeoutMs: 60_000,
  /** Transactions one recovery round takes at most. */
  claimBatch: 100,
  /** Transactions a node drives at once before its recovery stops taking more. */
  maxDriving: 2000,
  /** Time between deletes of finished transactions past their retention, ms. */
  pruneIntervalMs: 60_000,
  /** Finished transactions one delete takes at most (a pass repeats until fewer are left). */
  pruneBatch: 5000,
} as const;

interface Drive {
  gid: string;
  lost: boolean;
  /** The status last written (what a caller hears when the drive stops early). */
  status: TxnStatus;
  trace: string | undefined;
  done: Promise<TxnOutcome>;
  /**
   * Branch operations that succeeded and are not written yet: they go with the end, in the
   * row's timeline (see txn-journal.ts), or as rows when the drive turns another way (a
   * failure, a slow call, a hand-over to recovery). Undefined: written at once.
   */
  held?: BranchEvent[];
}

/** Thrown inside a drive when another node (or an operator) took the transaction. */
class LostLease extends Error {}
/** Thrown inside a drive when a compensation, cancel or confirm keeps failing for now. */
class GiveUp extends Error {}

type CallResult = { ok: true; value: unknown } | { ok: false; error: string; sent: boolean };

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;
/** A branch call still unanswered after this long is written as running (the timeline). */
const RUNNING_NOTE_AFTER_MS = 500;
const GID = /^[A-Za-z0-9_.:-]{1,128}$/;

function invalid(message: string, input: string): PeakError {
  return new PeakError(ErrorCodes.TXN_INVALID, message, { details: { input } });
}

function checkGid(gid: string | undefined): string {
  // Time-ordered: the row and its barrier rows go to the right edge of their indexes.
  if (gid === undefined) return uuidV7();
  if (!GID.test(gid))
    throw invalid(`gid '${gid}' is not valid: 1-128 letters, digits or _ . : -`, 'gid');
  return gid;
}

/** A saga's steps with each one's `after` made explicit (the previous step unless concurrent). */
function normalizeSaga(spec: SagaSpec): SagaStep[] {
  if (spec.steps.length === 0) throw invalid('a saga needs at least one step', 'steps');
  const seen = new Set<string>();
  return spec.steps.map((step, i) => {
    if (!NAME.test(step.name))
      throw invalid(
        `step name '${step.name}' is not valid: 1-64 letters, digits, _ . -`,
        `steps[${i}].name`,
      );
    if (seen.has(step.name))
      throw invalid(`two steps are named '${step.name}'`, `steps[${i}].name`);
    const after =
      spec.concurrent === true ? (step.after ?? []) : i === 0 ? [] : [spec.steps[i - 1]!.name];
    for (const dep of after) {
      if (!seen.has(dep))
        throw invalid(
          `step '${step.name}' runs after '${dep}', which is not a step declared before it`,
          `steps[${i}].after`,
        );
    }
    seen.add(step.name);
    return { ...step, after };
  });
}

/**
 * Checks each branch call: an RPC method (`service` and `method`) or an HTTP endpoint (`url`)
 * under one of `prefixes`, never both or neither. `calls` pairs each with its input path.
 */
function checkCalls(calls: [BranchCall | undefined, string][], prefixes: readonly URL[]): void {
  for (const [call, input] of calls) {
    if (call === undefined) continue;
    const c = call as Partial<RpcBranchCall & HttpBranchCall>;
    const rpc = c.service !== undefined || c.method !== undefined;
    if (c.url === undefined) {
      if (typeof c.service !== 'string' || typeof c.method !== 'string')
        throw invalid(
          'a branch call names an RPC method ({service, method}) or an HTTP endpoint ({url})',
          input,
        );
      continue;
    }
    if (rpc)
      throw invalid(
        'a branch call names either an RPC method ({service, method}) or an HTTP endpoint ({url}), not both',
        input,
      );
    const url = parseHttpUrl(c.url);
    if (typeof url === 'string') throw invalid(url, `${input}.url`);
    if (!urlAllowed(url, prefixes))
      throw invalid(
        prefixes.length === 0
          ? `${c.url}: this server calls no HTTP branches; an operator allows URL prefixes with txn.httpBranches (PEAK_TXN_HTTP_BRANCHES)`
          : `${c.url} is not under a URL prefix this server allows for HTTP branches (${prefixes.map((p) => p.href).join(', ')}; txn.httpBranches / PEAK_TXN_HTTP_BRANCHES)`,
        `${input}.url`,
      );
  }
}

function checkTcc(spec: TccSpec): void {
  if (spec.branches.length === 0)
    throw invalid('a TCC transaction needs at least one branch', 'branches');
  const seen = new Set<string>();
  spec.branches.forEach((b, i) => {
    if (!NAME.test(b.name))
      throw invalid(
        `branch name '${b.name}' is not valid: 1-64 letters, digits, _ . -`,
        `branches[${i}].name`,
      );
    if (seen.has(b.name))
      throw invalid(`two branches are named '${b.name}'`, `branches[${i}].name`);
    seen.add(b.name);
  });
}

/**
 * Throws PEAK_FORBIDDEN unless `by` may act on the transaction `gid` that `app` submitted:
 * its own app, or an operator (`by` undefined). The gid is no secret (`peak txn ls` lists
 * it to any credential), so the answer is 403 and says whose it is, not a 404 that hides it.
 */
function checkOwner(gid: string, app: string | null | undefined, by: string | undefined): void {
  if (by === undefined || app === by) return;
  throw new PeakError(
    ErrorCodes.FORBIDDEN,
    `global transaction '${gid}' belongs to ${app == null ? 'an operator' : `app '${app}'`}: only that app or an operator token may act on it`,
    { details: { gid, app: by, owner: app ?? null } },
  );
}

const sleep = (ms: number) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, ms).unref();
  });

/** One node's coordinator: submits, drives, renews and recovers global transactions. */
export class TxnCoordinator {
  readonly #o: CoordinatorOptions;
  readonly #journal: TxnJournal;
  readonly #driving = new Map<string, Drive>();
  #renewer: NodeJS.Timeout | undefined;
  #recoverer: NodeJS.Timeout | undefined;
  #recovering = false;
  #pruner: NodeJS.Timeout | undefined;
  #pruning = false;
  #stopped = false;

  constructor(options: CoordinatorOptions) {
    this.#o = options;
    this.#journal = new TxnJournal(options.pool, options.nodeId, options.leaseMs, (err) =>
      options.logger.warn({ err: errorMessage(err) }, 'analyzing peak.txn_globals failed'),
    );
  }

  /** How many transactions this node drives now. */
  get driving(): number {
    return this.#driving.size;
  }

  /** Starts the lease renewer and (when enabled) the recovery loop. */
  start(): void {
    this.#renewer = setInterval(() => void this.#renew(), Math.max(50, this.#o.leaseMs / 3));
    this.#renewer.unref();
    if (this.#o.recovery) {
      this.#recoverer = setInterval(() => void this.recoverOnce(), this.#o.recoveryIntervalMs);
      this.#recoverer.unref();
      if (this.#o.retentionMs !== undefined) {
        this.#pruner = setInterval(
          () => void this.pruneOnce(),
          COORDINATOR_DEFAULTS.pruneIntervalMs,
        );
        this.#pruner.unref();
      }
    }
  }

  /**
   * Deletes the finished transactions started more than `retentionMs` ago, in batches until
   * a batch comes back short (bounded: at most 20 batches a pass); returns how many. One
   * pass at a time per node; nodes running it at once skip each other's rows.
   */
  async pruneOnce(): Promise<number> {
    const retentionMs = this.#o.retentionMs;
    if (retentionMs === undefined || this.#pruning || this.#stopped) return 0;
    this.#pruning = true;
    let total = 0;
    try {
      const before = Date.now() - retentionMs;
      for (let i = 0; i < 20 && !this.#stopped; i++) {
        const n = await pruneFinished(this.#o.pool, before, COORDINATOR_DEFAULTS.pruneBatch);
        total += n;
        if (n < COORDINATOR_DEFAULTS.pruneBatch) break;
      }
      if (total > 0)
        this.#o.logger.info(
          { deleted: total, retentionMs },
          'finished transactions past retention deleted',
        );
    } catch (err) {
      this.#o.logger.warn({ err: errorMessage(err) }, 'deleting finished transactions failed');
    } finally {
      this.#pruning = false;
    }
    return total;
  }

  /** Stops taking work; drives in flight end at their next step (their leases run out). */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#renewer);
    clearInterval(this.#recoverer);
    clearInterval(this.#pruner);
    for (const d of this.#driving.values()) d.lost = true;
  }

  // ------------------------------------------------------------------ submit

  /**
   * Takes a saga and drives it; with `wait`, resolves at its end (or when it cannot end now).
   * `by` is the submitting app (undefined: an operator); a gid another app submitted is
   * refused (PEAK_FORBIDDEN).
   */
  async submitSaga(spec: SagaSpec, wait: boolean, by?: string): Promise<TxnOutcome> {
    const steps = normalizeSaga(spec);
    checkCalls(
      spec.steps.flatMap((s, i): [BranchCall | undefined, string][] => [
        [s.action, `steps[${i}].action`],
        [s.compensate, `steps[${i}].compensate`],
      ]),
      this.#o.httpBranches ?? [],
    );
    return this.#begin('saga', checkGid(spec.gid), { ...spec, steps }, spec.timeoutMs, wait, by);
  }

  /** Takes a TCC transaction and drives it (`by` as for {@link submitSaga}). */
  async submitTcc(spec: TccSpec, wait: boolean, by?: string): Promise<TxnOutcome> {
    checkTcc(spec);
    checkCalls(
      spec.branches.flatMap((b, i): [BranchCall, string][] => [
        [b.try, `branches[${i}].try`],
        [b.confirm, `branches[${i}].confirm`],
        [b.cancel, `branches[${i}].cancel`],
      ]),
      this.#o.httpBranches ?? [],
    );
    return this.#begin('tcc', checkGid(spec.gid), spec, spec.timeoutMs, wait, by);
  }

  async #begin(
    kind: TxnKind,
    gid: string,
    spec: SagaSpec | TccSpec,
    timeoutMs: number | undefined,
    wait: boolean,
    by: string | undefined,
  ): Promise<TxnOutcome> {
    const trace = currentContext()?.traceId;
    const deadline = Date.now() + (timeoutMs ?? COORDINATOR_DEFAULTS.timeoutMs);
    const inserted = await this.#journal.write({
      kind: 'insert',
      gid,
      txnKind: kind,
      status: 'running',
      spec,
      deadline,
      leaseMs: this.#o.leaseMs,
      ...(trace === undefined ? {} : { traceId: trace }),
      ...(by === undefined ? {} : { app: by }),
    });
    if (!inserted) {
      // The same gid again (a retried submit): whoever holds it drives it.
      const row = await this.#o.pool.query<{
        status: TxnStatus;
        reason: string | null;
        app: string | null;
      }>('SELECT status, reason, app FROM peak.txn_globals WHERE gid = $1', [gid]);
      const r = row.rows[0];
      checkOwner(gid, r?.app, by);
      const existing = this.#driving.get(gid);
      if (existing !== undefined && wait) return existing.done;
      return {
        gid,
        status: r?.status ?? 'running',
        ...(r?.reason == null ? {} : { reason: r.reason }),
      };
    }
    const row: GlobalRow = {
      gid,
      kind,
      status: 'running',
      spec,
      reason: null,
      deadline: new Date(deadline),
      recoveries: 0,
      trace_id: trace ?? null,
    };
    const drive = this.#drive(row, new Set(), false);
    if (wait) return drive.done;
    return { gid, status: 'running' };
  }

  // ------------------------------------------------------------------ drive

  #drive(row: GlobalRow, succeeded: Set<string>, recovered: boolean): Drive {
    const drive: Drive = {
      gid: row.gid,
      lost: false,
      status: row.status,
      trace: row.trace_id ?? undefined,
      done: Promise.resolve({ gid: row.gid, status: row.status }),
      held: [],
    };
    this.#driving.set(row.gid, drive);
    drive.done = this.#run(drive, row, succeeded, recovered)
      .catch(async (err): Promise<TxnOutcome> => {
        this.#release(drive);
        if (err instanceof LostLease) {
          this.#o.logger.info(
            { gid: row.gid },
            'another node or an operator took the transaction over',
          );
          return { gid: row.gid, status: row.status };
        }
        const reason = err instanceof GiveUp ? err.message : errorMessage(err);
        this.#o.logger.warn({ gid: row.gid, reason }, 'transaction handed back to recovery');
        const delay = Math.min(60_000, 500 * 2 ** Math.min(row.recoveries, 7));
        await releaseLease(this.#o.pool, this.#o.nodeId, row.gid, delay).catch(() => undefined);
        return { gid: row.gid, status: drive.status, reason };
      })
      .finally(() => {
        if (this.#driving.get(row.gid) === drive) this.#driving.delete(row.gid);
      });
    return drive;
  }

  async #run(
    d: Drive,
    row: GlobalRow,
    succeeded: Set<string>,
    recovered: boolean,
  ): Promise<TxnOutcome> {
    switch (row.kind) {
      case 'saga':
        return this.#runSaga(d, row, succeeded, recovered);
      case 'tcc':
        return this.#runTcc(d, row, succeeded, recovered);
      case 'msg':
        return this.#runMsg(row);
    }
  }

  /**
   * Writes a status change; `lazy` (no wait for the WAL flush) only for an end recovery
   * repeats when it is lost (see txn-journal.ts): a TCC's end, a saga's `failed`.
   */
  async #setStatus(d: Drive, status: TxnStatus, reason?: string, lazy = false): Promise<void> {
    // An end takes the held timeline along. A status on the way (`committing`, `aborting`)
    // keeps holding it: recovery does without what is held, as without a lost lazy write
    // (an operation not in the timeline is called again and its barrier filters it; a TCC's
    // tries are not read at all).
    const end = status === 'succeeded' || status === 'failed';
    const timeline = end && d.held !== undefined && d.held.length > 0 ? d.held : undefined;
    if (timeline !== undefined) d.held = [];
    const applied = await this.#journal.write({
      kind: 'status',
      gid: d.gid,
      status,
      ...(reason === undefined ? {} : { reason }),
      ...(lazy ? { lazy } : {}),
      ...(timeline === undefined ? {} : { timeline }),
    });
    if (!applied) {
      d.lost = true;
      if (timeline !== undefined) for (const e of timeline) this.#journal.note(e);
      throw new LostLease();
    }
    d.status = status;
  }

  /** Writes a branch event: held for the end when the drive holds them, else queued now. */
  #record(d: Drive, event: BranchEvent): void {
    if (d.held !== undefined && event.status === 'succeeded') d.held.push(event);
    else {
      this.#release(d);
      this.#journal.note(event);
    }
  }

  /** Queues the held events as rows (the drive turned a way its end will not record). */
  #release(d: Drive): void {
    if (d.held === undefined || d.held.length === 0) return;
    for (const e of d.held) this.#journal.note(e);
    d.held = [];
  }

  /** Calls one branch operation under its policy; `bounded` ops stop at the deadline. */
  async #call(
    d: Drive,
    name: string,
    op: BranchOp,
    target: BranchCall,
    payload: unknown,
    policy: StepPolicy,
    deadline: number | undefined,
  ): Promise<CallResult> {
    const startedAt = Date.now();
    // A call that ends quickly is written once, when it ends; a slow one shows as running.
    const slow = setTimeout(() => {
      this.#record(d, {
        kind: 'branch',
        gid: d.gid,
        branch: name,
        op,
        status: 'running',
        attempts: 1,
        startedAt,
      });
    }, RUNNING_NOTE_AFTER_MS);
    slow.unref();
    try {
      return await this.#attempts(d, name, op, target, payload, policy, deadline, startedAt);
    } finally {
      clearTimeout(slow);
    }
  }

  async #attempts(
    d: Drive,
    name: string,
    op: BranchOp,
    target: BranchCall,
    payload: unknown,
    policy: StepPolicy,
    deadline: number | undefined,
    startedAt: number,
  ): Promise<CallResult> {
    const retries = policy.retries ?? STEP_DEFAULTS.retries;
    let delay = policy.retryDelayMs ?? STEP_DEFAULTS.retryDelayMs;
    const timeoutMs = policy.timeoutMs ?? STEP_DEFAULTS.timeoutMs;
    const branch: TxnBranch = { gid: d.gid, branch: name, op };
    let sent = false;
    for (let attempt = 1; ; attempt++) {
      if (d.lost) throw new LostLease();
      try {
        const left =
          deadline === undefined ? timeoutMs : Math.min(timeoutMs, deadline - Date.now());
        const value = await this.#o.caller.call(
          target,
          payload,
          branch,
          Math.max(1, left),
          d.trace,
        );
        this.#record(d, {
          kind: 'branch',
          gid: d.gid,
          branch: name,
          op,
          status: 'succeeded',
          attempts: attempt,
          startedAt,
          finishedAt: Date.now(),
        });
        return { ok: true, value };
      } catch (err) {
        const refused = isPeakError(err, ErrorCodes.TXN_BRANCH_FAILED);
        if (!(isPeakError(err) && err.details.sent === false)) sent = true;
        const error = `${isPeakError(err) ? `${err.code}: ` : ''}${errorMessage(err)}`;
        const over = deadline !== undefined && Date.now() + delay >= deadline;
        if (refused || attempt > retries || over || this.#stopped) {
          this.#record(d, {
            kind: 'branch',
            gid: d.gid,
            branch: name,
            op,
            status: 'failed',
            attempts: attempt,
            error,
            startedAt,
            finishedAt: Date.now(),
          });
          return { ok: false, error, sent };
        }
        await sleep(delay);
        delay = Math.min(5000, delay * 2);
      }
    }
  }

  /** Like {@link #call} for an op that must succeed eventually (compensate, confirm, cancel). */
  async #must(
    d: Drive,
    name: string,
    op: BranchOp,
    target: BranchCall,
    payload: unknown,
    policy: StepPolicy,
  ) {
    const r = await this.#call(d, name, op, target, payload, policy, undefined);
    if (!r.ok) throw new GiveUp(`${op} of branch ${name} failed: ${r.error}`);
    return r.value;
  }

  // ------------------------------------------------------------------ saga

  async #runSaga(
    d: Drive,
    row: GlobalRow,
    succeeded: Set<string>,
    recovered: boolean,
  ): Promise<TxnOutcome> {
    const spec = row.spec as SagaSpec;
    const steps = spec.steps;
    let reason = row.reason ?? undefined;
    // Steps whose action may have run: all of them after a crash (the timeline may trail).
    let attempted = new Set<string>(recovered ? steps.map((s) => s.name) : []);
    if (row.status === 'running') {
      const results: Record<string, unknown> = {};
      const forward =
        row.deadline.getTime() <= Date.now()
          ? { failure: 'the global timeout passed before the actions finished', attempted }
          : await this.#forward(d, steps, succeeded, results, row.deadline.getTime());
      if (forward.failure === undefined) {
        await this.#setStatus(d, 'succeeded');
        return { gid: d.gid, status: 'succeeded', results };
      }
      reason = forward.failure;
      if (!recovered) attempted = forward.attempted;
      await this.#setStatus(d, 'aborting', reason);
    }
    await this.#compensate(d, steps, attempted, succeeded);
    // Lost, the saga is `aborting` again: recovery compensates (barriers filter) and ends it.
    // A saga's `succeeded` stays durable: lost, it would be `running` again, and a recovery
    // after its deadline would compensate a saga its caller was told had succeeded.
    await this.#setStatus(d, 'failed', undefined, true);
    return { gid: d.gid, status: 'failed', ...(reason === undefined ? {} : { reason }) };
  }

  async #forward(
    d: Drive,
    steps: SagaStep[],
    succeeded: Set<string>,
    results: Record<string, unknown>,
    deadline: number,
  ): Promise<{ failure: string | undefined; attempted: Set<string> }> {
    const done = new Set<string>();
    const attempted = new Set<string>();
    const started = new Set<string>();
    const running = new Map<string, Promise<void>>();
    let failure: string | undefined;
    for (;;) {
      if (d.lost) throw new LostLease();
      if (failure === undefined) {
        for (const step of steps) {
          if (started.has(step.name) || !(step.after ?? []).every((a) => done.has(a))) continue;
          started.add(step.name);
          if (succeeded.has(`${d.gid} ${step.name} action`)) {
            done.add(step.name);
            attempted.add(step.name);
            continue;
          }
          attempted.add(step.name);
          running.set(
            step.name,
            this.#call(d, step.name, 'action', step.action, step.payload, step, deadline).then(
              (r) => {
                running.delete(step.name);
                if (r.ok) {
                  results[step.name] = r.value;
                  done.add(step.name);
                } else {
                  if (!r.sent) attempted.delete(step.name);
                  failure ??= `step ${step.name} failed: ${r.error}`;
                }
              },
            ),
          );
        }
        // A step marked done without a call may unblock others at once.
        if (
          running.size === 0 &&
          steps.some((s) => !started.has(s.name) && (s.after ?? []).every((a) => done.has(a)))
        )
          continue;
      }
      if (running.size === 0) break;
      await Promise.race(running.values());
    }
    if (failure === undefined && done.size < steps.length) failure = 'some steps could not start';
    return { failure, attempted };
  }

  /** Compensates the attempted steps, each after every attempted step that ran after it. */
  async #compensate(d: Drive, steps: SagaStep[], attempted: Set<string>, succeeded: Set<string>) {
    const todo = steps.filter((s) => attempted.has(s.name));
    const left = new Set(todo.map((s) => s.name));
    const running = new Map<string, Promise<void>>();
    let failed: unknown;
    while (left.size > 0 || running.size > 0) {
      if (d.lost) throw new LostLease();
      if (failed === undefined) {
        for (const step of todo) {
          if (!left.has(step.name)) continue;
          // Wait for the compensations of the steps that depend on this one.
          const blocked = todo.some(
            (s) => left.has(s.name) && s.name !== step.name && (s.after ?? []).includes(step.name),
          );
          const inFlight = todo.some(
            (s) => running.has(s.name) && (s.after ?? []).includes(step.name),
          );
          if (blocked || inFlight) continue;
          left.delete(step.name);
          if (step.compensate === undefined || succeeded.has(`${d.gid} ${step.name} compensate`))
            continue;
          const target = step.compensate;
          running.set(
            step.name,
            this.#must(d, step.name, 'compensate', target, step.payload, step).then(
              () => {
                running.delete(step.name);
              },
              (err: unknown) => {
                running.delete(step.name);
                failed ??= err;
              },
            ),
          );
        }
      }
      if (running.size === 0) {
        if (failed !== undefined) throw failed;
        if (left.size === 0) break;
        continue;
      }
      await Promise.race(running.values());
    }
    if (failed !== undefined) throw failed;
  }

  // ------------------------------------------------------------------ tcc

  async #runTcc(
    d: Drive,
    row: GlobalRow,
    succeeded: Set<string>,
    recovered: boolean,
  ): Promise<TxnOutcome> {
    const spec = row.spec as TccSpec;
    let reason = row.reason ?? undefined;
    let status = row.status;
    const results: Record<string, unknown> = {};
    if (status === 'running') {
      if (recovered) {
        // The tries' outcome died with the node that ran them: roll back.
        reason = 'the driving node was lost during the tries';
      } else {
        const tries = await Promise.all(
          spec.branches.map((b) =>
            this.#call(d, b.name, 'try', b.try, b.payload, b, row.deadline.getTime()).then((r) => {
              if (r.ok) results[b.name] = r.value;
              return { b, r };
            }),
          ),
        );
        const bad = tries.find((t) => !t.r.ok);
        if (bad === undefined) {
          status = 'committing';
        } else if (!bad.r.ok) {
          reason = `try of branch ${bad.b.name} failed: ${bad.r.error}`;
        }
      }
      await this.#setStatus(d, status === 'committing' ? 'committing' : 'aborting', reason);
      if (status !== 'committing') status = 'aborting';
    }
    const op: BranchOp = status === 'committing' ? 'confirm' : 'cancel';
    await Promise.all(
      spec.branches.map((b) =>
        succeeded.has(`${d.gid} ${b.name} ${op}`)
          ? undefined
          : this.#must(d, b.name, op, op === 'confirm' ? b.confirm : b.cancel, b.payload, b),
      ),
    );
    const end = op === 'confirm' ? 'succeeded' : 'failed';
    // Lost, it is `committing` or `aborting` again: recovery repeats the confirms or cancels.
    await this.#setStatus(d, end, undefined, true);
    return {
      gid: d.gid,
      status: end,
      ...(end === 'succeeded' ? { results } : reason === undefined ? {} : { reason }),
    };
  }

  // ------------------------------------------------------------------ two-phase message

  /**
   * Holds a message until its local transaction commits (submit) or not (abort, check-back).
   * `by` as for {@link submitSaga}.
   */
  async prepareMsg(spec: MsgSpec, by?: string): Promise<{ gid: string }> {
    const gid = checkGid(spec.gid);
    checkCalls([[spec.check, 'check']], this.#o.httpBranches ?? []);
    const trace = currentContext()?.traceId;
    const inserted = await this.#journal.write({
      kind: 'insert',
      gid,
      txnKind: 'msg',
      status: 'prepared',
      spec,
      deadline: Date.now() + COORDINATOR_DEFAULTS.timeoutMs,
      leaseMs: spec.checkAfterMs ?? this.#o.leaseMs,
      ...(trace === undefined ? {} : { traceId: trace }),
      ...(by === undefined ? {} : { app: by }),
    });
    if (!inserted) {
      // The same gid again: a retried prepare of its own app, or another app's gid.
      const row = await this.#o.pool.query<{ app: string | null }>(
        'SELECT app FROM peak.txn_globals WHERE gid = $1',
        [gid],
      );
      checkOwner(gid, row.rows[0]?.app, by);
    }
    return { gid };
  }

  /**
   * Publishes the message of `gid` and marks it succeeded in one transaction of the
   * control plane's database (which is the broker's), so it is published exactly once.
   * `by` is the app asking (undefined: an operator or the check-back): another app's
   * message is refused (PEAK_FORBIDDEN).
   */
  async submitMsg(gid: string, by?: string): Promise<TxnOutcome> {
    const client = await this.#o.pool.connect();
    try {
      // Four round trips (each one waits for PostgreSQL's turn on a busy machine): the end,
      // its timeline row and the row lock in one statement, then the message, then COMMIT.
      await client.query('BEGIN');
      const res = await client.query<{ spec: MsgSpec }>(
        `WITH ended AS (
           UPDATE peak.txn_globals SET status = 'succeeded', finished_at = now(), updated_at = now(),
                  lease_until = NULL
            WHERE gid = $1 AND kind = 'msg' AND status = 'prepared' AND ($3::text IS NULL OR app = $3)
           RETURNING gid, spec),
         timeline AS (
           INSERT INTO peak.txn_branches (gid, branch, op, status, attempts, started_at, finished_at)
           SELECT gid, $2, 'msg', 'succeeded', 1, now(), now() FROM ended
           ON CONFLICT (gid, branch, op) DO UPDATE SET status = 'succeeded', finished_at = now())
         SELECT spec FROM ended`,
        [gid, MSG_BRANCH, by ?? null],
      );
      const spec = res.rows[0]?.spec;
      if (spec === undefined) {
        await client.query('ROLLBACK');
        return await this.#notSubmitted(gid, by);
      }
      const m = spec.message;
      await sendInTransaction(client, spec.topic, {
        body: m.body,
        ...(m.tag === undefined ? {} : { tag: m.tag }),
        ...(m.keys === undefined ? {} : { keys: m.keys }),
        ...(m.group === undefined ? {} : { group: m.group }),
        properties: { ...(m.properties ?? {}), 'peak-txn-gid': gid },
      });
      await client.query('COMMIT');
      return { gid, status: 'succeeded' };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /** Why `gid` was not submitted: unknown, another app's, already succeeded (fine) or decided. */
  async #notSubmitted(gid: string, by: string | undefined): Promise<TxnOutcome> {
    const res = await this.#o.pool.query<{ status: TxnStatus; kind: TxnKind; app: string | null }>(
      'SELECT status, kind, app FROM peak.txn_globals WHERE gid = $1',
      [gid],
    );
    const row = res.rows[0];
    if (row === undefined || row.kind !== 'msg') {
      throw new PeakError(ErrorCodes.TXN_NOT_FOUND, `no two-phase message '${gid}'`, {
        details: { gid },
      });
    }
    checkOwner(gid, row.app, by);
    if (row.status === 'succeeded') return { gid, status: 'succeeded' };
    throw new PeakError(
      ErrorCodes.TXN_STATE,
      `two-phase message ${gid} is ${row.status}: it can no longer be submitted`,
      { details: { gid, status: row.status } },
    );
  }

  /** Drops a prepared message whose local transaction rolled back (`by` as for {@link submitMsg}). */
  async abortMsg(gid: string, reason: string, by?: string): Promise<TxnOutcome> {
    // Only its own app (or an operator) drops it: the condition on `app` is in the update.
    const res = await this.#o.pool.query<{ status: TxnStatus }>(
      `UPDATE peak.txn_globals SET status = 'failed', reason = $2, finished_at = now(),
              updated_at = now(), lease_until = NULL
        WHERE gid = $1 AND kind = 'msg' AND status = 'prepared'
          AND ($3::text IS NULL OR app = $3) RETURNING status`,
      [gid, reason, by ?? null],
    );
    if ((res.rowCount ?? 0) > 0) return { gid, status: 'failed', reason };
    const now = await this.#o.pool.query<{ status: TxnStatus; app: string | null }>(
      `SELECT status, app FROM peak.txn_globals WHERE gid = $1 AND kind = 'msg'`,
      [gid],
    );
    const row = now.rows[0];
    if (row === undefined)
      throw new PeakError(ErrorCodes.TXN_NOT_FOUND, `no two-phase message '${gid}'`, {
        details: { gid },
      });
    checkOwner(gid, row.app, by);
    return { gid, status: row.status };
  }

  async #runMsg(row: GlobalRow): Promise<TxnOutcome> {
    const spec = row.spec as MsgSpec;
    const d: Drive = {
      gid: row.gid,
      lost: false,
      status: row.status,
      trace: row.trace_id ?? undefined,
      done: Promise.resolve({ gid: row.gid, status: row.status }),
    };
    const answer = (await this.#must(
      d,
      MSG_BRANCH,
      'msg',
      spec.check,
      { gid: row.gid },
      { retries: 1 },
    )) as { status?: string } | undefined;
    if (answer?.status === 'committed') return this.submitMsg(row.gid);
    if (answer?.status === 'rolledback')
      return this.abortMsg(row.gid, 'the check-back found its local transaction rolled back');
    throw new GiveUp(
      `the check-back of ${row.gid} answered ${JSON.stringify(answer)}, not {status: committed|rolledback}`,
    );
  }

  // ------------------------------------------------------------------ leases and recovery

  async #renew(): Promise<void> {
    if (this.#driving.size === 0) return;
    const gids = [...this.#driving.keys()];
    try {
      const owned = await renewLeases(this.#o.pool, this.#o.nodeId, gids, this.#o.leaseMs);
      for (const gid of gids) {
        const d = this.#driving.get(gid);
        if (d !== undefined && !owned.has(gid)) d.lost = true;
      }
    } catch (err) {
      this.#o.logger.warn({ err: errorMessage(err) }, 'renewing transaction leases failed');
    }
  }

  /** One recovery round: takes over transactions whose lease ran out and drives them. */
  async recoverOnce(): Promise<number> {
    if (this.#recovering || this.#stopped) return 0;
    if (this.#driving.size >= COORDINATOR_DEFAULTS.maxDriving) return 0;
    this.#recovering = true;
    try {
      const { claimed, parked } = await claimDue(
        this.#o.pool,
        this.#o.nodeId,
        this.#o.leaseMs,
        COORDINATOR_DEFAULTS.claimBatch,
        this.#o.maxRecoveries,
      );
      for (const gid of parked)
        this.#o.logger.warn({ gid }, 'transaction parked after its retry limit');
      if (claimed.length === 0) return 0;
      const succeeded = await succeededOps(
        this.#o.pool,
        claimed.map((r) => r.gid),
      );
      for (const row of claimed) {
        // A drive of this node still under way lost its claim (an operator stopped it):
        // it ends at its next step, the new drive takes over.
        const old = this.#driving.get(row.gid);
        if (old !== undefined) old.lost = true;
        this.#o.logger.info({ gid: row.gid, status: row.status }, 'recovering a transaction');
        this.#drive(row, succeeded, true);
      }
      return claimed.length;
    } catch (err) {
      this.#o.logger.warn({ err: errorMessage(err) }, 'transaction recovery round failed');
      return 0;
    } finally {
      this.#recovering = false;
    }
  }
}
