import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { coarseClockTicking, coarseNow } from './coarse-clock.js';

/** Reads the clock in a tight loop (millions a second) for `ms`, checking that it never goes back. */
function readHard(ms: number): void {
  const end = Date.now() + ms;
  let prev = coarseNow();
  while (Date.now() < end) {
    const now = coarseNow();
    assert.ok(now >= prev, `the clock went back from ${prev} to ${now}`);
    prev = now;
  }
}

/**
 * Asserts that a read is the wall clock itself: between a Date.now() before and one after.
 * (A bound such as "within 2 ms of Date.now()" fails whenever a loaded host preempts the
 * test between the two reads.)
 */
function assertWallClock(what: string): void {
  const before = Date.now();
  const read = coarseNow();
  const after = Date.now();
  assert.ok(before <= read && read <= after, `${what}: ${read} is not in [${before}, ${after}]`);
}

describe('coarse clock', () => {
  it('reads the wall clock at low rates and starts its ticker only under a high read rate, parking it again when reads stop', async () => {
    for (let i = 0; i < 50; i++) {
      assertWallClock('a read at a low rate');
      await sleep(1);
    }
    assert.equal(
      coarseClockTicking(),
      false,
      'a few reads a millisecond must not start the ticker',
    );

    // Bounded: under load a 50 ms burst may be cut short by the scheduler, so try up to 10 s.
    for (let i = 0; i < 200 && !coarseClockTicking(); i++) readHard(50);
    assert.equal(
      coarseClockTicking(),
      true,
      'the ticker did not start under millions of reads a second',
    );
    // The ticker's time never runs ahead of the wall clock and keeps moving: it passes a
    // wall-clock mark taken now (no bound on how soon: the ticker thread may wait for a core).
    const mark = Date.now();
    let ticked = coarseNow();
    assert.ok(ticked <= Date.now(), 'the ticker time is ahead of the wall clock');
    for (let i = 0; i < 500 && ticked <= mark; i++) {
      readHard(20);
      ticked = coarseNow();
    }
    assert.ok(ticked > mark, `the ticker time stayed at ${ticked}, not past ${mark}`);
    assert.ok(ticked <= Date.now(), 'the ticker time is ahead of the wall clock');

    for (let i = 0; i < 500 && coarseClockTicking(); i++) await sleep(20);
    assert.equal(coarseClockTicking(), false, 'the ticker did not park once reads stopped');
    assertWallClock('a read once the ticker parked');
  });
});
