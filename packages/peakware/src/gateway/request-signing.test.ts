import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sha256Hex } from '../core/secrets.js';
import { canonicalQuery, canonicalRequest, signCanonical, signRequest } from './request-signing.js';

describe('request signing', () => {
  it('sorts and re-encodes the query', () => {
    assert.equal(canonicalQuery('b=2&a=z&a=y&c'), 'a=y&a=z&b=2&c=');
    assert.equal(canonicalQuery('q=a%20b&x=%2a'), 'q=a%20b&x=%2A');
    assert.equal(canonicalQuery(''), '');
  });

  it('signs what the gateway checks: method, path, query, signed headers, body digest, timestamp, nonce', () => {
    const body = '{"n":1}';
    const headers = { 'content-type': 'application/json', 'x-other': 'not signed' };
    const signed = signRequest({
      method: 'post',
      url: '/orders/7?b=2&a=1',
      body,
      headers,
      keyId: 'gk_k',
      secret: 's3cret',
      timestamp: 1_700_000_000_000,
      nonce: 'nonce-1234',
    });
    assert.equal(signed['x-peak-signed-headers'], 'content-type');
    const parts = {
      method: 'POST',
      path: '/orders/7',
      query: 'a=1&b=2',
      headers: { ...headers, 'x-other': 'changed' },
      signedHeaders: ['content-type'],
      bodySha256: sha256Hex(body),
      timestamp: '1700000000000',
      nonce: 'nonce-1234',
    };
    assert.equal(signCanonical('s3cret', parts), signed['x-peak-signature']);
    assert.equal(
      canonicalRequest(parts),
      `PEAK-HMAC-SHA256\nPOST\n/orders/7\na=1&b=2\ncontent-type:application/json\ncontent-type\n${sha256Hex(body)}\n1700000000000\nnonce-1234`,
    );
    assert.notEqual(
      signCanonical('s3cret', { ...parts, bodySha256: sha256Hex('{"n":2}') }),
      signed['x-peak-signature'],
    );
    assert.notEqual(
      signCanonical('s3cret', { ...parts, headers: { 'content-type': 'text/plain' } }),
      signed['x-peak-signature'],
    );
    assert.notEqual(signCanonical('other', parts), signed['x-peak-signature']);
  });
});
