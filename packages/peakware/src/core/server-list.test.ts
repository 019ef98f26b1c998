import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isPeakError } from './errors.js';
import { parseServers, ServerList } from './server-list.js';

const A = 'http://a:1';
const B = 'http://b:2';
const C = 'http://c:3';

describe('server list', () => {
  it('sticks to the node in use, moves on when it fails, and skips it for the cooldown', () => {
    let now = 1000;
    const list = new ServerList([A, B, C], { cooldownMs: 500, now: () => now });
    assert.equal(list.pick(), A);
    list.failed(A);
    assert.equal(list.current, B);
    assert.equal(list.pick(), B);
    list.succeeded(B);
    now += 10_000;
    assert.equal(list.pick(), B, 'sticks to the one that answers, even after the cooldown');
    list.failed(B);
    assert.equal(list.pick(), C);
    list.failed(C);
    now += 100;
    assert.equal(list.pick(), A, 'A failed longest ago and its cooldown is over');
  });

  it('when every node failed lately, tries the one that failed longest ago', () => {
    let now = 0;
    const list = new ServerList([A, B], { cooldownMs: 60_000, now: () => now });
    list.failed(B);
    now = 10;
    list.failed(A);
    assert.ok(list.isFailing(A) && list.isFailing(B));
    assert.equal(list.pick(), B);
  });

  it('skips the nodes a call already tried', () => {
    const list = new ServerList([A, B, C]);
    assert.equal(list.pick(new Set([A])), B);
    assert.equal(list.pick(new Set([A, B])), C);
    assert.equal(list.pick(new Set([A, B, C])), A);
  });

  it('normalises URLs and refuses bad ones with PEAK_USAGE', () => {
    assert.deepEqual(parseServers('http://127.0.0.1:7420/'), ['http://127.0.0.1:7420']);
    assert.deepEqual(parseServers([' http://h:1 ', 'https://proxy/peak/']), [
      'http://h:1',
      'https://proxy/peak',
    ]);
    assert.throws(
      () => parseServers([]),
      (e) => isPeakError(e, 'PEAK_USAGE'),
    );
    assert.throws(() => parseServers('nope'), /servers: not a URL/);
    assert.throws(() => parseServers('ftp://x', 'server'), /server: "ftp:\/\/x" is not an http/);
  });
});
