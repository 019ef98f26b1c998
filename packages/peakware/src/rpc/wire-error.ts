/**
 * How a provider's failure travels back: a PeakError keeps its code, message and details;
 * anything else becomes PEAK_RPC_REMOTE with the thrown message. The TCP path sends it as an
 * error frame, the HTTP/JSON path as the `error` body.
 */
import { ErrorCodes, isPeakError } from '../core/errors.js';
import type { WireError } from './frame-codec.js';

/** Turns anything thrown into the error frame sent to the caller. */
export function toWireError(err: unknown): WireError {
  if (isPeakError(err)) return { code: err.code, message: err.message, details: err.details };
  const message = err instanceof Error ? err.message : String(err);
  return { code: ErrorCodes.RPC_REMOTE, message: `the method failed: ${message}`, details: {} };
}
