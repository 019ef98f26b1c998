import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hpaManifest } from './hpa-manifest.js';

describe('HPA manifest', () => {
  it('carries the bounds, the windows and a cpu target', () => {
    const y = hpaManifest(
      { metric: 'cpu', target: 60, min: 2, max: 8, step: 2, cooldownMs: 15_000 },
      { deployment: 'order', namespace: 'shop' },
    );
    for (const line of [
      'apiVersion: autoscaling/v2',
      '  namespace: shop',
      '    name: order',
      '  minReplicas: 2',
      '  maxReplicas: 8',
      '        name: cpu',
      '          averageUtilization: 60',
      '      stabilizationWindowSeconds: 300',
      '          value: 2',
      '          periodSeconds: 15',
    ])
      assert.ok(y.split('\n').includes(line), `missing '${line}' in\n${y}`);
  });

  it('maps rt-p99 to seconds and mq-backlog to an external metric', () => {
    const rt = hpaManifest(
      { metric: 'rt-p99', target: 250, max: 4, resource: 'shop.order.place' },
      { deployment: 'o' },
    );
    assert.match(rt, /name: peak_window_rt_p99_seconds/);
    assert.match(rt, /averageValue: "0.25"/);
    assert.match(rt, /resource: "shop.order.place"/);
    const mq = hpaManifest(
      { metric: 'mq-backlog', target: 100, max: 10, mq: { group: 'points', topic: 'orders' } },
      { deployment: 'points' },
    );
    assert.match(mq, /type: External/);
    assert.match(mq, /group: "points"\n {14}topic: "orders"/);
  });
});
