/**
 * The error a guard rule raises when it refuses a call. It is a PeakError with code
 * PEAK_GUARD_BLOCKED and says which rule kind refused it, so callers, the HTTP wrapper and
 * RPC filters can answer "blocked, retry later" instead of "failed".
 */
import { ErrorCodes, PeakError } from '../core/errors.js';
import type { RuleKind } from './rule-types.js';

/** A call refused by a guard rule; the work was not run. */
export class BlockError extends PeakError {
  /** Which rule kind refused the call. */
  readonly kind: RuleKind;
  /** The guarded resource. */
  readonly resource: string;
  /** The caller app the call came from ('' when unknown). */
  readonly origin: string;

  constructor(kind: RuleKind, resource: string, origin: string, reason: string, rule: unknown) {
    super(
      ErrorCodes.GUARD_BLOCKED,
      `guard: '${resource}' blocked by a ${kind} rule (${reason}); the call was not run: retry later, or raise the limit`,
      { details: { kind, resource, origin, reason, rule } },
    );
    this.kind = kind;
    this.resource = resource;
    this.origin = origin;
  }

  /**
   * Creates a block error without capturing a stack trace: under overload blocks are the
   * common path, and a stack costs more than the whole guarded call.
   */
  static create(
    kind: RuleKind,
    resource: string,
    origin: string,
    reason: string,
    rule: unknown,
  ): BlockError {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      return new BlockError(kind, resource, origin, reason, rule);
    } finally {
      Error.stackTraceLimit = limit;
    }
  }
}

/** True when `err` is a guard {@link BlockError}. */
export function isBlockError(err: unknown): err is BlockError {
  return err instanceof BlockError;
}
