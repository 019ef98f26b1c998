/**
 * One link of the guard's slot chain (Sentinel's ProcessorSlot). Each rule kind is a slot:
 * on entry it may refuse the call (throw a BlockError) or ask it to wait (raise
 * `entry.waitMs`); on exit it sees how the call ended. The chain runs authority → system →
 * param → flow → degrade; statistics wrap the chain in the guard itself.
 */
import type { Entry } from './entry.js';

/** A rule kind's checker in the chain. */
export interface ProcessorSlot {
  /** Checks a new call; throws a BlockError to refuse it, or raises `entry.waitMs`. */
  entry(entry: Entry, now: number): void;
  /** Sees a finished call (only calls that passed every slot exit). */
  exit(entry: Entry, rtMs: number, error: unknown, now: number): void;
}
