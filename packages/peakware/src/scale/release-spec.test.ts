import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileCondition } from '../rpc/condition-expression.js';
import {
  checkReleaseRequest,
  parseReleaseFile,
  type ReleaseRequest,
  releaseCondition,
  releasePlanLabel,
  releaseStepLabel,
} from './release-spec.js';

const base = { app: 'shop', service: 'shop.inventory', version: 'v2', command: 'node v2.js' };

function refuses(r: Record<string, unknown>, message: RegExp): void {
  assert.throws(
    () => checkReleaseRequest({ ...base, ...r } as ReleaseRequest),
    (err: unknown) => {
      const e = err as { code?: string; message: string };
      return e.code === 'PEAK_SCALE_INVALID' && message.test(e.message);
    },
  );
}

describe('release rules', () => {
  it('takes a header rule as one step and a userHash rule with shares of users', () => {
    const header = checkReleaseRequest({ ...base, rule: { header: 'x-gray', value: '1' } });
    assert.deepEqual(header.steps, [100]);
    assert.deepEqual(header.rule, { header: 'x-gray', value: '1' });
    const hash = checkReleaseRequest({
      ...base,
      rule: { userHash: 'buyerId' },
      steps: [5, 20, 100],
    });
    assert.deepEqual(hash.steps, [5, 20, 100]);
    assert.equal(releasePlanLabel(hash), 'steps 5/20/100% of users by hash(buyerId) % 100');
    assert.equal(releaseStepLabel(hash, 1), '20% of users, hash(buyerId) % 100 < 20');
    assert.equal(releaseStepLabel(header, 0), 'the calls with x-gray = 1 (header rule)');
    assert.equal(releaseStepLabel(checkReleaseRequest(base), 0), '10% of calls by weight');
    assert.equal(checkReleaseRequest(base).rule, undefined);
  });

  it('refuses a bad rule naming the field', () => {
    refuses({ rule: { header: 'x gray', value: '1' } }, /release rule\.header: must be 1-64/);
    refuses({ rule: { header: 'x-gray', value: '' } }, /release rule\.value: must be a string/);
    refuses({ rule: { userHash: 'buyer-id' } }, /release rule\.userHash: must be the call's field/);
    refuses(
      { rule: { userHash: 'a', header: 'b' } },
      /release rule: must be .* not one with header,userHash/,
    );
    refuses({ rule: 'x-gray=1' }, /release rule: must be/);
    refuses(
      { rule: { header: 'x-gray', value: '1' }, steps: [10, 100] },
      /release steps: a header rule has one step/,
    );
    refuses(
      { rule: { userHash: 'buyerId' }, steps: [12.5, 100] },
      /steps\[0\]: must be a whole percentage/,
    );
    refuses(
      { rule: { userHash: 'buyerId' }, steps: [20, 50] },
      /steps\[1\]: the last step must be 100/,
    );
  });

  it('turns a step into a condition that picks the calls it names', () => {
    const header = compileCondition(releaseCondition({ header: 'x-gray', value: 'a"b\\c' }, 100));
    assert.equal(header({ tags: { 'x-gray': 'a"b\\c' }, baggage: {} }), true);
    assert.equal(header({ tags: {}, baggage: { 'x-gray': 'a"b\\c' } }), true);
    assert.equal(header({ tags: { 'x-gray': 'ab' }, baggage: {} }), false);
    const users = compileCondition(releaseCondition({ userHash: 'buyerId' }, 20));
    const hits = Array.from({ length: 2000 }, (_, i) => users({ buyerId: `b${i}` })).filter(
      Boolean,
    );
    assert.ok(hits.length > 300 && hits.length < 500, `${hits.length} of 2000 users at 20 %`);
    assert.equal(users({}), false);
  });

  it('reads a release file in YAML or JSON, refusing an unknown field by name', () => {
    const yaml = parseReleaseFile(
      [
        'service: shop.inventory',
        'version: v2',
        'command: node dist/inventory-v2.js',
        'steps: [5, 20, 50, 100]',
        'rule:',
        '  userHash: buyerId',
        '',
      ].join('\n'),
    );
    assert.deepEqual(yaml, {
      service: 'shop.inventory',
      version: 'v2',
      command: 'node dist/inventory-v2.js',
      steps: [5, 20, 50, 100],
      rule: { userHash: 'buyerId' },
    });
    const header = parseReleaseFile('rule:\n  header: x-gray\n  value: 1\n');
    assert.deepEqual(header.rule, { header: 'x-gray', value: '1' }, 'a bare value is text');
    assert.deepEqual(parseReleaseFile('{"rule": {"userHash": "tags.user"}}').rule, {
      userHash: 'tags.user',
    });
    assert.throws(() => parseReleaseFile('stepps: [10, 100]\n'), {
      code: 'PEAK_SCALE_INVALID',
      message: /release stepps: is not a release field \(known: app, service/,
    });
    assert.throws(() => parseReleaseFile('- a\n'), /release file: must be a mapping/);
  });
});
