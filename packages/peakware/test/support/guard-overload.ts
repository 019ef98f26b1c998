/**
 * Test support: offers load to guards and counts what each admitted per second, in real
 * time (for guards that talk to a real token server) or on a fake clock (exact counts).
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { coarseNow } from '../../src/guard/coarse-clock.js';
import { BlockError, type Guard } from '../../src/guard/index.js';
import type { FakeClock } from './fake-clock.js';

/**
 * Offers `perSecond` calls of `resource` per second to each guard for `seconds`, starting
 * on a whole second, in 10 ms ticks; returns the admitted count per second per guard.
 * Seconds are counted by the guard's own clock (a ticker thread the OS may run late under
 * load), so a count is what the guard enforced for that second.
 */
export async function overload(
  guards: readonly Guard[],
  resource: string,
  perSecond: number,
  seconds: number,
): Promise<number[][]> {
  await sleep(1000 - (Date.now() % 1000) + 2);
  const start = Date.now() - (Date.now() % 1000);
  const admitted = guards.map(() => new Array<number>(seconds).fill(0));
  let owed = 0;
  for (;;) {
    const sec = Math.floor((coarseNow() - start) / 1000);
    if (sec >= seconds) break;
    owed += perSecond / 100;
    while (owed >= 1) {
      owed--;
      guards.forEach((g, i) => {
        try {
          g.entry(resource).exit();
          admitted[i]![sec]!++;
        } catch (err) {
          assert.ok(err instanceof BlockError);
        }
      });
    }
    await sleep(10);
  }
  return admitted;
}

/**
 * Offers `perSecond` calls of `resource` per second to a guard running on `clock` for
 * `seconds`, in 10 ms steps of the clock from where it stands (start it on a whole second);
 * returns the admitted count of each second. Every call is entered and exited at once.
 */
export function overloadOnClock(
  guard: Guard,
  clock: FakeClock,
  resource: string,
  perSecond: number,
  seconds: number,
): number[] {
  const admitted = new Array<number>(seconds).fill(0);
  for (let tick = 0; tick < seconds * 100; tick++) {
    const sec = Math.floor(tick / 100);
    for (let i = 0; i < perSecond / 100; i++) {
      try {
        guard.entry(resource).exit();
        admitted[sec]!++;
      } catch (err) {
        assert.ok(err instanceof BlockError, `not a BlockError: ${String(err)}`);
      }
    }
    clock.advance(10);
  }
  return admitted;
}
