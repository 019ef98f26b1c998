import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isPeakError } from './errors.js';
import { decodeId, IdGenerator, PEAK_EPOCH_MS, uuidV7 } from './id-generator.js';

describe('id generator', () => {
  it('makes strictly increasing unique ids', () => {
    const gen = new IdGenerator({ workerId: 7 });
    let last = -1n;
    const seen = new Set<bigint>();
    for (let i = 0; i < 50_000; i++) {
      const id = gen.next();
      assert.ok(id > last);
      last = id;
      seen.add(id);
    }
    assert.equal(seen.size, 50_000);
  });

  it('stamps time and worker, and decodes them', () => {
    const now = Date.UTC(2026, 10, 22, 12, 0, 0);
    const gen = new IdGenerator({ workerId: 1023, clock: () => now });
    const a = decodeId(gen.next());
    const b = decodeId(gen.nextString());
    assert.deepEqual(a, { timestamp: now, workerId: 1023, sequence: 0 });
    assert.deepEqual(b, { timestamp: now, workerId: 1023, sequence: 1 });
  });

  it('rolls into the next millisecond when the sequence is used up', () => {
    const now = PEAK_EPOCH_MS + 5000;
    const gen = new IdGenerator({ clock: () => now });
    let id = 0n;
    for (let i = 0; i < 4097; i++) id = gen.next();
    assert.deepEqual(decodeId(id), { timestamp: now + 1, workerId: 0, sequence: 0 });
  });

  it('never goes backwards when the clock does', () => {
    let now = PEAK_EPOCH_MS + 10_000;
    const gen = new IdGenerator({ clock: () => now });
    const before = gen.next();
    now -= 5000; // NTP step back
    const after = gen.next();
    assert.ok(after > before);
  });

  it('orders ids of different workers by time', () => {
    let now = PEAK_EPOCH_MS + 1;
    const a = new IdGenerator({ workerId: 900, clock: () => now });
    const b = new IdGenerator({ workerId: 1, clock: () => now });
    const first = a.next();
    now += 1;
    assert.ok(b.next() > first);
  });

  it('refuses bad worker ids and bad input', () => {
    for (const workerId of [-1, 1024, 1.5]) {
      assert.throws(
        () => new IdGenerator({ workerId }),
        (err) => isPeakError(err, 'PEAK_ID_GENERATOR'),
      );
    }
    assert.throws(
      () => decodeId('not-a-number'),
      (err) => isPeakError(err, 'PEAK_INVALID_ARGUMENT'),
    );
    assert.throws(
      () => decodeId(-1n),
      (err) => isPeakError(err, 'PEAK_INVALID_ARGUMENT'),
    );
  });
});

describe('uuidV7', () => {
  it('is an RFC 9562 version 7 UUID carrying its millisecond, ordered by it as text', () => {
    const at = Date.UTC(2026, 11, 6, 4, 30);
    const id = uuidV7(at);
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16), at);
    const later = [uuidV7(at + 1), uuidV7(at + 1000), uuidV7(at + 86_400_000)];
    assert.deepEqual([...later, id].sort(), [id, ...later]);
    const many = new Set(Array.from({ length: 10_000 }, () => uuidV7(at)));
    assert.equal(many.size, 10_000, 'random bits make ids of one millisecond unique');
  });
});
