import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { seededRandom } from '../../test/support/seeded-random.js';
import { toYaml } from './yaml-output.js';

const TRICKY = [
  '',
  ' ',
  'plain text',
  'true',
  'False',
  'yes',
  'No',
  'on',
  'null',
  '~',
  '12',
  '-3.5e7',
  '0x1F',
  '0o17',
  '1_000',
  '.5',
  '.inf',
  '2026-12-07',
  '2026-12-07T18:00:00Z',
  '12:30',
  '1.2.3',
  'a: b',
  'a #b',
  'trailing ',
  ' leading',
  'end:',
  '- item',
  '-',
  '-x',
  '*alias',
  '&anchor',
  '!tag',
  '@at',
  '%percent',
  '`tick',
  '[x]',
  '{y}',
  '|',
  '>',
  "'quoted'",
  '"dq"',
  'line\nbreak',
  'tab\there',
  'unicode ✓ 中文',
  'back\\slash',
  '#hash',
  '?q',
  ',comma',
  'peak.orders/v1',
  'POST /api/buy',
  'a,b',
];

function value(random: () => number, depth: number): unknown {
  const r = random();
  if (depth > 3 || r < 0.45) {
    const s = random();
    if (s < 0.4) return TRICKY[Math.floor(random() * TRICKY.length)];
    if (s < 0.55) return Math.round((random() - 0.5) * 1e6) / (random() < 0.5 ? 1 : 100);
    if (s < 0.65) return random() < 0.5;
    if (s < 0.7) return null;
    if (s < 0.8) return [];
    if (s < 0.85) return {};
    return `w${Math.floor(random() * 1000)}`;
  }
  if (r < 0.7)
    return Array.from({ length: Math.floor(random() * 4) + 1 }, () => value(random, depth + 1));
  const o: Record<string, unknown> = {};
  for (let i = 0; i < Math.floor(random() * 4) + 1; i++) {
    const k = random() < 0.5 ? TRICKY[Math.floor(random() * TRICKY.length)]! : `key${i}`;
    o[k] = value(random, depth + 1);
  }
  return o;
}

describe('-o yaml', () => {
  it('writes what a YAML parser reads back as the same JSON value', () => {
    const random = seededRandom(49);
    for (let i = 0; i < 2000; i++) {
      const v = value(random, 0);
      const text = toYaml(v);
      assert.deepEqual(parse(text), v, `#${i}:\n${text}`);
    }
  });

  it('reads like kubectl: block mappings, sequences at their key, plain words unquoted', () => {
    assert.equal(
      toYaml({
        topics: [{ name: 'orders', queues: 8, tags: ['a', 'b'] }],
        empty: [],
        at: '2026-12-07',
      }),
      'topics:\n- name: orders\n  queues: 8\n  tags:\n  - a\n  - b\nempty: []\nat: "2026-12-07"\n',
    );
    assert.equal(toYaml([]), '[]\n');
    assert.equal(toYaml('yes'), '"yes"\n');
  });
});
