import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isPeakError } from './errors.js';
import { SlidingWindow } from './sliding-window.js';

function fakeClock(start = 1_000_000) {
  const clock = { now: start, fn: () => clock.now };
  return clock;
}

describe('sliding window', () => {
  it('counts within the window', () => {
    const c = fakeClock();
    const w = new SlidingWindow({ intervalMs: 1000, buckets: 2, clock: c.fn });
    w.addPass(3);
    w.addBlock();
    w.addComplete(10);
    w.addComplete(30, true);
    assert.equal(w.pass(), 3);
    assert.equal(w.block(), 1);
    assert.equal(w.success(), 1);
    assert.equal(w.error(), 1);
    assert.equal(w.completed(), 2);
    assert.equal(w.rtAvg(), 20);
    assert.equal(w.rtMin(), 10);
    assert.equal(w.rate('pass'), 3);
  });

  it('slides: old buckets drop out, their slots are reused clean', () => {
    const c = fakeClock(1_000_000); // bucket start 1_000_000
    const w = new SlidingWindow({ intervalMs: 1000, buckets: 2, clock: c.fn });
    w.addPass(5);
    c.now += 500; // second bucket
    w.addPass(7);
    assert.equal(w.pass(), 12);
    c.now += 500; // first slot reused: the 5 slide out
    assert.equal(w.pass(), 7);
    w.addPass(1);
    assert.equal(w.pass(), 8);
    c.now += 5000; // long idle: everything expired
    assert.equal(w.pass(), 0);
    assert.ok(Number.isNaN(w.rtAvg()));
    assert.ok(Number.isNaN(w.rtMin()));
  });

  it('gives percentiles from the live buckets only', () => {
    const c = fakeClock();
    const w = new SlidingWindow({ intervalMs: 1000, buckets: 10, clock: c.fn });
    for (let i = 0; i < 100; i++) w.addComplete(1000); // slow, will expire
    c.now += 1000;
    for (let i = 1; i <= 100; i++) w.addComplete(i);
    const p50 = w.percentile(0.5);
    const p99 = w.percentile(0.99);
    assert.ok(Math.abs(p50 - 50) < 4, `p50 ${p50}`);
    assert.ok(Math.abs(p99 - 99) < 7, `p99 ${p99}`);
    const off = new SlidingWindow({ histogram: false, clock: c.fn });
    off.addComplete(5);
    assert.ok(Number.isNaN(off.percentile(0.5)));
  });

  it('reports the largest single bucket', () => {
    const c = fakeClock();
    const w = new SlidingWindow({ intervalMs: 3000, buckets: 3, clock: c.fn });
    w.addComplete(1);
    c.now += 1000;
    for (let i = 0; i < 4; i++) w.addComplete(1);
    c.now += 1000;
    w.addComplete(1);
    assert.equal(w.maxBucket('success'), 4);
  });

  it('snapshots complete buckets in order, and the previous bucket', () => {
    const c = fakeClock(2_000_000);
    const w = new SlidingWindow({ intervalMs: 3000, buckets: 3, clock: c.fn });
    w.addPass(1);
    c.now += 1000;
    w.addPass(2);
    c.now += 1000;
    w.addPass(3);
    const all = w.snapshots();
    assert.deepEqual(
      all.map((b) => [b.start, b.pass]),
      [
        [2_000_000, 1],
        [2_001_000, 2],
        [2_002_000, 3],
      ],
    );
    assert.deepEqual(
      w.snapshots(true).map((b) => b.pass),
      [1, 2],
    );
    assert.equal(w.previous()?.pass, 2);
    assert.ok(Number.isNaN(all[0]!.rtMin));
  });

  it('keeps counting when the clock steps back', () => {
    const c = fakeClock(5_000_000);
    const w = new SlidingWindow({ intervalMs: 1000, buckets: 2, clock: c.fn });
    w.addPass();
    c.now -= 600; // an older bucket than the slot holds
    w.addPass();
    c.now += 600;
    assert.equal(w.pass(), 2);
  });

  it('refuses inconsistent options', () => {
    for (const options of [{ buckets: 0 }, { buckets: 3, intervalMs: 1000 }, { intervalMs: -1 }]) {
      assert.throws(
        () => new SlidingWindow(options),
        (err) => isPeakError(err, 'PEAK_INVALID_ARGUMENT'),
      );
    }
  });

  it('counts accurately with the real clock', async () => {
    const w = new SlidingWindow({ intervalMs: 1000, buckets: 10 });
    for (let i = 0; i < 500; i++) w.addPass();
    assert.equal(w.pass(), 500);
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal(w.pass(), 0);
  });
});
