/**
 * The coordinator across nodes: two `peak server` processes (B and C) on the PostgreSQL of an
 * in-process node A (which serves the bank's registration). A saga submitted to B holds in its second step; B is killed
 * with SIGKILL mid-transaction; once B's lease runs out another node takes the transaction
 * over and finishes it, and every branch's effect happened exactly once (the step B was
 * waiting on answered after B died and is filtered as a duplicate when called again).
 * The same for a TCC killed while confirming, which ends confirmed.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { definitionKey } from '../src/rpc/index.js';
import { PeakServer } from '../src/server/index.js';
import { TxnClient, type TxnView } from '../src/txn/index.js';
import { useLocalCredential } from './support/credentials.js';
import { killGroup, type PeakProcess, spawnPeak } from './support/peak-process.js';
import {
  type Bank,
  bank,
  creditStep,
  debitStep,
  ensureDatabase,
  startBank,
} from './support/txn-bank.js';
import { waitFor } from './support/wait.js';

const key = definitionKey(bank);
const call = (method: keyof (typeof bank)['methods']) => ({ service: key, method });

describe('txn: a killed coordinator node is resumed by another', { timeout: 240_000 }, () => {
  let a: PeakServer;
  let shop: Bank;
  const dirs: string[] = [];
  const nodes: { name: string; proc: PeakProcess; url: string; nodeId: string }[] = [];

  const tmp = async (prefix: string) => {
    const d = await mkdtemp(path.join(os.tmpdir(), prefix));
    dirs.push(d);
    return d;
  };
  const show = (gid: string) => new TxnClient({ servers: a.info.url }).get(gid);

  before(async () => {
    a = await PeakServer.start({
      dataDir: await tmp('peak-txn-a-'),
      port: 0,
      txn: { leaseMs: 1500, recoveryIntervalMs: 200 },
    });
    useLocalCredential(a);
    for (const name of ['b', 'c']) {
      const proc = spawnPeak(
        [
          'server',
          '--postgres',
          a.postgresUrl(),
          '--data',
          await tmp(`peak-txn-${name}-`),
          '--port',
          '0',
          '--json',
          '--log-level',
          'warn',
        ],
        { PEAK_TXN_LEASE_MS: '1500', PEAK_TXN_RECOVERY_INTERVAL_MS: '200' },
      );
      const ready = await proc.waitFor('ready', 60_000);
      nodes.push({ name, proc, url: String(ready.url), nodeId: String(ready.nodeId) });
    }
    await ensureDatabase(a.postgresUrl(), 'txn_recovery');
    shop = await startBank(a.postgresUrl('txn_recovery'), a.info.url, {
      alice: 100,
      bob: 0,
      carol: 100,
      dave: 0,
    });
  });

  after(async () => {
    for (const n of nodes) {
      killGroup(n.proc.child);
      await n.proc.exited;
    }
    await shop?.stop();
    await a?.stop();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  /** Holds the next call of `method` until released; resolves `reached` when it arrives. */
  const hold = (method: string) => {
    let release!: () => void;
    let reachedResolve!: () => void;
    const reached = new Promise<void>((r) => {
      reachedResolve = r;
    });
    const gate = new Promise<void>((r) => {
      release = r;
    });
    shop.hooks.set(method, async () => {
      shop.hooks.delete(method);
      reachedResolve();
      await gate;
    });
    return { reached, release };
  };

  const kill = async (name: string) => {
    const node = nodes.find((n) => n.name === name)!;
    killGroup(node.proc.child, 'SIGKILL');
    await node.proc.exited;
    nodes.splice(nodes.indexOf(node), 1);
    return node;
  };

  // Finished, and its timeline showing what `also` asks (branch events may trail the end).
  const finished = async (
    gid: string,
    also: (v: TxnView) => boolean = () => true,
  ): Promise<TxnView> => {
    let view: TxnView | undefined;
    await waitFor(
      () => `${gid} to finish: ${JSON.stringify(view)}`,
      async () => {
        view = await show(gid);
        return (view.status === 'succeeded' || view.status === 'failed') && also(view);
      },
      60_000,
    );
    return view!;
  };

  it('resumes a saga whose driving node was killed mid-step', async () => {
    const b = nodes.find((n) => n.name === 'b')!;
    const held = hold('credit');
    const client = new TxnClient({ servers: b.url });
    const out = await client.saga(
      {
        gid: 'recover-saga-1',
        steps: [debitStep('alice', 10), creditStep('bob', 10, { timeoutMs: 30_000 })],
      },
      { wait: false },
    );
    assert.equal(out.status, 'running');
    await held.reached;
    const killed = await kill('b');
    // The call B was waiting for now commits; nobody hears its answer.
    held.release();

    const view = await finished('recover-saga-1', (v) =>
      v.branches.some(
        (b) => b.branch === 'credit' && b.op === 'action' && b.status === 'succeeded',
      ),
    );
    assert.equal(view.status, 'succeeded', JSON.stringify(view));
    assert.notEqual(view.owner, killed.nodeId, 'another node finished it');
    assert.ok(view.recoveries >= 1);
    assert.deepEqual(await shop.effects('recover-saga-1'), ['debit:action', 'credit:action']);
    assert.equal((await shop.balance('alice')).balance, 90);
    assert.equal((await shop.balance('bob')).balance, 10);
    assert.ok((shop.calls.get('credit') ?? 0) >= 2, 'the credit was called again by the new node');
    const ops = view.branches.map((x) => `${x.branch}:${x.op}:${x.status}`);
    assert.ok(ops.includes('credit:action:succeeded'), ops.join(', '));
  });

  it('resumes a TCC whose driving node was killed while confirming', async () => {
    const c = nodes.find((n) => n.name === 'c')!;
    const held = hold('confirmCredit');
    const client = new TxnClient({ servers: c.url });
    const pending = client
      .tcc({
        gid: 'recover-tcc-1',
        branches: [
          {
            name: 'from',
            try: call('tryDebit'),
            confirm: call('confirmDebit'),
            cancel: call('cancelDebit'),
            payload: { account: 'carol', amount: 30 },
          },
          {
            name: 'to',
            try: call('tryCredit'),
            confirm: call('confirmCredit'),
            cancel: call('cancelCredit'),
            payload: { account: 'dave', amount: 30 },
            timeoutMs: 30_000,
          },
        ],
      })
      .catch((err: unknown) => err);
    await held.reached;
    await kill('c');
    held.release();
    await pending;

    // Only node A is left: its recovery round takes it.
    const view = await finished('recover-tcc-1');
    assert.equal(view.status, 'succeeded', JSON.stringify(view));
    assert.deepEqual(await shop.balance('carol'), { balance: 70, frozen: 0, incoming: 0 });
    assert.deepEqual(await shop.balance('dave'), { balance: 30, frozen: 0, incoming: 0 });
    const effects = await shop.effects('recover-tcc-1');
    assert.equal(effects.filter((e) => e === 'to:confirm').length, 1, effects.join(', '));
    assert.equal(effects.filter((e) => e === 'from:confirm').length, 1, effects.join(', '));
  });
});
