/**
 * Faults at RPC: a filter for the consumer (`rpcClient.use(...)`, around the whole logical
 * call, retries included) or the provider (`new RpcServer({ filters: [...] })` or
 * `server.use(...)`, around the method). A dropped call on the provider is never answered
 * (the caller times out); on the consumer it is never sent and fails as unavailable once
 * the call's time is up.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCodes, PeakError } from '../core/errors.js';
import type { RpcFilter } from '../rpc/rpc-filter.js';
import type { DrillAgent } from './drill-agent.js';
import { faultWaitMs, runFault } from './fault-action.js';

/** The filter injecting `agent`'s faults at `rpc-client` (consumer) or `rpc-server` (provider). */
export function rpcFaultFilter(agent: DrillAgent, side: 'consumer' | 'provider'): RpcFilter {
  const point = side === 'consumer' ? 'rpc-client' : 'rpc-server';
  return async (invocation, next) => {
    if (!agent.has(point)) return next();
    const fault = agent.find(point, { service: invocation.service, method: invocation.method });
    if (fault === undefined) return next();
    const where = `${point} ${invocation.service}.${invocation.method}`;
    if ((await runFault(fault, where, ErrorCodes.RPC_TIMEOUT)) === 'proceed') return next();
    await sleep(faultWaitMs(fault));
    throw new PeakError(
      side === 'consumer' ? ErrorCodes.RPC_UNAVAILABLE : ErrorCodes.RPC_TIMEOUT,
      `fault ${fault.id} dropped the call at ${where}`,
      { details: { faultId: fault.id, injected: true } },
    );
  };
}
