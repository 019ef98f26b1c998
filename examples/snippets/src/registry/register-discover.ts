/**
 * registry: a provider registers under a lease the SDK renews; a consumer subscribes to the
 * service and gets the list pushed on every change. Graceful offline in two steps: mark the
 * instance offline (still listed, no traffic: consumers drop it at once), then deregister.
 *
 *   PEAK_SERVER=http://127.0.0.1:7420 node dist/registry/register-discover.js
 */
import { activeInstances, HttpRegistry, type ServiceInstance, serviceKey } from 'peakware/registry';
import { check, server, within } from '../env.js';

const service = `snippet.stock-${process.pid}`;
const key = serviceKey(service, '1.0.0', 'default');

const provider = new HttpRegistry({ servers: [server] });
const consumer = new HttpRegistry({ servers: [server] });

// Every pushed list, in order; `pushed` resolves once the latest list matches `test`.
const lists: (readonly ServiceInstance[])[] = [];
const waiters: { test: (l: readonly ServiceInstance[]) => boolean; done: () => void }[] = [];
const subscription = consumer.subscribe(key, (list) => {
  lists.push(list);
  for (const w of waiters.filter((w) => w.test(list))) {
    waiters.splice(waiters.indexOf(w), 1);
    w.done();
  }
});
const pushed = (what: string, test: (l: readonly ServiceInstance[]) => boolean) =>
  within(
    what,
    new Promise<void>((done) => {
      const latest = lists.at(-1);
      if (latest !== undefined && test(latest)) done();
      else waiters.push({ test, done });
    }),
  );

try {
  const handle = await provider.register({
    instanceId: `stock-${process.pid}-a`,
    service,
    version: '1.0.0',
    group: 'default',
    host: '127.0.0.1',
    port: 9001,
    weight: 100,
    tags: [],
    metadata: { zone: 'a' },
  });
  await pushed('the registered instance', (l) => l.length === 1);
  const [seen] = subscription.current();
  console.log(`discovered ${seen?.instanceId} at ${seen?.host}:${seen?.port} (${seen?.status})`);
  check(activeInstances(subscription.current()).length === 1, 'it takes traffic');

  await handle.setStatus('offline');
  await pushed('the offline status', (l) => l[0]?.status === 'offline');
  console.log(
    `offline: still listed (${subscription.current().length}), active ${activeInstances(subscription.current()).length}`,
  );
  check(activeInstances(subscription.current()).length === 0, 'an offline instance gets no calls');

  await handle.deregister();
  await pushed('the deregistration', (l) => l.length === 0);
  const states = lists
    .map((l) => (l.length === 0 ? 'none' : l.map((i) => i.status).join()))
    .filter((state, i, all) => state !== all[i - 1]);
  console.log(`lists pushed: ${states.join(' -> ')}`);
  check(subscription.current().length === 0, 'the instance is gone from the list');
} finally {
  subscription.close();
  await Promise.all([provider.close(), consumer.close()]);
}
console.log('ok');
