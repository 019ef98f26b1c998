import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { GatewayRouteSpec } from './gateway-objects.js';
import { isMatch, RouteTable } from './route-table.js';

const route = (
  name: string,
  method: string,
  path: string,
  host?: string,
): { spec: GatewayRouteSpec; data: string } => ({
  spec: {
    name,
    method: method as GatewayRouteSpec['method'],
    path,
    ...(host === undefined ? {} : { host }),
    target: { kind: 'mq', topic: 't' },
  },
  data: name,
});

function hit(
  t: RouteTable<string>,
  method: string,
  host: string,
  path: string,
): [string, Record<string, string>] | string[] {
  const m = t.match(method, host, path);
  return isMatch(m) ? [m.route.data, m.params] : m.allowed;
}

describe('RouteTable', () => {
  it('prefers static segments, then parameters, then a wildcard, and backtracks', () => {
    const t = new RouteTable<string>();
    t.put(route('static', 'GET', '/orders/latest'));
    t.put(route('param', 'GET', '/orders/:id'));
    t.put(route('deep', 'GET', '/orders/:id/items/:item'));
    t.put(route('rest', 'GET', '/orders/*tail'));
    t.put(route('root', 'GET', '/'));
    assert.deepEqual(hit(t, 'GET', 'x', '/orders/latest'), ['static', {}]);
    assert.deepEqual(hit(t, 'GET', 'x', '/orders/7'), ['param', { id: '7' }]);
    assert.deepEqual(hit(t, 'GET', 'x', '/orders/7/items/3'), ['deep', { id: '7', item: '3' }]);
    assert.deepEqual(hit(t, 'GET', 'x', '/orders/7/notes/3'), ['rest', { tail: '7/notes/3' }]);
    assert.deepEqual(hit(t, 'GET', 'x', '/'), ['root', {}]);
    assert.deepEqual(hit(t, 'GET', 'x', '/other'), []);
    assert.deepEqual(hit(t, 'POST', 'x', '/orders/7'), ['GET']);
  });

  it('matches the exact host, then the longest *.suffix, then any host', () => {
    const t = new RouteTable<string>();
    t.put(route('any', 'GET', '/a'));
    t.put(route('suffix', 'GET', '/a', '*.example.com'));
    t.put(route('exact', 'GET', '/a', 'api.example.com'));
    assert.deepEqual(hit(t, 'GET', 'api.example.com:8080', '/a'), ['exact', {}]);
    assert.deepEqual(hit(t, 'GET', 'eu.example.com', '/a'), ['suffix', {}]);
    assert.deepEqual(hit(t, 'GET', 'example.org', '/a'), ['any', {}]);
  });

  it('changes one route at a time: replace, move, delete, refuse a conflict without changing anything', () => {
    const t = new RouteTable<string>();
    t.put(route('a', 'GET', '/x/:id'));
    t.put(route('b', '*', '/y'));
    assert.throws(() => t.put(route('c', 'GET', '/x/:other')), /conflicts with route 'a'/);
    assert.deepEqual(hit(t, 'GET', 'h', '/x/1'), ['a', { id: '1' }]);
    t.put(route('a', 'POST', '/z'));
    assert.deepEqual(hit(t, 'GET', 'h', '/x/1'), []);
    assert.deepEqual(hit(t, 'POST', 'h', '/z'), ['a', {}]);
    assert.deepEqual(hit(t, 'DELETE', 'h', '/y'), ['b', {}]);
    assert.equal(t.delete('b'), true);
    assert.equal(t.delete('b'), false);
    assert.deepEqual(hit(t, 'DELETE', 'h', '/y'), []);
    assert.equal(t.size, 1);
  });

  it('holds 10 000 routes and finds each', () => {
    const t = new RouteTable<string>();
    for (let i = 0; i < 10_000; i++)
      t.put(route(`r${i}`, 'GET', `/svc${i % 100}/v${i % 7}/item${i}/:id`));
    assert.equal(t.size, 10_000);
    for (const i of [0, 1, 4999, 9999])
      assert.deepEqual(hit(t, 'GET', 'h', `/svc${i % 100}/v${i % 7}/item${i}/42`), [
        `r${i}`,
        { id: '42' },
      ]);
    t.delete('r4999');
    assert.deepEqual(hit(t, 'GET', 'h', '/svc99/v1/item4999/42'), []);
  });
});
