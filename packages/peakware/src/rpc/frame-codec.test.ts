import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { ErrorCodes, isPeakError, type PeakError } from '../core/errors.js';
import { encodeFrame, type Frame, FrameDecoder } from './frame-codec.js';

function decodeAll(decoder: FrameDecoder, chunks: Buffer[]) {
  const frames: Frame[] = [];
  const bad: PeakError[] = [];
  for (const c of chunks)
    decoder.push(
      c,
      (f) => frames.push(f),
      (e) => bad.push(e),
    );
  return { frames, bad };
}

describe('frame codec', () => {
  const request: Frame = {
    type: 1,
    id: 7,
    service: 'shop.inventory:1.0.0',
    method: 'deduct',
    headers: { 'peak-timeout': '100' },
    args: { sku: 'a', qty: 2, nested: [1, 'x', null] },
  };

  it('round-trips every frame type, split at every byte boundary', () => {
    const frames: Frame[] = [
      request,
      { type: 2, id: 7, result: { ok: true } },
      { type: 3, id: 8, error: { code: 'PEAK_RPC_REMOTE', message: 'x', details: { a: 1 } } },
      { type: 4, id: 1 },
      { type: 5, id: 1 },
      { type: 6, reason: 'draining' },
    ];
    const bytes = Buffer.concat(frames.map((f) => encodeFrame(f)));
    for (let cut = 0; cut <= bytes.length; cut++) {
      const { frames: out, bad } = decodeAll(new FrameDecoder(), [
        bytes.subarray(0, cut),
        bytes.subarray(cut),
      ]);
      assert.equal(bad.length, 0);
      assert.deepEqual(out, frames);
    }
  });

  it('decodes byte by byte without losing or duplicating frames', () => {
    const bytes = Buffer.concat([
      encodeFrame(request),
      encodeFrame({ type: 2, id: 9, result: 'x'.repeat(5000) }),
    ]);
    const chunks = [...bytes].map((b) => Buffer.from([b]));
    const { frames } = decodeAll(new FrameDecoder(), chunks);
    assert.equal(frames.length, 2);
  });

  it('refuses an oversized frame at the sender and at the receiver', () => {
    assert.throws(
      () => encodeFrame({ type: 2, id: 1, result: 'x'.repeat(2000) }, 1000),
      (err) =>
        isPeakError(err, ErrorCodes.RPC_FRAME_TOO_LARGE) &&
        /over the limit of 1000/.test(err.message),
    );
    const big = encodeFrame({ type: 2, id: 1, result: 'x'.repeat(2000) });
    assert.throws(
      () =>
        new FrameDecoder(1000).push(
          big.subarray(0, 4),
          () => undefined,
          () => undefined,
        ),
      (err) => isPeakError(err, ErrorCodes.RPC_FRAME_TOO_LARGE),
    );
  });

  it('reports a malformed body per frame, with its id when known, and keeps going', () => {
    const body = Buffer.from([0x93, 0x01, 0x05, 0xc0]); // [1, 5, nil]: a request without names
    const framed = Buffer.concat([
      Buffer.from([0, 0, 0, body.length]),
      body,
      encodeFrame({ type: 4, id: 3 }),
    ]);
    const { frames, bad } = decodeAll(new FrameDecoder(), [framed]);
    assert.equal(bad.length, 1);
    assert.equal(bad[0]!.code, ErrorCodes.RPC_PROTOCOL);
    assert.equal(bad[0]!.details.id, 5);
    assert.deepEqual(frames, [{ type: 4, id: 3 }]);
  });

  it('fuzz: random and mutated bytes never crash the decoder or hang', () => {
    const valid = encodeFrame(request);
    // 6 000 inputs: 3 000 random ones (each odd length from 1 to 299 bytes twenty times) and
    // 3 000 valid frames with 1-4 bytes changed; 20 000 took 8 s of the suite (60 s on a
    // loaded host) for the same checks.
    for (let i = 0; i < 6_000; i++) {
      const decoder = new FrameDecoder(64 * 1024);
      let input: Buffer;
      if (i % 2 === 0) {
        input = randomBytes(1 + (i % 300));
      } else {
        input = Buffer.from(valid);
        for (let m = 0; m < 1 + (i % 4); m++) {
          input[4 + Math.floor(Math.random() * (input.length - 4))] = Math.floor(
            Math.random() * 256,
          );
        }
      }
      try {
        decodeAll(decoder, [input]);
      } catch (err) {
        assert.ok(
          isPeakError(err, ErrorCodes.RPC_FRAME_TOO_LARGE) ||
            isPeakError(err, ErrorCodes.RPC_PROTOCOL),
          `only typed stream errors escape, got ${String(err)}`,
        );
      }
    }
  });
});
