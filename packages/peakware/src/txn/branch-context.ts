/**
 * How a branch call knows which global transaction it belongs to: the coordinator puts the
 * global id, the branch name and the operation into the call context's baggage, which RPC
 * carries to the provider (and on downstream, so traces carry the global id too).
 */
import { type CallContext, currentContext } from '../core/context.js';
import { ErrorCodes, PeakError } from '../core/errors.js';
import type { BranchOp } from './txn-types.js';

/** The baggage keys the coordinator sets on a branch call. */
export const TXN_BAGGAGE = {
  gid: 'peak.txn.gid',
  branch: 'peak.txn.branch',
  op: 'peak.txn.op',
} as const;

/** The global transaction, branch and operation a call runs for. */
export interface TxnBranch {
  gid: string;
  branch: string;
  op: BranchOp;
}

const OPS = new Set<string>(['action', 'compensate', 'try', 'confirm', 'cancel', 'msg']);

/** The branch of the current call (from its context); throws PEAK_TXN_NO_BRANCH outside one. */
export function txnBranch(ctx: CallContext | undefined = currentContext()): TxnBranch {
  const gid = ctx?.baggage[TXN_BAGGAGE.gid];
  const branch = ctx?.baggage[TXN_BAGGAGE.branch];
  const op = ctx?.baggage[TXN_BAGGAGE.op];
  if (gid === undefined || branch === undefined || op === undefined || !OPS.has(op)) {
    throw new PeakError(
      ErrorCodes.TXN_NO_BRANCH,
      'this call carries no global transaction (baggage peak.txn.gid/branch/op): a barrier wraps a handler the txn coordinator calls, or takes its branch explicitly',
    );
  }
  return { gid, branch, op: op as BranchOp };
}

/** The baggage that makes a call a branch operation. */
export function branchBaggage(branch: TxnBranch): Record<string, string> {
  return {
    [TXN_BAGGAGE.gid]: branch.gid,
    [TXN_BAGGAGE.branch]: branch.branch,
    [TXN_BAGGAGE.op]: branch.op,
  };
}
