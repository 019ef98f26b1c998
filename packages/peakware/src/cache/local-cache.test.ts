import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FrequencySketch, hashKey } from './frequency-sketch.js';
import { LocalCache } from './local-cache.js';

function fakeClock(start = 1_000_000) {
  const clock = { now: start, fn: () => clock.now };
  return clock;
}

describe('frequency sketch', () => {
  it('estimates counts, never under, capped at 15', () => {
    const s = new FrequencySketch(1024);
    const h = hashKey('hot');
    for (let i = 0; i < 9; i++) s.increment(h);
    assert.ok(s.frequency(h) >= 9);
    for (let i = 0; i < 20; i++) s.increment(h);
    assert.equal(s.frequency(h), 15);
    assert.equal(s.frequency(hashKey('never-seen')) <= 1, true);
  });

  it('halves every counter after 10 × width additions, so old popularity fades', () => {
    const s = new FrequencySketch(16); // width 16: reset after 160 additions
    const old = hashKey('yesterday');
    for (let i = 0; i < 15; i++) s.increment(old);
    for (let i = 0; i < 200; i++) s.increment(hashKey(`k${i}`));
    assert.ok(s.frequency(old) < 15, `still ${s.frequency(old)}`);
  });
});

describe('local cache (W-TinyLFU)', () => {
  it('bounds entries and bytes', () => {
    const c = fakeClock();
    const l1 = new LocalCache<string>({ maxEntries: 100, maxBytes: 1000, now: c.fn });
    for (let i = 0; i < 500; i++) l1.set(`k${i}`, 'v', c.now + 60_000, 5);
    assert.ok(l1.size <= 100, `size ${l1.size}`);
    for (let i = 0; i < 50; i++) l1.set(`big${i}`, 'v', c.now + 60_000, 100);
    assert.ok(l1.stats().bytes <= 1000, `bytes ${l1.stats().bytes}`);
    l1.set('huge', 'v', c.now + 60_000, 5000);
    assert.equal(l1.get('huge'), undefined, 'a value over maxBytes is not kept');
  });

  it('expires entries at their expiresAt', () => {
    const c = fakeClock();
    const l1 = new LocalCache<string>({ now: c.fn });
    l1.set('a', 'x', c.now + 100);
    assert.equal(l1.get('a'), 'x');
    c.now += 100;
    assert.equal(l1.get('a'), undefined);
    assert.equal(l1.size, 0);
  });

  it('keeps popular keys through a scan that would flush an LRU', () => {
    const c = fakeClock();
    const l1 = new LocalCache<number>({ maxEntries: 200, now: c.fn });
    const hot = Array.from({ length: 100 }, (_, i) => `hot${i}`);
    for (let round = 0; round < 5; round++) {
      for (const k of hot) if (l1.get(k) === undefined) l1.set(k, 1, c.now + 1e9);
    }
    // A scan of 10 000 one-off keys, each read once (a miss) and stored.
    for (let i = 0; i < 10_000; i++) {
      const k = `scan${i}`;
      if (l1.get(k) === undefined) l1.set(k, 1, c.now + 1e9);
    }
    const kept = hot.filter((k) => l1.peek(k) !== undefined).length;
    assert.ok(kept >= 95, `only ${kept} of 100 popular keys survived the scan`);
    assert.ok(l1.stats().rejections > 9000);
  });

  it('replaces values in place and deletes', () => {
    const c = fakeClock();
    const l1 = new LocalCache<string>({ now: c.fn });
    l1.set('a', 'x', c.now + 1000, 10);
    l1.set('a', 'y', c.now + 1000, 20);
    assert.equal(l1.get('a'), 'y');
    assert.equal(l1.stats().bytes, 20);
    assert.equal(l1.delete('a'), true);
    assert.equal(l1.delete('a'), false);
    assert.equal(l1.stats().bytes, 0);
  });

  it('grows its slots past the first 1 024 and reuses freed ones', () => {
    const c = fakeClock();
    const l1 = new LocalCache<number>({ maxEntries: 5000, now: c.fn });
    for (let i = 0; i < 3000; i++) l1.set(`k${i}`, i, c.now + 1000);
    assert.equal(l1.size, 3000);
    for (let i = 0; i < 3000; i++) assert.equal(l1.get(`k${i}`), i);
    for (let i = 0; i < 3000; i += 2) l1.delete(`k${i}`);
    for (let i = 0; i < 1500; i++) l1.set(`n${i}`, -i, c.now + 1000);
    assert.equal(l1.size, 3000);
    for (let i = 1; i < 3000; i += 2) assert.equal(l1.peek(`k${i}`), i);
    for (let i = 0; i < 1500; i++) assert.equal(l1.peek(`n${i}`), -i);
    assert.deepEqual([...l1.keys()].length, 3000);
    l1.clear();
    assert.equal(l1.size, 0);
    l1.set('again', 1, c.now + 1000);
    assert.equal(l1.get('again'), 1);
    assert.deepEqual([...l1.keys()], ['again']);
  });
});
