/**
 * `peakware/txn`: transactions across services. Sagas (ordered or concurrent steps with
 * compensations), TCC (try / confirm / cancel) and two-phase messages (a local transaction
 * and an MQ message, both or neither), driven by the coordinator in `peak server`; and the
 * barrier every branch wraps its handler in, which makes repeated, reordered and late
 * branch calls safe.
 */

export {
  BARRIER_TABLE,
  type BarrierDb,
  barrier,
  checkPrepared,
  installBarrier,
  MSG_BRANCH,
  pruneBarrier,
} from './barrier.js';
export {
  type BarrierQueryable,
  barrierStatement,
  type GatedResult,
} from './barrier-statement.js';
export {
  branchBaggage,
  type HeaderSource,
  httpTxnBranch,
  TXN_BAGGAGE,
  TXN_HTTP_HEADERS,
  type TxnBranch,
  txnBranch,
} from './branch-context.js';
export { BranchRefusedError } from './branch-refused.js';
export {
  branchCall,
  httpBranch,
  PreparedMessage,
  type SubmitOptions,
  TxnClient,
  type TxnClientOptions,
} from './txn-client.js';
export {
  type BranchCall,
  type BranchOp,
  type BranchView,
  FINAL_STATUSES,
  type HttpBranchCall,
  isHttpBranchCall,
  type MsgSpec,
  type RpcBranchCall,
  type SagaSpec,
  type SagaStep,
  STEP_DEFAULTS,
  type StepPolicy,
  type TccBranch,
  type TccSpec,
  type TxnKind,
  type TxnMessage,
  type TxnOutcome,
  type TxnStatus,
  type TxnSummary,
  type TxnView,
} from './txn-types.js';
