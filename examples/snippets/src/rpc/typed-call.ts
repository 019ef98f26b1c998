/**
 * rpc + registry: define a service once with zod schemas, host it (it registers with the
 * control plane), and call it through a typed proxy that finds providers by discovery.
 * Deadlines travel with the call; a bad argument is refused before the handler runs.
 *
 *   PEAK_SERVER=http://127.0.0.1:7420 node dist/rpc/typed-call.js
 */
import { isPeakError } from 'peakware/core';
import { HttpRegistry } from 'peakware/registry';
import { defineService, RpcClient, RpcServer } from 'peakware/rpc';
import { z } from 'zod';
import { check, server } from '../env.js';

const inventory = defineService({
  name: 'snippet.inventory',
  version: '1.0.0',
  methods: {
    stock: {
      input: z.object({ sku: z.string().min(1) }),
      output: z.object({ sku: z.string(), left: z.number().int() }),
      idempotent: true,
    },
  },
});

const registry = new HttpRegistry({ servers: [server] });
const provider = new RpcServer({ registry, port: 0 }).addService(inventory, {
  stock: ({ sku }) => ({ sku, left: sku === 'A1' ? 7 : 0 }),
});
const { port } = await provider.start();
console.log(`provider listening on ${port}, registered with ${server}`);

const client = new RpcClient({ registry, app: 'snippet.order' });
try {
  const stock = client.service(inventory);
  const a1 = await stock.stock({ sku: 'A1' }, { timeoutMs: 2000 });
  console.log(`stock(A1) = ${a1.left}`);
  check(a1.left === 7, 'the provider answered');

  // Input is checked on the provider before the handler runs.
  const refused = await stock.stock({ sku: '' }, { timeoutMs: 2000 }).catch((err: unknown) => err);
  check(isPeakError(refused), 'an invalid argument is a PeakError');
  console.log(`stock('') refused: ${(refused as { code: string }).code}`);
} finally {
  await client.close();
  await provider.stop(); // graceful offline: deregister, drain, close
  await registry.close();
}
console.log('ok');
