import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkReleaseRequest } from '../../scale/release-spec.js';
import type { ReleaseView } from '../../scale/server/index.js';
import { releaseLines, ruleOption } from './release-command.js';

function view(settings: ReturnType<typeof checkReleaseRequest>, step: number): ReleaseView {
  return {
    id: 7,
    app: 'shop',
    service: 'shop.inventory',
    version: 'v2',
    command: 'node v2.js',
    fromVersion: 'v1',
    settings,
    state: 'running',
    phase: 'step',
    step,
    weight: settings.steps[step] ?? 0,
    stepStartedAt: '2026-12-05T18:00:00.000Z',
    baseline: null,
    outcome: null,
    author: 'test',
    createdAt: '2026-12-05T18:00:00.000Z',
    updatedAt: '2026-12-05T18:00:00.000Z',
    events: [],
  };
}

const base = { app: 'shop', service: 'shop.inventory', version: 'v2', command: 'node v2.js' };

describe('peak release', () => {
  it('takes --match header:NAME=VALUE and --user-hash KEY, one at a time', () => {
    assert.deepEqual(ruleOption('header:x-gray=1', undefined), { header: 'x-gray', value: '1' });
    assert.deepEqual(ruleOption(undefined, 'buyerId'), { userHash: 'buyerId' });
    assert.equal(ruleOption(undefined, undefined), undefined);
    assert.throws(() => ruleOption('x-gray=1', undefined), /--match must be header:NAME=VALUE/);
    assert.throws(() => ruleOption('header:x=1', 'buyerId'), /--match or --user-hash, not both/);
  });

  it("show prints each step's rule", () => {
    const byHash = checkReleaseRequest({
      ...base,
      rule: { userHash: 'buyerId' },
      steps: [5, 20, 100],
    });
    const lines = releaseLines(view(byHash, 1));
    assert.match(lines[0]!, /RUNNING {2}step 2: 20% of users, hash\(buyerId\) % 100 < 20 to v2$/);
    assert.match(lines[1]!, /^steps 5\/20\/100% of users by hash\(buyerId\) % 100, hold/);
    assert.deepEqual(lines.slice(2, 5), [
      '  step 1: 5% of users, hash(buyerId) % 100 < 5 (rule tag release-7)',
      '  step 2: 20% of users, hash(buyerId) % 100 < 20 (rule tag release-7)',
      '  step 3: 100% of users, hash(buyerId) % 100 < 100 (rule tag release-7)',
    ]);
    const header = releaseLines(
      view(checkReleaseRequest({ ...base, rule: { header: 'x-gray', value: '1' } }), 0),
    );
    assert.equal(
      header[2],
      '  step 1: the calls with x-gray = 1 (header rule) (rule tag release-7)',
    );
    const weights = releaseLines(view(checkReleaseRequest(base), 0));
    assert.match(weights[0]!, /10% of calls to v2$/);
    assert.equal(weights[2], '  step 1: 10% of calls by weight');
  });
});
