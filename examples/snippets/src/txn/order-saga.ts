/**
 * txn: an order as a saga across two services. The coupon service locks a coupon and the
 * inventory service deducts stock, each in its own local transaction wrapped in the
 * barrier; the coordinator in peak server calls them in order and, when a step refuses,
 * runs the compensations of the steps before it. The first order succeeds; the second
 * finds the coupon already used, so its stock deduction is given back.
 *
 *   PEAK_SERVER=... PEAK_SNIPPET_POSTGRES=postgres://... node dist/txn/order-saga.js
 */
import { HttpRegistry } from 'peakware/registry';
import { defineService, RpcServer } from 'peakware/rpc';
import { BranchRefusedError, barrier, branchCall, installBarrier, TxnClient } from 'peakware/txn';
import pg from 'pg';
import { z } from 'zod';
import { check, postgresUrl, server, until } from '../env.js';

const step = { input: z.object({ order: z.string(), id: z.string() }), output: z.unknown() };
const coupons = defineService({
  name: `snippet.coupons-${process.pid}`,
  methods: { lock: step, release: step },
});
const inventory = defineService({
  name: `snippet.inventory-${process.pid}`,
  methods: { deduct: step, restore: step },
});

// The services' database (in a real deployment each has its own): business rows and the barrier.
const database = `snippet_txn_${process.pid}`;
const admin = new pg.Client({ connectionString: postgresUrl() });
await admin.connect();
await admin.query(`CREATE DATABASE ${database}`);
const url = new URL(postgresUrl());
url.pathname = `/${database}`;
const db = new pg.Pool({ connectionString: url.toString(), max: 4 });
await installBarrier(db);
await db.query(`CREATE TABLE coupons (id text PRIMARY KEY, used_by text);
  CREATE TABLE stock (sku text PRIMARY KEY, left_n integer NOT NULL CHECK (left_n >= 0));
  INSERT INTO coupons VALUES ('SAVE10', NULL); INSERT INTO stock VALUES ('phone', 5);`);

const registry = new HttpRegistry({ servers: server });
const rpc = new RpcServer({ registry });
rpc.addService(coupons, {
  // A coupon is locked once; an order that finds it taken fails the saga.
  lock: (input) =>
    barrier(db, undefined, async (client) => {
      const res = await client.query(
        'UPDATE coupons SET used_by = $2 WHERE id = $1 AND used_by IS NULL',
        [input.id, input.order],
      );
      if (res.rowCount === 0) throw new BranchRefusedError(`coupon ${input.id} is already used`);
      return { locked: input.id };
    }),
  release: (input) =>
    barrier(db, undefined, (client) =>
      client.query('UPDATE coupons SET used_by = NULL WHERE id = $1 AND used_by = $2', [
        input.id,
        input.order,
      ]),
    ),
});
rpc.addService(inventory, {
  deduct: (input) =>
    barrier(db, undefined, (client) =>
      client.query('UPDATE stock SET left_n = left_n - 1 WHERE sku = $1', [input.id]),
    ),
  restore: (input) =>
    barrier(db, undefined, (client) =>
      client.query('UPDATE stock SET left_n = left_n + 1 WHERE sku = $1', [input.id]),
    ),
});
await rpc.start();

const txn = new TxnClient({ servers: server });
const placeOrder = (order: string) =>
  txn.saga({
    gid: `${order}-${process.pid}`,
    steps: [
      {
        name: 'stock',
        action: branchCall(inventory, 'deduct'),
        compensate: branchCall(inventory, 'restore'),
        payload: { order, id: 'phone' },
      },
      {
        name: 'coupon',
        action: branchCall(coupons, 'lock'),
        compensate: branchCall(coupons, 'release'),
        payload: { order, id: 'SAVE10' },
      },
    ],
  });

try {
  const stockLeft = async () =>
    (await db.query<{ n: number }>("SELECT left_n AS n FROM stock WHERE sku = 'phone'")).rows[0]!.n;
  const first = await placeOrder('order-1');
  console.log(`order-1: ${first.status}, results ${JSON.stringify(first.results)}`);
  check(first.status === 'succeeded', 'the first order succeeds');
  let second = 'succeeded';
  try {
    await placeOrder('order-2');
  } catch (err) {
    second = (err as { code?: string }).code ?? String(err);
    console.log(`order-2: ${(err as Error).message}`);
  }
  check(second === 'PEAK_TXN_ABORTED', 'the second order rolls back');
  const left = await stockLeft();
  console.log(`stock left: ${left} (one phone sold, the second order's deduction given back)`);
  check(left === 4, 'exactly one phone is gone');
  const view = await txn.get(`order-2-${process.pid}`);
  for (const b of view.branches) console.log(`  ${b.branch}.${b.op} ${b.status}`);
  check(
    view.branches.some((b) => b.branch === 'stock' && b.op === 'compensate'),
    "the timeline shows the stock step's compensation",
  );
} finally {
  await rpc.stop();
  await registry.close();
  await db.end();
  const open = async () =>
    (await admin.query('SELECT 1 FROM pg_stat_activity WHERE datname = $1', [database])).rowCount;
  await until('the pool connections to close', async () => (await open()) === 0);
  await admin.query(`DROP DATABASE ${database}`);
  await admin.end();
}
console.log('ok');
