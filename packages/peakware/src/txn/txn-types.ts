/**
 * The shapes of global transactions as the coordinator takes and shows them: saga steps,
 * TCC branches, two-phase messages, and the status and branch timeline of one global
 * transaction. Plain JSON, shared by the SDK, the control plane and the admin client.
 */

/** Which protocol a global transaction follows. */
export type TxnKind = 'saga' | 'tcc' | 'msg';

/**
 * The coordinator's service on the control plane's RPC port (`name:version`): `saga` and
 * `tcc` take `{ token, body }`, the body of `POST /api/v1/txn/sagas|tccs`, and answer as it.
 */
export const TXN_RPC_SERVICE = 'peak.txn:1';

/**
 * Where a global transaction stands: `prepared` (a message waiting for its local
 * transaction), `running` (saga actions or TCC tries), `committing` (TCC confirms),
 * `aborting` (compensations or cancels), then `succeeded` or `failed` for good.
 */
export type TxnStatus = 'prepared' | 'running' | 'committing' | 'aborting' | 'succeeded' | 'failed';

/** The statuses a global transaction ends in. */
export const FINAL_STATUSES: readonly TxnStatus[] = ['succeeded', 'failed'];

/** A branch operation: saga `action`/`compensate`, TCC `try`/`confirm`/`cancel`, or `msg`. */
export type BranchOp = 'action' | 'compensate' | 'try' | 'confirm' | 'cancel' | 'msg';

/** One RPC method a branch operation calls: service key (`group/name:version`) and method. */
export interface RpcBranchCall {
  /** The service key, `group/name:version` (`definitionKey(def)`). */
  service: string;
  /** The method name. */
  method: string;
}

/**
 * An outside service's HTTP endpoint a branch operation POSTs its payload to (`httpBranch`
 * in txn-client.ts). The coordinator calls only URLs under a prefix its server allows
 * (`txn.httpBranches`, `PEAK_TXN_HTTP_BRANCHES`), so a transaction cannot make it call
 * anything else on its network. The protocol is in the txn README ("HTTP branches").
 */
export interface HttpBranchCall {
  /** `http://` or `https://`, no credentials in it. */
  url: string;
}

/** What a branch operation calls: an RPC method or an HTTP endpoint. */
export type BranchCall = RpcBranchCall | HttpBranchCall;

/** True for a branch call to an HTTP endpoint. */
export function isHttpBranchCall(call: BranchCall): call is HttpBranchCall {
  return typeof (call as HttpBranchCall).url === 'string';
}

/** Retry policy and timeout of one step; defaults in {@link STEP_DEFAULTS}. */
export interface StepPolicy {
  /** Tries after the first when a call fails other than by refusing (timeouts, unreachable). */
  retries?: number;
  /** Wait before the first retry, ms; doubles each retry up to 5 s. */
  retryDelayMs?: number;
  /** Longest one call may take, ms. */
  timeoutMs?: number;
}

/** The defaults of {@link StepPolicy}, written once. */
export const STEP_DEFAULTS = { retries: 2, retryDelayMs: 100, timeoutMs: 3000 } as const;

/** One saga step: an action and the compensation that undoes it. */
export interface SagaStep extends StepPolicy {
  /** Unique within the saga: 1-64 letters, digits, `_`, `-` or `.`. */
  name: string;
  /** What the step does. */
  action: BranchCall;
  /** What undoes it; a step without one cannot be rolled back (a read, a last step). */
  compensate?: BranchCall;
  /** The argument both calls get. */
  payload?: unknown;
  /**
   * Steps that must have succeeded before this one starts (concurrent sagas only); the
   * compensations run in the reverse order.
   */
  after?: string[];
}

/** What a saga is submitted with. */
export interface SagaSpec {
  /** The global id; one is made when absent. Submitting an id twice runs it once. */
  gid?: string;
  steps: SagaStep[];
  /** Run steps as soon as their `after` steps are done; default false (one after another). */
  concurrent?: boolean;
  /** The global timeout, ms: actions still unfinished then are compensated. Default 60 000. */
  timeoutMs?: number;
}

/** One TCC branch: a try that reserves, a confirm that commits it and a cancel that frees it. */
export interface TccBranch extends StepPolicy {
  /** Unique within the transaction. */
  name: string;
  try: BranchCall;
  confirm: BranchCall;
  cancel: BranchCall;
  /** The argument the three calls get. */
  payload?: unknown;
}

/** What a TCC transaction is submitted with: the tries run at once, then confirms or cancels. */
export interface TccSpec {
  gid?: string;
  branches: TccBranch[];
  /** The global timeout, ms. Default 60 000. */
  timeoutMs?: number;
}

/** The message a two-phase message publishes once its local transaction commits. */
export interface TxnMessage {
  /** The body; strings are sent as UTF-8. */
  body: string;
  tag?: string;
  keys?: string[];
  group?: string;
  properties?: Record<string, string>;
}

/** What a two-phase message is prepared with. */
export interface MsgSpec {
  gid?: string;
  topic: string;
  message: TxnMessage;
  /**
   * The method the coordinator asks when the local transaction's outcome is unknown (the
   * app died between prepare and submit); it answers with {@link checkPrepared}.
   */
  check: BranchCall;
  /** How long the coordinator waits for the submit before it asks `check`, ms. Default: the lease (10 s). */
  checkAfterMs?: number;
}

/** One branch operation in the timeline of a global transaction. */
export interface BranchView {
  branch: string;
  op: BranchOp;
  /** `running`, `succeeded`, `failed` (tried and failed, may be tried again). */
  status: 'running' | 'succeeded' | 'failed';
  attempts: number;
  error?: string;
  startedAt: string;
  finishedAt?: string;
}

/** A global transaction as `peak txn show` prints it. */
export interface TxnView {
  gid: string;
  kind: TxnKind;
  status: TxnStatus;
  /** Why it aborted or failed (the branch and its error, or who stopped it). */
  reason?: string;
  /** The app that submitted it (absent when an operator did): only it, or an operator, may act on it. */
  app?: string;
  /** The node driving it now (or last), and until when its lease runs. */
  owner?: string;
  leaseUntil?: string;
  deadline: string;
  /** Times a node's recovery took it over. */
  recoveries: number;
  /** Set when recovery gave up after the retry limit: waits for `peak txn retry`. */
  parked: boolean;
  traceId?: string;
  createdAt: string;
  updatedAt: string;
  finishedAt?: string;
  /** What it was submitted with (steps, branches or the message). */
  spec: unknown;
  branches: BranchView[];
}

/** One row of `peak txn ls`. */
export type TxnSummary = Omit<TxnView, 'spec' | 'branches'>;

/** What a submitted saga or TCC answers: its status, and the results of its calls when it waited. */
export interface TxnOutcome {
  gid: string;
  status: TxnStatus;
  reason?: string;
  /** Per step (saga action) or branch (TCC try): what the call returned. */
  results?: Record<string, unknown>;
}
