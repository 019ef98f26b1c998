/**
 * guard: a circuit breaker around a failing dependency. Once half the calls in the window
 * fail, the breaker opens: calls are refused at once (`PEAK_GUARD_BLOCKED`, kind `degrade`)
 * and a fallback answers instead of waiting on a dead service. After the recovery time one
 * probe goes through; if it succeeds the breaker closes. No control plane needed.
 *
 *   node dist/guard/circuit-breaker.js
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type BlockError, Guard } from 'peakware/guard';
import { check } from '../env.js';

const guard = new Guard({
  rules: {
    degrade: [
      {
        resource: 'PaymentService.pay',
        strategy: 'error-ratio',
        threshold: 0.5, // open when at least half the calls fail ...
        minRequestAmount: 4, // ... out of at least 4 in the window
        statIntervalMs: 60_000, // counted over a minute
        recoveryTimeoutMs: 300, // then refuse everything for 300 ms before a probe
      },
    ],
  },
});
const transitions: string[] = [];
guard.on('breaker', (c) => transitions.push(`${c.from} -> ${c.to}`));

let paymentsUp = false;
let reachedPayments = 0;
const pay = () =>
  guard.run('PaymentService.pay', async () => {
    reachedPayments++;
    if (!paymentsUp) throw new Error('payment service unavailable');
    return 'paid';
  });
// What the caller shows while payments are down: a fallback instead of a hanging request.
guard.setHandlers<string>('PaymentService.pay', {
  onBlock: (err: BlockError) => `queued for later (${err.kind} ${err.code})`,
});

const outcomes: string[] = [];
for (let i = 0; i < 8; i++)
  outcomes.push(await pay().catch((err: Error) => `failed: ${err.message}`));
console.log(outcomes.map((o, i) => `  call ${i + 1}: ${o}`).join('\n'));
check(reachedPayments === 4, 'after 4 failures the breaker stops calling the dependency');
check(
  outcomes.slice(4).every((o) => o.startsWith('queued')),
  'the rest get the fallback',
);
check(guard.breakerStates('PaymentService.pay')[0] === 'open', 'the breaker is open');

// The dependency recovers; after the recovery time a probe gets through and closes it.
paymentsUp = true;
await sleep(400);
const probe = await pay();
console.log(`after ${400} ms: ${probe}; breaker ${guard.breakerStates('PaymentService.pay')[0]}`);
check(probe === 'paid', 'the probe reaches the recovered dependency');
console.log(`transitions: ${transitions.join(', ')}`);
check(
  transitions.join() === 'closed -> open,open -> half-open,half-open -> closed',
  'closed, open, half-open, closed',
);
guard.close();
console.log('ok');
