/**
 * Test support: the one way a test waits for a real system (a server, a socket, a process)
 * to reach a state. It polls until the condition holds and fails, naming what it waited
 * for, when the deadline passes first. The deadline is a generous bound for a loaded
 * machine, not a claim about speed: no test asserts how long something took.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

/** The first poll comes after this long; the gap grows to {@link MAX_POLL_MS}. */
const FIRST_POLL_MS = 10;
const MAX_POLL_MS = 100;

/**
 * Polls `check` until it returns true, or fails with "timed out after N ms waiting for
 * <what>" once `timeoutMs` has passed. `what` may be a function, called at the failure, to
 * describe the state the system was left in. An error thrown by `check` fails at once.
 */
export async function waitFor(
  what: string | (() => string),
  check: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let gap = FIRST_POLL_MS;
  for (;;) {
    if (await check()) return;
    if (Date.now() >= deadline) {
      const described = typeof what === 'function' ? what() : what;
      assert.fail(`timed out after ${timeoutMs} ms waiting for ${described}`);
    }
    await sleep(gap);
    gap = Math.min(MAX_POLL_MS, Math.ceil(gap * 1.5));
  }
}
