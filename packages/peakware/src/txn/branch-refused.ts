/**
 * How a branch says no for good (out of stock, coupon taken): the coordinator does not
 * retry it and rolls the global transaction back at once. Any other error is taken as
 * passing (a timeout, a restart) and retried under the step's policy.
 */
import { ErrorCodes, PeakError } from '../core/errors.js';

/** Thrown by a branch handler that refuses its step for good (PEAK_TXN_BRANCH_FAILED). */
export class BranchRefusedError extends PeakError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super(ErrorCodes.TXN_BRANCH_FAILED, message, { details });
  }
}
