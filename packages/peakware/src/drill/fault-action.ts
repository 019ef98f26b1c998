/**
 * What a fault does to one call, the same at every point: `delay` waits then lets the call
 * go on, `error` throws a PeakError with the fault's code, `exception` throws a plain Error
 * (what an unexpected bug looks like), `timeout` waits (its `delayMs`, else until the
 * call's deadline, at most a minute) then throws the point's timeout error, `drop` tells
 * the hook to lose the call its own way (no answer, no message, a cache miss).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { remainingTime } from '../core/context.js';
import { type ErrorCode, ErrorCodes, PeakError } from '../core/errors.js';
import type { FaultSpec } from './fault-spec.js';

/** The error a fault of kind `error` throws: its code is the one the fault names. */
export class InjectedFaultError extends PeakError {
  /** The fault that threw it. */
  readonly faultId: string;

  constructor(code: string, message: string, faultId: string) {
    super(code as ErrorCode, message, { details: { faultId, injected: true } });
    this.faultId = faultId;
  }
}

/** Longest wait of a `timeout` or `drop` without a deadline, ms. */
export const MAX_FAULT_WAIT_MS = 60_000;

/** How long a `timeout` (or a dropped call) waits: its delay, else the call's time left. */
export function faultWaitMs(fault: FaultSpec): number {
  const left = remainingTime();
  const wanted = fault.delayMs ?? left;
  return Math.max(0, Math.min(wanted, left, MAX_FAULT_WAIT_MS));
}

function describe(fault: FaultSpec, where: string): string {
  return `fault ${fault.id}${fault.drill === undefined ? '' : ` of drill ${fault.drill}`} injected at ${where}`;
}

/**
 * Runs `fault` on the current call at `where` (for messages). Resolves `'proceed'` (go on
 * with the call) or `'drop'` (the hook loses it), or throws the fault's failure.
 * `timeoutCode` is the point's own timeout error (PEAK_RPC_TIMEOUT for RPC).
 */
export async function runFault(
  fault: FaultSpec,
  where: string,
  timeoutCode: ErrorCode = ErrorCodes.DEADLINE_EXCEEDED,
): Promise<'proceed' | 'drop'> {
  switch (fault.kind) {
    case 'delay':
      await sleep(fault.delayMs ?? 0);
      return 'proceed';
    case 'error':
      throw new InjectedFaultError(
        fault.code ?? ErrorCodes.DRILL_INJECTED,
        fault.message ?? describe(fault, where),
        fault.id,
      );
    case 'exception':
      throw new Error(fault.message ?? `${describe(fault, where)} (exception)`);
    case 'timeout':
      await sleep(faultWaitMs(fault));
      throw new PeakError(timeoutCode, `${describe(fault, where)}: timed out`, {
        details: { faultId: fault.id, injected: true },
      });
    case 'drop':
      return 'drop';
  }
}
