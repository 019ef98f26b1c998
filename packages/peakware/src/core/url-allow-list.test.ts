import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseHttpUrl, urlAllowed, urlPrefixes } from './url-allow-list.js';

const allowed = (url: string, ...prefixes: string[]) =>
  urlAllowed(parseHttpUrl(url) as URL, urlPrefixes(prefixes));

describe('URL allow-list', () => {
  it('allows a URL under a prefix at a path-segment boundary, on the same scheme, host and port', () => {
    assert.ok(allowed('http://pay.internal:8080/txn/debit', 'http://pay.internal:8080/txn/'));
    assert.ok(allowed('http://pay.internal:8080/txn/debit?x=1', 'http://pay.internal:8080/txn'));
    assert.ok(allowed('http://pay.internal:8080/txn', 'http://pay.internal:8080/txn'));
    assert.ok(allowed('https://a.example/anything', 'https://a.example'));
    assert.ok(
      allowed('http://a.example:80/x', 'http://a.example/'),
      'the default port is the same',
    );
  });

  it('refuses a sibling path, another host, port or scheme, and a host that only starts alike', () => {
    assert.ok(!allowed('http://pay.internal:8080/txn-admin', 'http://pay.internal:8080/txn'));
    assert.ok(!allowed('http://pay.internal:8081/txn/debit', 'http://pay.internal:8080/txn/'));
    assert.ok(!allowed('https://pay.internal:8080/txn/debit', 'http://pay.internal:8080/txn/'));
    assert.ok(!allowed('http://pay.internal.evil.example/txn/', 'http://pay.internal/txn/'));
    assert.ok(
      !allowed('http://pay.internal/txn/../admin', 'http://pay.internal/txn/'),
      'dot segments resolve first',
    );
    assert.ok(!allowed('http://a.example/x'), 'nothing listed: nothing allowed');
  });

  it('names what is wrong with a URL or a prefix', () => {
    assert.match(parseHttpUrl('not a url') as string, /is not a URL/);
    assert.match(parseHttpUrl('ftp://a.example/') as string, /not an http:\/\/ or https:\/\/ URL/);
    assert.match(parseHttpUrl('http://u:p@a.example/') as string, /carries credentials/);
    assert.throws(() => urlPrefixes(['http://a.example/x?y=1']), /has a query or fragment/);
    assert.throws(() => urlPrefixes(['gopher://a.example/']), /not an http:\/\/ or https:\/\/ URL/);
  });
});
