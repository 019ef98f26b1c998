import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ENCRYPTION_PROPERTY } from '../body-cipher.js';
import type { ReceivedMessage } from '../message-types.js';
import { encodeDelivery, toBase64Message } from './http-body-encoding.js';

function delivery(body: Buffer, properties: Record<string, string> = {}): ReceivedMessage {
  return {
    id: '1',
    topic: 't',
    queueId: 0,
    queueOffset: '0',
    tag: null,
    keys: [],
    group: null,
    properties,
    body: body.toString('base64'),
    bornAt: 0,
    storedAt: 0,
    reconsumeTimes: 0,
    receipt: 'r',
  };
}

describe('mq HTTP body encodings', () => {
  it('turns utf8 and json bodies into base64 and leaves base64 ones alone', () => {
    const sdk = { body: 'aGk=', tag: 'x' };
    assert.equal(toBase64Message(sdk, 0), sdk);
    assert.deepEqual(toBase64Message({ body: 'hé', encoding: 'utf8' }, 0), {
      body: Buffer.from('hé').toString('base64'),
    });
    assert.deepEqual(toBase64Message({ body: [1, null], encoding: 'json' }, 0), {
      body: Buffer.from('[1,null]').toString('base64'),
    });
    assert.throws(() => toBase64Message({ body: 1, encoding: 'utf8' }, 3), {
      message: "body field messages[3].body must be a string with encoding 'utf8', got number",
    });
  });

  it('answers in the encoding asked for only where the bytes are that; encrypted stays base64', () => {
    const json = delivery(Buffer.from('{"a":1}'));
    assert.equal(encodeDelivery(json, 'base64'), json);
    assert.deepEqual(encodeDelivery(json, 'json'), { ...json, body: { a: 1 }, encoding: 'json' });
    assert.deepEqual(encodeDelivery(json, 'utf8'), { ...json, body: '{"a":1}', encoding: 'utf8' });
    const text = delivery(Buffer.from('not json'));
    assert.equal(encodeDelivery(text, 'json').encoding, 'base64');
    const binary = delivery(Buffer.from([0xc3, 0x28]));
    assert.deepEqual(encodeDelivery(binary, 'utf8'), { ...binary, encoding: 'base64' });
    const sealed = delivery(Buffer.from('{"a":1}'), { [ENCRYPTION_PROPERTY]: 'k1' });
    assert.equal(encodeDelivery(sealed, 'json').encoding, 'base64');
  });
});
