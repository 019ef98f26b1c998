import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_TRAFFIC_SERIES, TrafficCounters, trafficCountersOf } from './traffic-counters.js';

describe('mq traffic counters', () => {
  it('adds by event, topic and group, and keeps the label sets bounded', () => {
    const c = new TrafficCounters();
    c.add('produced', 'orders', null, 3);
    c.add('produced', 'orders', null, 2);
    c.add('acked', 'orders', 'points', 4);
    c.add('nacked', 'orders', 'points', 0);
    assert.deepEqual(c.snapshot(), [
      { event: 'produced', topic: 'orders', group: null, value: 5 },
      { event: 'acked', topic: 'orders', group: 'points', value: 4 },
    ]);
    for (let i = 0; i < MAX_TRAFFIC_SERIES + 50; i++) c.add('delivered', `t${i}`, 'g', 1);
    const all = c.snapshot();
    assert.equal(all.length, MAX_TRAFFIC_SERIES + 1);
    const other = all.find((s) => s.topic === '(other)');
    assert.deepEqual(other, { event: 'delivered', topic: '(other)', group: '(other)', value: 52 });
  });

  it('one set per pool: the broker and the metrics reader meet there', () => {
    const pool = {};
    trafficCountersOf(pool).add('produced', 'x', null, 1);
    assert.equal(trafficCountersOf(pool).snapshot()[0]?.value, 1);
    assert.equal(trafficCountersOf({}).snapshot().length, 0);
  });
});
