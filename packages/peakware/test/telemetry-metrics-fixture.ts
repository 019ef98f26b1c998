/**
 * A service instance for the metrics-push test, run as its own process:
 * `node telemetry-metrics-fixture.js <serverUrl> <instance>`. It serves two resources for
 * as long as it runs and pushes their per-second metrics with a MetricsPusher:
 * `checkout.pay` through a real Guard (flow limit 20/s, so some calls are blocked; every
 * 5th admitted call fails), reported by guard's `metrics` events; `checkout.quote` through
 * a SlidingWindow it feeds itself (recorded RTs 2, 3, ..., 12 ms in turn, not measured). Prints `{"event":"ready"}` once started
 * and `{"event":"stats",...}` (the pusher's counters) on SIGTERM before exiting.
 */
import { SlidingWindow } from '../src/core/sliding-window.js';
import { Guard } from '../src/guard/index.js';
import { MetricsPusher } from '../src/telemetry/index.js';

const [server, instance] = process.argv.slice(2);
if (server === undefined || instance === undefined) {
  console.error('usage: telemetry-metrics-fixture.js <serverUrl> <instance>');
  process.exit(2);
}
const pusher = new MetricsPusher({ servers: server, service: 'checkout', instance });
const guard = new Guard({ rules: { flow: [{ resource: 'checkout.pay', count: 20 }] } });
guard.on('metrics', (s) => pusher.record(s));
const quote = new SlidingWindow({ intervalMs: 1000, buckets: 2 });
let inFlight = 0;
pusher.watchWindow('checkout.quote', quote, () => inFlight);

let n = 0;
const started = Date.now();
const timer = setInterval(() => {
  // 50 calls per second of each resource, counted from the start: a tick that comes late on
  // a busy machine makes up the calls it missed (at most a second's worth), so the rates
  // the test reads do not depend on how punctually timers fire.
  const due = Math.min(Math.floor(((Date.now() - started) / 1000) * 50), n + 50);
  while (n < due) {
    n++;
    try {
      const entry = guard.entry('checkout.pay');
      entry.exit(n % 5 === 0 ? new Error('card declined') : undefined);
    } catch {
      // blocked by the flow rule: counted by guard
    }
    quote.addPass();
    inFlight++;
    const rt = 2 + (n % 11);
    // Decided now: the callback runs after this loop, when `n` has moved on (all of a late
    // tick's calls would see its last n, and often no error at all).
    const failed = n % 10 === 0;
    setTimeout(() => {
      inFlight--;
      quote.addComplete(rt, failed);
    }, rt);
  }
}, 100);

process.on('SIGTERM', () => {
  clearInterval(timer);
  guard.close();
  void pusher.close().then(() => {
    process.stdout.write(`${JSON.stringify({ event: 'stats', ...pusher.stats() })}\n`);
    process.exit(0);
  });
});
process.stdout.write(`${JSON.stringify({ event: 'ready' })}\n`);
