/**
 * guard: Sentinel-style flow control in one process. A QPS rule admits 5 calls a second to
 * a resource and blocks the rest with `PEAK_GUARD_BLOCKED` at once (no queueing); a
 * concurrency rule bounds calls in flight. No control plane needed.
 *
 *   node dist/guard/flow-rule.js
 */
import { Guard } from 'peakware/guard';
import { check } from '../env.js';

const guard = new Guard();
guard.loadRules({
  flow: [
    { resource: 'OrderService.create', count: 5 },
    { resource: 'Inventory.deduct', grade: 'concurrency', count: 2 },
  ],
});

let passed = 0;
let blocked = 0;
for (let i = 0; i < 20; i++) {
  try {
    await guard.run('OrderService.create', async () => 'created');
    passed++;
  } catch (err) {
    if ((err as { code?: string }).code !== 'PEAK_GUARD_BLOCKED') throw err;
    blocked++;
  }
}
console.log(`QPS rule (5/s): ${passed} passed, ${blocked} blocked of 20 sent at once`);
check(passed >= 5 && passed <= 10, 'about one second of budget passes');
check(blocked === 20 - passed, 'the rest is blocked');

// Concurrency: 2 slow calls hold both slots; the third is refused while they run.
const slow = () => new Promise((resolve) => setTimeout(resolve, 50));
const results = await Promise.allSettled([0, 1, 2].map(() => guard.run('Inventory.deduct', slow)));
const refused = results.filter((r) => r.status === 'rejected').length;
console.log(`concurrency rule (2): ${3 - refused} ran, ${refused} refused`);
check(refused === 1, 'one call over the concurrency limit is refused');
console.log('ok');
