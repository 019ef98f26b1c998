import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isPeakError } from '../core/errors.js';
import { decryptBody, encryptBody } from './body-cipher.js';

describe('AES-GCM body encryption', () => {
  const k1 = Buffer.alloc(32, 7);
  const k2 = Buffer.alloc(32, 9);

  it('round-trips and names the key; old keys still decrypt after rotation', () => {
    const a = encryptBody({ keys: { k1 }, current: 'k1' }, Buffer.from('secret order'));
    assert.equal(a.keyId, 'k1');
    assert.ok(!a.body.includes(Buffer.from('secret order')));
    const ring = { keys: { k1, k2 }, current: 'k2' };
    assert.equal(decryptBody(ring, 'k1', a.body).toString(), 'secret order');
    assert.equal(encryptBody(ring, Buffer.from('x')).keyId, 'k2');
  });

  it('fails loudly on a changed byte, a wrong or unknown key, a short body', () => {
    const a = encryptBody({ keys: { k1 }, current: 'k1' }, Buffer.from('secret order'));
    const changed = Buffer.from(a.body);
    changed[14] = (changed[14] ?? 0) ^ 1;
    const fails = (fn: () => unknown) =>
      assert.throws(fn, (e) => isPeakError(e, 'PEAK_MQ_DECRYPT_FAILED'));
    fails(() => decryptBody({ keys: { k1 }, current: 'k1' }, 'k1', changed));
    fails(() => decryptBody({ keys: { k1: k2 }, current: 'k1' }, 'k1', a.body));
    fails(() => decryptBody({ keys: { k2 }, current: 'k2' }, 'k1', a.body));
    fails(() => decryptBody({ keys: { k1 }, current: 'k1' }, 'k1', Buffer.alloc(5)));
  });
});
