import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { signMessage, verifyMessage } from './message-signature.js';

describe('message signatures', () => {
  const m = {
    topic: 'orders',
    body: Buffer.from('pay 10').toString('base64'),
    tag: 't',
    keys: ['k'],
    properties: { b: '2', a: '1' },
  };

  it('verifies what was signed, whatever the property order', () => {
    const sig = signMessage('secret', m);
    assert.ok(verifyMessage('secret', { ...m, properties: { a: '1', b: '2' } }, sig));
  });

  it('refuses a changed body, tag, key, property, topic or secret, and malformed signatures', () => {
    const sig = signMessage('secret', m);
    assert.ok(
      !verifyMessage('secret', { ...m, body: Buffer.from('pay 1000').toString('base64') }, sig),
    );
    assert.ok(!verifyMessage('secret', { ...m, tag: 'u' }, sig));
    assert.ok(!verifyMessage('secret', { ...m, keys: ['k2'] }, sig));
    assert.ok(!verifyMessage('secret', { ...m, properties: { a: '1', b: '3' } }, sig));
    assert.ok(!verifyMessage('secret', { ...m, topic: 'other' }, sig));
    assert.ok(!verifyMessage('other-secret', m, sig));
    assert.ok(!verifyMessage('secret', m, undefined));
    assert.ok(!verifyMessage('secret', m, 'zz'));
  });
});
