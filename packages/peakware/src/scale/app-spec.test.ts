import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkAppSpec, splitCommand } from './app-spec.js';
import { parseYamlSubset } from './yaml-subset.js';

describe('app file', () => {
  it('reads the YAML subset an app file uses', () => {
    const v = parseYamlSubset(
      [
        '# the shop',
        'app: shop',
        'services:',
        '  - name: shop.order   # the order service',
        '    command: node dist/order.js --port 0',
        '    instances: 2',
        '    env:',
        "      NOTE: 'a # not a comment'",
        '      FLAG: true',
        '  - name: shop.points',
        '    command: "node points.js"',
        '    tags: [a, b]',
      ].join('\n'),
    );
    assert.deepEqual(v, {
      app: 'shop',
      services: [
        {
          name: 'shop.order',
          command: 'node dist/order.js --port 0',
          instances: 2,
          env: { NOTE: 'a # not a comment', FLAG: true },
        },
        { name: 'shop.points', command: 'node points.js', tags: ['a', 'b'] },
      ],
    });
  });

  it('refuses what it does not read, naming the line', () => {
    assert.throws(() => parseYamlSubset('a: 1\n  b: 2'), /line 2: unexpected indentation/);
    assert.throws(() => parseYamlSubset('a: &x 1'), /line 1: '&'/);
    assert.throws(() => parseYamlSubset('a: 1\na: 2'), /line 2: key 'a' appears twice/);
  });

  it('applies defaults and names the path of the first problem', () => {
    const spec = checkAppSpec(
      { app: 'shop', services: [{ name: 'shop.order', command: 'node o.js' }] },
      '/srv',
    );
    assert.deepEqual(spec.services[0], {
      name: 'shop.order',
      command: 'node o.js',
      instances: 1,
      version: 'v1',
      stopTimeoutMs: 10_000,
      env: {},
    });
    assert.equal(spec.cwd, '/srv');
    const bad = (raw: unknown, message: RegExp) =>
      assert.throws(() => checkAppSpec(raw, '/'), { code: 'PEAK_SCALE_INVALID', message });
    bad({ app: 'shop' }, /^services: must be a non-empty list/);
    bad(
      {
        app: 'shop',
        services: [
          { name: 'a', command: 'x' },
          { name: 'b', command: 'y', instances: -1 },
        ],
      },
      /^services\[1\]\.instances: must be an integer/,
    );
    bad(
      { app: 'shop', services: [{ name: 'a', command: 'x', replicas: 2 }] },
      /^services\[0\]\.replicas: is not a field/,
    );
    bad({ app: 'shop', services: [{ name: 'a', command: '' }] }, /^services\[0\]\.command/);
  });

  it('splits a command line with quotes and no shell', () => {
    assert.deepEqual(splitCommand(`node "my app.js" --x 'a b' ''`), [
      'node',
      'my app.js',
      '--x',
      'a b',
      '',
    ]);
    assert.deepEqual(splitCommand('node "unterminated'), []);
  });
});
