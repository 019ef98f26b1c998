/**
 * mq: create a topic (admin), send a normal and a delayed message, and consume both with a
 * consumer group: resolve acks, throw retries later. Then look a message up by its key.
 *
 *   PEAK_SERVER=http://127.0.0.1:7420 PEAK_ADMIN_TOKEN=... node dist/mq/produce-consume.js
 */
import { type ConsumedMessage, Consumer, Producer } from 'peakware/mq';
import { admin, check, server } from '../env.js';

const topic = `snippet-orders-${process.pid}`;
const control = admin();
await control.mq.createTopic({ name: topic, queues: 2 });
console.log(`topic ${topic} created`);

const producer = new Producer({ servers: server });
const order = { id: `o-${process.pid}`, sku: 'A1', qty: 1 };
const sent = await producer.send(topic, {
  body: JSON.stringify(order),
  tag: 'created',
  keys: [order.id],
});
const delayed = await producer.send(topic, {
  body: JSON.stringify({ ...order, reminder: true }),
  tag: 'reminder',
  delayMs: 300,
});
console.log(`sent ${sent.id} now and ${delayed.id} due in 300 ms`);

const got: ConsumedMessage[] = [];
let allArrived: () => void = () => undefined;
const done = new Promise<void>((resolve) => {
  allArrived = resolve;
});
const consumer = new Consumer({
  servers: server,
  group: 'snippet-points',
  topic,
  waitMs: 1000,
  // Resolving acks the message; throwing would retry it later (then the DLQ).
  handler: async (message) => {
    got.push(message);
    if (got.length === 2) allArrived();
  },
}).start();
const timeout = setTimeout(() => {
  console.error(`only ${got.length} of 2 messages arrived in 15 s`);
  process.exit(1);
}, 15_000);
await done;
clearTimeout(timeout);
await consumer.close();
for (const m of got) console.log(`consumed ${m.id} tag=${m.tag} ${m.text()}`);
check(got[0]!.tag === 'created' && got[1]!.tag === 'reminder', 'the delayed one comes second');
check(got[1]!.storedAt - got[0]!.bornAt >= 0, 'stored times are set');

// Query by key: what the console and `peak mq query --key` use.
const byKey = await control.mq.query({ topic, key: order.id });
console.log(`by key ${order.id}: ${byKey.map((m) => m.id).join(', ')}`);
check(
  byKey.some((m) => m.id === sent.id),
  'the message is found by its key',
);
await producer.close();
console.log('ok');
