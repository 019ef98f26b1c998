/**
 * mq: delayed messages. `delayMs` (or an absolute `deliverAt`) keeps a message out of its
 * queue until it is due, up to 40 days; it is never delivered early. Here a reminder is
 * scheduled 1.5 s out beside an immediate message, and a consumer shows which came when.
 *
 *   PEAK_SERVER=http://127.0.0.1:7420 PEAK_ADMIN_TOKEN=... node dist/mq/delayed-message.js
 */
import { type ConsumedMessage, Consumer, MAX_DELAY_MS, Producer } from 'peakware/mq';
import { admin, check, server, within } from '../env.js';

const topic = `snippet-reminders-${process.pid}`;
await admin().mq.createTopic({ name: topic, queues: 2 });

const producer = new Producer({ servers: server });
const sentAt = Date.now();
const [reminder, receipt] = await Promise.all([
  producer.send(topic, { body: 'pay for order 42', tag: 'reminder', delayMs: 1500 }),
  producer.send(topic, { body: 'order 42 placed', tag: 'receipt' }),
]);
console.log(`sent ${receipt.id} now and ${reminder.id} due in 1500 ms`);

const arrived: { message: ConsumedMessage; afterMs: number }[] = [];
let bothArrived: () => void = () => undefined;
const both = new Promise<void>((resolve) => {
  bothArrived = resolve;
});
const consumer = new Consumer({
  servers: server,
  group: 'snippet-notify',
  topic,
  waitMs: 1000,
  handler: async (message) => {
    arrived.push({ message, afterMs: Date.now() - sentAt });
    if (arrived.length === 2) bothArrived();
  },
}).start();
try {
  await within('both messages', both);
} finally {
  await consumer.close();
}
for (const a of arrived) console.log(`${a.message.tag} after ${a.afterMs} ms: ${a.message.text()}`);
check(arrived[0]?.message.tag === 'receipt', 'the immediate message comes first');
check(arrived[1]?.message.tag === 'reminder', 'the delayed one comes second');
check((arrived[1]?.afterMs ?? 0) >= 1500, 'the delayed one is never delivered early');

// More than 40 days out is refused when sent, with the limit in the message.
const tooLate = await producer
  .send(topic, { body: 'x', delayMs: MAX_DELAY_MS + 1 })
  .catch((err: { code?: string; message: string }) => err);
check((tooLate as { code?: string }).code === 'PEAK_INVALID_ARGUMENT', 'over 40 days is refused');
console.log(`refused: ${(tooLate as Error).message}`);
await producer.close();
console.log('ok');
