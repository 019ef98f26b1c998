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

describe('coarse clock', () => {
  it('reads the wall clock at low rates and starts its ticker only under a high read rate, parking it again when reads stop', async () => {
    for (let i = 0; i < 50; i++) {
      assert.ok(Math.abs(coarseNow() - Date.now()) <= 2);
      await sleep(1);
    }
    assert.equal(
      coarseClockTicking(),
      false,
      'a few reads a millisecond must not start the ticker',
    );

    for (let i = 0; i < 40 && !coarseClockTicking(); i++) readHard(50);
    assert.equal(
      coarseClockTicking(),
      true,
      'the ticker did not start under millions of reads a second',
    );
    readHard(20);
    assert.ok(
      Math.abs(coarseNow() - Date.now()) <= 50,
      'the ticker time is far from the wall clock',
    );

    for (let i = 0; i < 100 && coarseClockTicking(); i++) await sleep(20);
    assert.equal(coarseClockTicking(), false, 'the ticker did not park once reads stopped');
    assert.ok(Math.abs(coarseNow() - Date.now()) <= 2);
  });
});
