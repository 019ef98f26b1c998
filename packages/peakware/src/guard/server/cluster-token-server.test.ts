import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClusterTokenServer, type TokenRequest } from './cluster-token-server.js';

const req = (
  clientId: string,
  acquire: number,
  thresholdType: 'global' | 'avg-local' = 'global',
): TokenRequest => ({
  namespace: 'shop',
  flowId: 'buy',
  clientId,
  count: 10,
  thresholdType,
  acquire,
});

describe('ClusterTokenServer', () => {
  it('grants a global budget first come first served, per one-second window', () => {
    let now = 1_000_000_250;
    const server = new ClusterTokenServer(100, () => now);
    assert.equal(server.grant(req('a', 6)).granted, 6);
    const b = server.grant(req('b', 6));
    assert.equal(b.granted, 4);
    assert.equal(b.windowRemainingMs, 750);
    assert.equal(server.grant(req('a', 1)).granted, 0);
    now += 750;
    assert.equal(server.grant(req('a', 6)).granted, 6);
    assert.deepEqual(server.list(), [
      { namespace: 'shop', flowId: 'buy', second: 1_000_001_000, used: 6, clients: 2 },
    ]);
  });

  it('scales an avg-local budget with the instances seen in the last seconds', () => {
    let now = 2_000_000_000;
    const server = new ClusterTokenServer(100, () => now);
    assert.equal(server.grant(req('a', 30, 'avg-local')).threshold, 10);
    assert.equal(server.grant(req('b', 30, 'avg-local')).threshold, 20);
    now += 1000;
    const c = server.grant(req('c', 100, 'avg-local'));
    assert.equal(c.threshold, 30);
    assert.equal(c.granted, 30);
    now += 6000;
    assert.equal(server.grant(req('c', 1, 'avg-local')).threshold, 10);
  });

  it('keeps a bounded number of budgets', () => {
    const server = new ClusterTokenServer(3, () => 5_000_000_000);
    for (let i = 0; i < 10; i++) server.grant({ ...req('a', 1), flowId: `f${i}` });
    // The newest budget still works after evictions.
    assert.equal(server.grant({ ...req('a', 5), flowId: 'f9' }).granted, 5);
  });
});
