/**
 * A provider process for the cross-process RPC tests: hosts `test.stock`, registers with
 * the peak server at PEAK_SERVER (lease LEASE_MS), appends every executed deduct id to
 * LEDGER, prints `{"port":…,"instanceId":…}` when ready, and stops gracefully on SIGTERM.
 * FRAME_TIMEOUT_MS sets the provider's frameTimeoutMs (how long a frame may stay incomplete).
 */
import { appendFileSync } from 'node:fs';
import { HttpRegistry } from '../src/registry/index.js';
import { RpcClient, RpcServer } from '../src/rpc/index.js';
import { stockService } from './rpc-fixture-service.js';

const server = process.env.PEAK_SERVER;
const ledger = process.env.LEDGER;
const registry =
  server === undefined
    ? undefined
    : new HttpRegistry({ servers: [server], leaseMs: Number(process.env.LEASE_MS ?? 3000) });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rpc = new RpcServer({
  ...(registry === undefined ? {} : { registry }),
  ...(process.env.TAGS ? { tags: process.env.TAGS.split(',') } : {}),
  drainTimeoutMs: 5000,
  ...(process.env.FRAME_TIMEOUT_MS ? { frameTimeoutMs: Number(process.env.FRAME_TIMEOUT_MS) } : {}),
});
const downstream =
  registry === undefined
    ? undefined
    : new RpcClient({ registry, app: 'fixture', warmupMs: 0 }).service(stockService);
rpc.addService(stockService, {
  relay: async ({ id, ms, op }) => {
    if (downstream === undefined) throw new Error('relay needs PEAK_SERVER');
    if (ms > 0) await sleep(ms);
    const r = op === 'get' ? await downstream.get({ sku: id }) : await downstream.deduct({ id });
    return { pid: process.pid, downstreamPid: r.pid };
  },
  get: async ({ sku, ms }) => {
    if (ms > 0) await sleep(ms);
    return { sku, left: 42, pid: process.pid };
  },
  deduct: async ({ id, ms }) => {
    if (ledger !== undefined) appendFileSync(ledger, `${id}\n`);
    if (ms > 0) await sleep(ms);
    return { ok: true as const, pid: process.pid };
  },
});
const { port } = await rpc.start();
process.stdout.write(`${JSON.stringify({ port, instanceId: rpc.instanceId, pid: process.pid })}\n`);
process.on('SIGTERM', () => {
  rpc
    .stop()
    .then(() => registry?.close())
    .then(
      () => process.exit(0),
      () => process.exit(1),
    );
});
