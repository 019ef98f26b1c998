/**
 * rpc: tag routing for a gray release. Two providers of one service register, one tagged
 * `canary`. Calls without a route tag never reach the canary; a call whose context carries
 * `route=canary` goes to it (and the tag travels on downstream); a condition rule loaded at
 * runtime (`userId % 100 < 10`) puts matching calls on the canary.
 *
 *   PEAK_SERVER=http://127.0.0.1:7420 node dist/rpc/tag-routing.js
 */
import { withContext } from 'peakware/core';
import { HttpRegistry } from 'peakware/registry';
import { defineService, RpcClient, RpcServer } from 'peakware/rpc';
import { z } from 'zod';
import { check, server, until } from '../env.js';

const pricing = defineService({
  name: `snippet.pricing-${process.pid}`,
  version: '1.0.0',
  methods: {
    quote: {
      input: z.object({ userId: z.number().int(), sku: z.string() }),
      output: z.object({ price: z.number(), servedBy: z.string() }),
      idempotent: true,
    },
  },
});

const registry = new HttpRegistry({ servers: [server] });
const providers = [
  { tags: [] as string[], name: 'stable', price: 100 },
  { tags: ['canary'], name: 'canary', price: 95 },
].map(({ tags, name, price }) =>
  new RpcServer({ registry, tags }).addService(pricing, {
    quote: () => ({ price, servedBy: name }),
  }),
);
for (const p of providers) await p.start();

const client = new RpcClient({ registry, app: 'snippet.cart' });
const quote = (userId: number) => client.service(pricing).quote({ userId, sku: 'A1' });
const onCanary = { tags: { route: 'canary' } };
try {
  // Both instances discovered once a canary-tagged call lands on the canary.
  await until(
    'the canary instance',
    async () => (await withContext(onCanary, () => quote(1))).servedBy === 'canary',
  );

  const plain = await Promise.all([1, 2, 3, 4, 5, 6].map((u) => quote(u * 100 + 50)));
  console.log(`untagged calls: ${plain.map((q) => q.servedBy).join(' ')}`);
  check(
    plain.every((q) => q.servedBy === 'stable'),
    'untagged calls never reach the canary',
  );

  const tagged = await withContext(onCanary, () => quote(4242));
  console.log(`route=canary: ${tagged.servedBy} (price ${tagged.price})`);
  check(tagged.servedBy === 'canary', 'a route-tagged call goes to the canary');

  // 10 % of users by rule, loaded at runtime (the config center can push these).
  client.setRules([{ service: pricing.name, when: 'userId % 100 < 10', tag: 'canary' }]);
  const users = [7, 42, 103, 250, 1009];
  const byRule = await Promise.all(users.map(async (u) => `${u}:${(await quote(u)).servedBy}`));
  console.log(`by rule: ${byRule.join(' ')}`);
  check(byRule.join() === '7:canary,42:stable,103:canary,250:stable,1009:canary', 'rule routes');
} finally {
  await client.close();
  for (const p of providers) await p.stop();
  await registry.close();
}
console.log('ok');
