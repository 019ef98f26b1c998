/** Small parsers for option values, each failing with a UsageError naming the option. */
import { UsageError } from '../core/errors.js';

/** An integer option in 0..max (a port by default). */
export function parsePort(value: unknown, option: string, max = 65535): number {
  const text = String(value);
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isInteger(n) || n < 0 || n > max) {
    throw new UsageError(`${option} must be an integer from 0 to ${max}, got '${text}'`, {
      details: { input: option },
    });
  }
  return n;
}
