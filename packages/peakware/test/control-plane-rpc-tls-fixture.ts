/**
 * An SDK user of an HTTPS control plane, in a process of its own (so `NODE_EXTRA_CA_CERTS`,
 * read at start, makes it trust a dev CA as a user's process would): sends RPC_TLS_COUNT
 * messages to RPC_TLS_TOPIC with a `Producer`, consumes them with a `Consumer`, submits one
 * saga with a `TxnClient`, and prints `{ sent, got, saga }` as one JSON line.
 *
 * Environment: PEAK_SERVER (the https URL), PEAK_CREDENTIAL, RPC_TLS_TOPIC, RPC_TLS_COUNT.
 */
import { Consumer, Producer } from '../src/mq/index.js';
import { TxnClient } from '../src/txn/index.js';

const servers = process.env.PEAK_SERVER!;
const topic = process.env.RPC_TLS_TOPIC!;
const count = Number(process.env.RPC_TLS_COUNT ?? '50');

const producer = new Producer({ servers });
const sent = await Promise.all(
  Array.from({ length: count }, (_, i) => producer.send(topic, { body: `tls-${i}` })),
);
const got = new Set<string>();
const consumer = new Consumer({
  servers,
  group: 'tls-sdk',
  topic,
  waitMs: 300,
  handler: (m) => {
    got.add(m.text());
  },
}).start();
const deadline = Date.now() + 30_000;
while (got.size < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
await consumer.close();
await producer.close();
// A saga whose only branch names a service nobody provides: it rolls back, and says so.
const txn = new TxnClient({ servers });
const saga = await txn
  .saga({
    steps: [
      {
        name: 'nobody',
        action: { service: 'default/rpc.tls.nobody:1.0.0', method: 'run' },
        retries: 0,
      },
    ],
    timeoutMs: 5000,
  })
  .then(
    () => 'committed',
    (e: { code?: string }) => e.code ?? 'error',
  );
process.stdout.write(
  `${JSON.stringify({ sent: new Set(sent.map((s) => s.id)).size, got: got.size, saga })}\n`,
);
