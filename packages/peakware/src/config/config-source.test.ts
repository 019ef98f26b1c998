import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Guard } from '../guard/guard.js';
import { ConfigRuleSource } from './config-rule-source.js';
import { InMemoryConfigSource } from './config-source.js';

describe('InMemoryConfigSource', () => {
  it('versions each set, tells the item watchers and the * watchers, and stops on unsubscribe', () => {
    const source = new InMemoryConfigSource();
    const seen: string[] = [];
    const stop = source.watch('db/pool', (e, prev) =>
      seen.push(`${e.value}@${e.version}<-${prev?.value}`),
    );
    source.watch('*', (e) => seen.push(`*${e.key}`));
    source.set('db/pool', '{"max":4}');
    source.set('db/pool', '{"max":8}');
    stop();
    source.set('db/pool', '{"max":16}');
    source.set('flag', 'on', 'text');
    assert.deepEqual(seen, [
      '{"max":4}@1<-undefined',
      '*pool',
      '{"max":8}@2<-{"max":4}',
      '*pool',
      '*pool',
      '*flag',
    ]);
    assert.equal(source.entry('db/pool')?.version, 3);
    assert.equal(source.entry('flag')?.group, 'default');
    assert.equal(source.entries().length, 2);
  });

  it('drives guard rules through ConfigRuleSource without a control plane', async () => {
    const source = new InMemoryConfigSource();
    const guard = new Guard();
    guard.useRuleSource(new ConfigRuleSource(source));
    source.set('governance/guard-rules', JSON.stringify({ flow: [{ resource: 'r', count: 1 }] }));
    await guard.run('r', () => 'ok');
    await assert.rejects(
      guard.run('r', () => 'ok'),
      { code: 'PEAK_GUARD_BLOCKED' },
    );
  });
});
