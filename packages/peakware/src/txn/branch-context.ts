/**
 * How a branch call knows which global transaction it belongs to: the coordinator puts the
 * global id, the branch name and the operation into the call context's baggage, which RPC
 * carries to the provider (and on downstream, so traces carry the global id too); an HTTP
 * branch gets them as request headers ({@link TXN_HTTP_HEADERS}, read by {@link httpTxnBranch}).
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

/** The request headers an HTTP branch call carries its global id, branch and operation in. */
export const TXN_HTTP_HEADERS = {
  gid: 'peak-txn-gid',
  branch: 'peak-txn-branch',
  op: 'peak-txn-op',
} as const;

/** Request headers as Node's `IncomingMessage`, Fetch's `Headers` or a plain object hold them. */
export type HeaderSource =
  | { get(name: string): string | null }
  | Record<string, string | string[] | undefined>;

function header(headers: HeaderSource, name: string): string | undefined {
  if (typeof headers.get === 'function')
    return (headers.get as (n: string) => string | null)(name) ?? undefined;
  const v = (headers as Record<string, string | string[] | undefined>)[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * The branch an HTTP branch call runs for, from its request headers (lower-case names, as
 * Node gives them): pass it to `barrier(db, httpTxnBranch(req.headers), fn)`. Throws
 * PEAK_TXN_NO_BRANCH naming the missing header when the request is not a branch call.
 */
export function httpTxnBranch(headers: HeaderSource): TxnBranch {
  const gid = header(headers, TXN_HTTP_HEADERS.gid);
  const branch = header(headers, TXN_HTTP_HEADERS.branch);
  const op = header(headers, TXN_HTTP_HEADERS.op);
  const missing = [
    gid === undefined || gid === '' ? TXN_HTTP_HEADERS.gid : undefined,
    branch === undefined || branch === '' ? TXN_HTTP_HEADERS.branch : undefined,
    op === undefined || !OPS.has(op) ? TXN_HTTP_HEADERS.op : undefined,
  ].filter((h) => h !== undefined);
  if (missing.length > 0) {
    throw new PeakError(
      ErrorCodes.TXN_NO_BRANCH,
      `this request is not a txn branch call: header ${missing.join(', ')} missing or not valid (the coordinator sends ${Object.values(TXN_HTTP_HEADERS).join(', ')})`,
    );
  }
  return { gid: gid!, branch: branch!, op: op as BranchOp };
}
