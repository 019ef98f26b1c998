/**
 * mq: ordered messages. On an ordered topic each message names its group (here the order
 * id) and a group's messages are consumed one at a time, in send order, while different
 * groups run in parallel. A failing message is retried in place: it holds up only its own
 * group, never the others.
 *
 *   PEAK_SERVER=http://127.0.0.1:7420 PEAK_ADMIN_TOKEN=... node dist/mq/ordered-messages.js
 */
import { Consumer, Producer } from 'peakware/mq';
import { admin, check, server, until } from '../env.js';

const topic = `snippet-order-steps-${process.pid}`;
await admin().mq.createTopic({ name: topic, queues: 2, ordered: true });

const orders = ['o-1', 'o-2', 'o-3'];
const steps = ['created', 'paid', 'shipped', 'delivered'];
const producer = new Producer({ servers: server });
// Each order's steps in sequence; the orders side by side.
await Promise.all(
  orders.map(async (order) => {
    for (const step of steps) await producer.send(topic, { body: step, group: order });
  }),
);
console.log(`sent ${orders.length} orders x ${steps.length} steps`);

const seen = new Map<string, string[]>(orders.map((o) => [o, []]));
let failedOnce = false;
const consumer = new Consumer({
  servers: server,
  group: 'snippet-fulfilment',
  topic,
  concurrency: 8,
  backoffMs: [300],
  handler: async (m) => {
    const order = m.group ?? '?';
    // o-2's payment fails the first time: o-2 waits for its retry, o-1 and o-3 go on.
    if (order === 'o-2' && m.text() === 'paid' && !failedOnce) {
      failedOnce = true;
      console.log('o-2 paid: failed, retried in place (o-2 waits, o-1 and o-3 go on)');
      throw new Error('payment service busy');
    }
    await new Promise((r) => setTimeout(r, Math.random() * 20));
    seen.get(order)?.push(m.text());
  },
}).start();
try {
  await until('every step of every order', () =>
    [...seen.values()].every((s) => s.length === steps.length),
  );
} finally {
  await consumer.close();
}
for (const [order, got] of seen) console.log(`${order}: ${got.join(' -> ')}`);
check(failedOnce, "o-2's payment failed once");
for (const [order, got] of seen) check(got.join() === steps.join(), `${order} in send order`);

// On an ordered topic a message must name its group.
const refused = await producer.send(topic, { body: 'no group' }).catch((err: Error) => err);
check((refused as { code?: string }).code === 'PEAK_INVALID_ARGUMENT', 'a group is required');
console.log(`refused: ${(refused as Error).message}`);
await producer.close();
console.log('ok');
