/**
 * telemetry: per-second metrics of every call, pushed to the control plane. The guard
 * counts each resource per second (passed, blocked, succeeded, failed, RT); a MetricsPusher
 * sends those seconds in one batch a second, never blocking a call; `peak top` (and the
 * live API) sums them over instances. Here a 20/s flow rule meets 50 calls a second.
 *
 *   PEAK_SERVER=http://127.0.0.1:7420 node dist/telemetry/per-second-metrics.js
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Guard } from 'peakware/guard';
import { MetricsPusher } from 'peakware/telemetry';
import { check, server, until } from '../env.js';
import { peak } from '../peak-cli.js';

const service = `snippet-checkout-${process.pid}`;
const guard = new Guard({ rules: { flow: [{ resource: 'checkout.pay', count: 20 }] } });
const pusher = new MetricsPusher({ servers: server, service, instance: 'checkout-1' });
guard.on('metrics', (seconds) => pusher.record(seconds));

// 50 calls a second for 3 s; every 10th admitted call fails. Counted here too, to compare.
const local = { passed: 0, blocked: 0, failed: 0 };
const started = Date.now();
for (let tick = 0; tick < 30; tick++) {
  for (let i = 0; i < 5; i++) {
    await guard
      .run('checkout.pay', async () => {
        if (++local.passed % 10 === 0) throw new Error('card declined');
      })
      .catch((err: { code?: string }) => {
        if (err.code === 'PEAK_GUARD_BLOCKED') local.blocked++;
        else local.failed++;
      });
  }
  await sleep(100);
}
const secondsTouched = Math.floor(Date.now() / 1000) - Math.floor(started / 1000) + 1;
console.log(`sent 150: passed ${local.passed}, blocked ${local.blocked}, failed ${local.failed}`);

// The live view over the last 60 s (rates per second), read the way an operator does.
const seconds = 60;
interface Live {
  resource: string;
  passQps: number;
  blockQps: number;
  errorQps: number;
  instances: number;
}
const total = (perSecond: number | undefined) => Math.round((perSecond ?? 0) * seconds);
let live: Live | undefined;
await until('every second of checkout.pay in peak top', async () => {
  const top = JSON.parse(
    await peak('top', '--once', '--json', '--service', service, '--seconds', String(seconds)),
  );
  live = (top.resources as Live[]).find((r) => r.resource === 'checkout.pay');
  return total(live?.passQps) === local.passed && total(live?.blockQps) === local.blocked;
});
console.log(
  `peak top, last ${seconds} s: passed ${total(live?.passQps)}, blocked ${total(live?.blockQps)}, failed ${total(live?.errorQps)}, ${live?.instances} instance`,
);
check(local.passed <= 20 * secondsTouched, 'the rule let at most 20 a second through');
check(local.blocked > 0, 'calls over 20/s were blocked');
check(total(live?.errorQps) === local.failed, 'every failed call is counted');
check(live?.instances === 1, 'one instance reported');
guard.close();
await pusher.close();
const stats = pusher.stats();
console.log(`pusher: ${stats.sent} records sent, ${stats.droppedPush + stats.droppedFull} dropped`);
check(stats.droppedFull + stats.droppedPush === 0, 'nothing was dropped');
console.log('ok');
