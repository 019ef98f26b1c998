/**
 * How the coordinator calls a branch: an RPC call to the branch's service key and method
 * (or, for a URL, a POST through http-branch-caller.ts),
 * in a context that carries the global id, branch and operation as baggage (the barrier
 * reads them) and the trace id of the submitter, so every branch's spans join the trace of
 * the request that started the transaction.
 */
import { createContext, runWithContext } from '../../core/context.js';
import type { RpcClient } from '../../rpc/rpc-client.js';
import { branchBaggage, type TxnBranch } from '../branch-context.js';
import { type BranchCall, isHttpBranchCall, type RpcBranchCall } from '../txn-types.js';
import type { HttpBranchCaller } from './http-branch-caller.js';

/** Calls one branch operation; the seam tests and other transports plug into. */
export interface BranchCaller {
  /** Calls `target` with `payload` as operation `branch`; rejects with the branch's error. */
  call(
    target: BranchCall,
    payload: unknown,
    branch: TxnBranch,
    timeoutMs: number,
    traceId: string | undefined,
  ): Promise<unknown>;
}

type Untyped = ReturnType<RpcClient['untyped']>;

/** A {@link BranchCaller} over peakware/rpc. */
export class RpcBranchCaller {
  readonly #rpc: RpcClient;
  readonly #services = new Map<string, Untyped>();

  constructor(rpc: RpcClient) {
    this.#rpc = rpc;
  }

  call(
    target: RpcBranchCall,
    payload: unknown,
    branch: TxnBranch,
    timeoutMs: number,
    traceId: string | undefined,
  ): Promise<unknown> {
    let service = this.#services.get(target.service);
    if (service === undefined) {
      // Failover only to calls that provably never reached a provider: the coordinator
      // retries the rest itself, under the step's policy.
      service = this.#rpc.untyped(target.service, { cluster: 'failover', retries: 1 });
      this.#services.set(target.service, service);
    }
    const call = service;
    const ctx = createContext({
      timeoutMs,
      baggage: branchBaggage(branch),
      ...(traceId === undefined ? {} : { traceId }),
    });
    return runWithContext(ctx, () => call(target.method, payload ?? {}, { timeoutMs }));
  }
}

/** The coordinator's caller: RPC methods over peakware/rpc, URLs over HTTP. */
export class TransportBranchCaller implements BranchCaller {
  readonly #rpc: RpcBranchCaller;
  readonly #http: HttpBranchCaller;

  constructor(rpc: RpcBranchCaller, http: HttpBranchCaller) {
    this.#rpc = rpc;
    this.#http = http;
  }

  call(
    target: BranchCall,
    payload: unknown,
    branch: TxnBranch,
    timeoutMs: number,
    traceId: string | undefined,
  ): Promise<unknown> {
    return isHttpBranchCall(target)
      ? this.#http.call(target, payload, branch, timeoutMs, traceId)
      : this.#rpc.call(target, payload, branch, timeoutMs, traceId);
  }
}
