/**
 * peakware/txn against a real peak server, a real branch service over RPC and the branch's
 * own PostgreSQL database: the barrier's three cases (a branch answering twice, a cancel
 * before its try, a try after its cancel), sagas (in order and concurrent, a refusal, a
 * retried step, a step that times out and answers after its compensation, a branch never
 * reachable), TCC (confirm, cancel), operations (stop, the retry limit parking a
 * transaction, retry, `peak txn show`) and two-phase messages (committed, rolled back, and
 * both outcomes of the check-back after the caller died between prepare and submit).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { AdminClient } from '../src/admin/index.js';
import { createContext, runWithContext } from '../src/core/context.js';
import { ErrorCodes, isPeakError, PeakError } from '../src/core/errors.js';
import { HttpRegistry } from '../src/registry/http-registry.js';
import { definitionKey, RpcClient } from '../src/rpc/index.js';
import { PeakServer } from '../src/server/index.js';
import {
  barrier,
  barrierStatement,
  branchBaggage,
  pruneBarrier,
  type SagaStep,
  type TccBranch,
  TxnClient,
  type TxnView,
} from '../src/txn/index.js';
import { FLUSH_SQL, TxnJournal } from '../src/txn/server/txn-journal.js';
import { ACTIVE_SQL, CLAIM_DUE_SQL, pruneFinished } from '../src/txn/server/txn-store.js';
import { useLocalCredential } from './support/credentials.js';
import { runPeak } from './support/peak-process.js';
import {
  type Bank,
  bank,
  creditStep as credit,
  debitStep as debit,
  ensureDatabase,
  startBank,
} from './support/txn-bank.js';
import { waitFor } from './support/wait.js';

const key = definitionKey(bank);
const call = (method: keyof (typeof bank)['methods']) => ({ service: key, method });
const move = (account: string, amount: number) => ({ account, amount });

const tccFrom = (account: string, amount: number): TccBranch => ({
  name: 'from',
  try: call('tryDebit'),
  confirm: call('confirmDebit'),
  cancel: call('cancelDebit'),
  payload: move(account, amount),
});
const tccTo = (account: string, amount: number): TccBranch => ({
  name: 'to',
  try: call('tryCredit'),
  confirm: call('confirmCredit'),
  cancel: call('cancelCredit'),
  payload: move(account, amount),
});

describe('txn: barrier, saga, TCC, operations and two-phase messages', { timeout: 180_000 }, () => {
  let server: PeakServer;
  let shop: Bank;
  let txn: TxnClient;
  let admin: AdminClient;
  let rpc: RpcClient;
  let registry: HttpRegistry;
  let dir: string;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'peak-txn-'));
    server = await PeakServer.start({
      dataDir: dir,
      port: 0,
      txn: { leaseMs: 1000, recoveryIntervalMs: 100, maxRecoveries: 2 },
    });
    useLocalCredential(server);
    await ensureDatabase(server.postgresUrl(), 'txn_bank');
    shop = await startBank(server.postgresUrl('txn_bank'), server.info.url, {
      a1: 100,
      a2: 0,
      b1: 100,
      b2: 0,
      c1: 100,
      c2: 0,
      d1: 100,
      d2: 0,
      e1: 100,
      e2: 0,
      e3: 0,
      f1: 100,
      f2: 0,
      g1: 100,
      g2: 0,
      h1: 50,
      h2: 0,
      i1: 100,
      i2: 0,
      j1: 100,
      j2: 0,
      k1: 100,
      m1: 100,
      m2: 0,
      n1: 100,
      p1: 100,
      p2: 0,
      q1: 100,
      q2: 0,
      q3: 50,
      q4: 0,
      r2: 0,
    });
    txn = new TxnClient({ servers: server.info.url });
    admin = new AdminClient({ servers: server.info.url, token: server.info.adminToken! });
    registry = new HttpRegistry({ servers: server.info.url });
    rpc = new RpcClient({ registry, warmupMs: 0, cluster: 'failfast' });
  });

  after(async () => {
    await rpc?.close();
    await registry?.close();
    await shop?.stop();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** Calls a bank method directly as branch operation `op` of `gid` (what the coordinator does). */
  const branchCallAs = (
    gid: string,
    branch: string,
    op: 'action' | 'try' | 'cancel' | 'compensate',
    method: keyof (typeof bank)['methods'],
    payload: unknown,
  ) =>
    runWithContext(createContext({ baggage: branchBaggage({ gid, branch, op }) }), () =>
      rpc.call(key, method, payload),
    );

  // Finished, and its timeline showing what `also` asks: branch events are written without
  // waiting (the timeline may trail the end by a batch), so a test of them waits for them.
  const finished = async (
    gid: string,
    also: (v: TxnView) => boolean = () => true,
  ): Promise<TxnView> => {
    let view: TxnView | undefined;
    await waitFor(
      () => `${gid} to finish: ${JSON.stringify(view)}`,
      async () => {
        view = await admin.txn.show(gid);
        return (view.status === 'succeeded' || view.status === 'failed') && also(view);
      },
    );
    return view!;
  };

  // ---------------------------------------------------------------- barrier

  it('barrier: a branch that answers twice takes effect once', async () => {
    const first = await branchCallAs('twice-1', 'debit', 'action', 'debit', move('a1', 10));
    const second = await branchCallAs('twice-1', 'debit', 'action', 'debit', move('a1', 10));
    assert.deepEqual(first, { method: 'debit', account: 'a1' });
    assert.equal(second, undefined, 'the duplicate is filtered');
    assert.equal((await shop.balance('a1')).balance, 90);
    assert.deepEqual(await shop.effects('twice-1'), ['debit:action']);
  });

  it('barrier: a cancel before its try is an empty compensation', async () => {
    const cancelled = await branchCallAs(
      'empty-1',
      'from',
      'cancel',
      'cancelDebit',
      move('b1', 10),
    );
    assert.equal(cancelled, undefined);
    assert.deepEqual(await shop.balance('b1'), { balance: 100, frozen: 0, incoming: 0 });
    assert.deepEqual(await shop.effects('empty-1'), [], 'nothing was released');
  });

  it('barrier: a try after its cancel (hanging) reserves nothing', async () => {
    await branchCallAs('hang-1', 'from', 'cancel', 'cancelDebit', move('c1', 10));
    const late = await branchCallAs('hang-1', 'from', 'try', 'tryDebit', move('c1', 10));
    assert.equal(late, undefined, 'the late try is filtered');
    assert.deepEqual(await shop.balance('c1'), { balance: 100, frozen: 0, incoming: 0 });
    assert.deepEqual(await shop.effects('hang-1'), []);
  });

  it('barrier: refuses a call outside a branch with PEAK_TXN_NO_BRANCH', async () => {
    await assert.rejects(
      barrier(shop.db, undefined, async () => 1),
      (err: unknown) => isPeakError(err, ErrorCodes.TXN_NO_BRANCH),
    );
  });

  it('pruneBarrier deletes the rows older than asked, through the BRIN age index', async () => {
    const am = await shop.db.query<{ amname: string }>(
      `SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam
        WHERE c.oid = 'peak_txn.barrier_created'::regclass`,
    );
    assert.equal(am.rows[0]?.amname, 'brin');
    await shop.db.query(
      `INSERT INTO peak_txn.barrier (gid, branch, op, reason, created_at) VALUES
         ('prune-old', 'b', 'action', 'action', now() - interval '2 days'),
         ('prune-new', 'b', 'action', 'action', now())`,
    );
    const pruned = await pruneBarrier(shop.db, 86_400_000);
    assert.ok(pruned >= 1, `pruned ${pruned}`);
    const left = await shop.db.query<{ gid: string }>(
      `SELECT gid FROM peak_txn.barrier WHERE gid LIKE 'prune-%' ORDER BY gid`,
    );
    assert.deepEqual(
      left.rows.map((r) => r.gid),
      ['prune-new'],
    );
  });

  it('barrierStatement: the same rules as barrier, in one statement', async () => {
    const debitN1 = (gid: string, op: 'action' | 'compensate', sign: string) =>
      barrierStatement<{ balance: number }>(
        shop.db,
        { gid, branch: 'debit', op },
        (gate) =>
          `UPDATE accounts SET balance = balance ${sign} $2 WHERE id = $1 AND ${gate} RETURNING balance`,
        ['n1', 10],
      );
    assert.deepEqual(await debitN1('stmt-1', 'action', '-'), {
      ran: true,
      rows: [{ balance: 90 }],
    });
    assert.deepEqual(await debitN1('stmt-1', 'action', '-'), { ran: false, rows: [] }, 'duplicate');
    assert.deepEqual(await debitN1('stmt-1', 'compensate', '+'), {
      ran: true,
      rows: [{ balance: 100 }],
    });
    assert.deepEqual(await debitN1('stmt-1', 'compensate', '+'), { ran: false, rows: [] });
    // A compensation first (empty), then its action late (hanging): neither runs.
    assert.deepEqual(await debitN1('stmt-2', 'compensate', '+'), { ran: false, rows: [] });
    assert.deepEqual(await debitN1('stmt-2', 'action', '-'), { ran: false, rows: [] });
    assert.equal((await shop.balance('n1')).balance, 100);
    // A statement that fails takes its barrier row with it: the retry runs.
    await assert.rejects(debitN1('stmt-3', 'action', '- 1000 -'), /check constraint/);
    assert.equal((await debitN1('stmt-3', 'action', '-')).ran, true);
    assert.equal((await shop.balance('n1')).balance, 90);
  });

  // ---------------------------------------------------------------- saga

  it('saga: runs its steps in order and answers their results', async () => {
    const out = await txn.saga({ gid: 'saga-ok', steps: [debit('d1', 30), credit('d2', 30)] });
    assert.equal(out.status, 'succeeded');
    assert.deepEqual(out.results, {
      debit: { method: 'debit', account: 'd1' },
      credit: { method: 'credit', account: 'd2' },
    });
    assert.equal((await shop.balance('d1')).balance, 70);
    assert.equal((await shop.balance('d2')).balance, 30);
    const view = await finished('saga-ok', (v) => v.branches.length >= 2);
    assert.deepEqual(
      view.branches.map((b) => `${b.branch}.${b.op}:${b.status}`),
      ['debit.action:succeeded', 'credit.action:succeeded'],
    );
  });

  it('saga: the timeline of operations that succeeded rides in the end, a failed one and those before it are rows', async () => {
    let failures = 1;
    shop.hooks.set('credit', () => {
      if (failures-- > 0) throw new Error('the ledger is briefly down');
    });
    try {
      const out = await txn.saga({
        gid: 'saga-fold',
        steps: [debit('q1', 5), credit('q2', 5, { retries: 2, retryDelayMs: 10 })],
      });
      assert.equal(out.status, 'succeeded');
    } finally {
      shop.hooks.delete('credit');
    }
    // Refused: the credit went before it as a row, the compensations ride in the end.
    await assert.rejects(
      txn.saga({ gid: 'saga-fold-refused', steps: [credit('q4', 80), debit('q3', 80)] }),
      (err: unknown) => isPeakError(err, ErrorCodes.TXN_ABORTED),
    );
    const pool = new pg.Pool({ connectionString: server.postgresUrl(), max: 1 });
    try {
      const rows = async (gid: string) =>
        (
          await pool.query<{ k: string }>(
            `SELECT branch || '.' || op || ':' || status AS k FROM peak.txn_branches
              WHERE gid = $1 ORDER BY 1`,
            [gid],
          )
        ).rows.map((r) => r.k);
      const folded = async (gid: string) =>
        (
          await pool.query<{ k: string }>(
            `SELECT (e->>'branch') || '.' || (e->>'op') || ':' || (e->>'status') AS k
               FROM peak.txn_globals, jsonb_array_elements(coalesce(timeline, '[]')) e
              WHERE gid = $1 ORDER BY 1`,
            [gid],
          )
        ).rows.map((r) => r.k);
      assert.deepEqual(await rows('saga-fold'), []);
      assert.deepEqual(await folded('saga-fold'), [
        'credit.action:succeeded',
        'debit.action:succeeded',
      ]);
      await finished('saga-fold-refused');
      // Its rows go in the lazy lane, whose batches may commit out of order: wait for them.
      await waitFor(
        () => 'the refused saga rows',
        async () => (await rows('saga-fold-refused')).length >= 2,
      );
      assert.deepEqual(await rows('saga-fold-refused'), [
        'credit.action:succeeded',
        'debit.action:failed',
      ]);
      // Both compensated: the refused debit was sent, so its (empty) compensation runs too.
      assert.deepEqual(await folded('saga-fold-refused'), [
        'credit.compensate:succeeded',
        'debit.compensate:succeeded',
      ]);
    } finally {
      await pool.end();
    }
    // `peak txn show` merges both.
    const view = await finished('saga-fold', (v) => v.branches.length >= 2);
    assert.deepEqual(
      view.branches.map((b) => `${b.branch}.${b.op}:${b.status}:${b.attempts}`),
      ['debit.action:succeeded:1', 'credit.action:succeeded:2'],
    );
    const refused = await finished('saga-fold-refused', (v) => v.branches.length >= 4);
    assert.deepEqual(refused.branches.map((b) => `${b.branch}.${b.op}:${b.status}`).sort(), [
      'credit.action:succeeded',
      'credit.compensate:succeeded',
      'debit.action:failed',
      'debit.compensate:succeeded',
    ]);
  });

  it('saga: a refused step rolls the earlier ones back', async () => {
    await assert.rejects(
      txn.saga({ gid: 'saga-refused', steps: [credit('h2', 80), debit('h1', 80)] }),
      (err: unknown) => isPeakError(err, ErrorCodes.TXN_ABORTED),
    );
    assert.equal((await shop.balance('h1')).balance, 50, 'h1 could not give 80');
    assert.equal((await shop.balance('h2')).balance, 0, 'the credit was compensated');
    assert.deepEqual(await shop.effects('saga-refused'), ['credit:action', 'credit:compensate']);
    const view = await finished('saga-refused');
    assert.equal(view.status, 'failed');
    assert.match(view.reason ?? '', /step debit failed: PEAK_TXN_BRANCH_FAILED/);
  });

  it('saga: concurrent steps with dependencies, compensated after a failure', async () => {
    const steps: SagaStep[] = [
      { ...debit('e1', 10), name: 'take' },
      { ...credit('e2', 5), name: 'give-a' },
      { ...credit('e3', 5), name: 'give-b' },
      // Runs after both credits; refuses (e1 has 90 left).
      { ...debit('e1', 1000), name: 'last', after: ['give-a', 'give-b'] },
    ];
    await assert.rejects(txn.saga({ gid: 'saga-dag', concurrent: true, steps }), (err: unknown) =>
      isPeakError(err, ErrorCodes.TXN_ABORTED),
    );
    assert.equal((await shop.balance('e1')).balance, 100);
    assert.equal((await shop.balance('e2')).balance, 0);
    assert.equal((await shop.balance('e3')).balance, 0);
    const effects = await shop.effects('saga-dag');
    for (const s of ['take', 'give-a', 'give-b']) {
      assert.ok(
        effects.includes(`${s}:action`) && effects.includes(`${s}:compensate`),
        effects.join(),
      );
    }
    assert.ok(!effects.includes('last:action'));
  });

  it('saga: retries a step that fails for a while, under its policy', async () => {
    let failures = 2;
    shop.hooks.set('credit', () => {
      if (failures-- > 0) throw new Error('the ledger is briefly down');
    });
    try {
      const out = await txn.saga({
        gid: 'saga-retry',
        steps: [debit('f1', 10), credit('f2', 10, { retries: 3, retryDelayMs: 10 })],
      });
      assert.equal(out.status, 'succeeded');
    } finally {
      shop.hooks.delete('credit');
    }
    assert.equal((await shop.balance('f2')).balance, 10);
    const view = await finished('saga-retry', (v) =>
      v.branches.some((b) => b.branch === 'credit' && b.status === 'succeeded'),
    );
    const creditOp = view.branches.find((b) => b.branch === 'credit');
    assert.equal(creditOp?.attempts, 3);
  });

  it('saga: a step that times out is compensated, and its late answer changes nothing', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let reached!: () => void;
    const arrived = new Promise<void>((r) => {
      reached = r;
    });
    shop.hooks.set('credit', async () => {
      shop.hooks.delete('credit');
      reached();
      await gate;
    });
    await assert.rejects(
      txn.saga({
        gid: 'saga-timeout',
        steps: [debit('g1', 10), credit('g2', 10, { timeoutMs: 200, retries: 0 })],
      }),
      (err: unknown) => isPeakError(err, ErrorCodes.TXN_ABORTED),
    );
    await arrived;
    release();
    // The held credit now reaches its barrier, after its compensation: filtered.
    await waitFor('the late credit to end', () => shop.server.inFlight === 0);
    assert.equal((await shop.balance('g1')).balance, 100);
    assert.equal((await shop.balance('g2')).balance, 0);
    assert.deepEqual(await shop.effects('saga-timeout'), ['debit:action', 'debit:compensate']);
  });

  it('saga: a branch never reachable fails the saga, the earlier steps compensated', async () => {
    await assert.rejects(
      txn.saga({
        gid: 'saga-unreachable',
        steps: [
          debit('i1', 10),
          {
            name: 'nowhere',
            action: { service: 'default/txn.nowhere:1.0.0', method: 'go' },
            compensate: { service: 'default/txn.nowhere:1.0.0', method: 'undo' },
            retries: 1,
            retryDelayMs: 10,
            timeoutMs: 500,
          },
        ],
      }),
      (err: unknown) => isPeakError(err, ErrorCodes.TXN_ABORTED),
    );
    assert.equal((await shop.balance('i1')).balance, 100);
    const view = await finished('saga-unreachable');
    assert.equal(view.status, 'failed');
    assert.match(view.reason ?? '', /nowhere/);
  });

  // ---------------------------------------------------------------- TCC

  it('TCC: tries, then confirms', async () => {
    const out = await txn.tcc({ gid: 'tcc-ok', branches: [tccFrom('j1', 40), tccTo('j2', 40)] });
    assert.equal(out.status, 'succeeded');
    assert.deepEqual(await shop.balance('j1'), { balance: 60, frozen: 0, incoming: 0 });
    assert.deepEqual(await shop.balance('j2'), { balance: 40, frozen: 0, incoming: 0 });
    // Its tries and confirms all ride in its end (the timeline), merged by `peak txn show`.
    const view = await finished('tcc-ok', (v) => v.branches.length >= 4);
    assert.deepEqual(view.branches.map((b) => `${b.branch}.${b.op}:${b.status}`).sort(), [
      'from.confirm:succeeded',
      'from.try:succeeded',
      'to.confirm:succeeded',
      'to.try:succeeded',
    ]);
  });

  it('journal: two inserts of one gid in one batch: the first is written and told so, the other is not', async () => {
    const pool = new pg.Pool({ connectionString: server.postgresUrl(), max: 2 });
    try {
      const journal = new TxnJournal(pool, 'journal-test', 1000);
      const insert = (amount: number) =>
        journal.write({
          kind: 'insert',
          gid: 'journal-twice',
          txnKind: 'tcc',
          status: 'running',
          spec: { amount },
          deadline: Date.now() + 60_000,
          leaseMs: 1000,
        });
      // Written in one turn: one batch.
      const applied = await Promise.all([insert(1), insert(2), insert(3)]);
      assert.deepEqual(applied, [true, false, false]);
      const { rows } = await pool.query<{ spec: { amount: number } }>(
        'SELECT spec FROM peak.txn_globals WHERE gid = $1',
        ['journal-twice'],
      );
      assert.deepEqual(
        rows.map((r) => r.spec.amount),
        [1],
      );
    } finally {
      await pool.end();
    }
  });

  it('journal: its batch statement keeps one index lookup per status change as the table grows (statistics taken again)', async () => {
    const pool = new pg.Pool({ connectionString: server.postgresUrl(), max: 3 });
    const probe = await pool.connect();
    try {
      // The statement prepared the way pg-auto-prepare does, its generic plan made now,
      // while the table is small.
      await probe.query('SET plan_cache_mode = force_generic_plan');
      await probe.query(
        `PREPARE flush(text, jsonb, jsonb, bigint, jsonb, text, bigint) AS ${FLUSH_SQL}`,
      );
      const status = pg.escapeLiteral(
        JSON.stringify([
          { gid: 'nobody', status: 'succeeded', reason: null, from: 'running', timeline: null },
        ]),
      );
      const execute = `EXECUTE flush('journal-grow', '[]', ${status}, 1000, '[]', NULL, 1)`;
      const plan = async () =>
        (await probe.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${execute}`)).rows
          .map((r) => r['QUERY PLAN'])
          .join('\n');
      await probe.query(execute);
      const analyzed = async () =>
        Number(
          (
            await pool.query<{ n: string }>(
              "SELECT analyze_count AS n FROM pg_stat_user_tables WHERE relid = 'peak.txn_globals'::regclass",
            )
          ).rows[0]!.n,
        );
      const before = await analyzed();
      // 3 000 transactions with a spec the size of a two-step saga's (~800 bytes).
      const journal = new TxnJournal(pool, 'journal-grow', 1000);
      const spec = { steps: [{ name: 'x'.repeat(700) }] };
      for (let b = 0; b < 3; b++) {
        await Promise.all(
          Array.from({ length: 1000 }, (_, i) =>
            journal.write({
              kind: 'insert',
              gid: `journal-grow-${b}-${i}`,
              txnKind: 'saga',
              status: 'running',
              spec,
              deadline: Date.now() + 60_000,
              leaseMs: 1000,
            }),
          ),
        );
      }
      await waitFor(
        'two ANALYZEs of peak.txn_globals by the journal (at 1 000 rows and after the table doubled)',
        async () => (await analyzed()) >= before + 2,
        20_000,
      );
      const after = await plan();
      assert.match(after, /Index Scan using txn_globals_pkey on txn_globals g/, after);
      assert.doesNotMatch(after, /Seq Scan on txn_globals/, after);
    } finally {
      probe.release(true);
      await pool.query("DELETE FROM peak.txn_globals WHERE owner = 'journal-grow'");
      await pool.end();
    }
  });

  it("store: listing the unfinished and recovery's claim read the unfinished index, not the whole table (generic plans)", async () => {
    const pool = new pg.Pool({ connectionString: server.postgresUrl(), max: 1 });
    try {
      // 20 000 finished transactions and one unfinished, its statistics taken.
      await pool.query(`INSERT INTO peak.txn_globals (gid, kind, status, spec, deadline, finished_at)
        SELECT 'plan-done-' || g, 'saga', 'succeeded', '{}'::jsonb, now(), now()
          FROM generate_series(1, 20000) g`);
      await pool.query(`INSERT INTO peak.txn_globals (gid, kind, status, spec, deadline, owner, lease_until)
        VALUES ('plan-open', 'saga', 'running', '{}'::jsonb, now() + interval '1 min', 'nobody',
                now() + interval '1 min')`);
      await pool.query('ANALYZE peak.txn_globals');
      await pool.query('SET plan_cache_mode = force_generic_plan');
      const plan = async (name: string, types: string, sql: string, args: string) => {
        await pool.query(`PREPARE ${name}(${types}) AS ${sql}`);
        return (await pool.query<{ 'QUERY PLAN': string }>(`EXPLAIN EXECUTE ${name}(${args})`)).rows
          .map((r) => r['QUERY PLAN'])
          .join('\n');
      };
      const list = await plan(
        'list_open',
        'bigint',
        `SELECT gid FROM peak.txn_globals WHERE status IN ${ACTIVE_SQL} ORDER BY created_at DESC LIMIT $1`,
        '1000',
      );
      const claim = await plan(
        'claim_due',
        'text, bigint, bigint',
        CLAIM_DUE_SQL,
        "'nobody', 1000, 20",
      );
      for (const [what, text] of [
        ['the unfinished listing', list],
        ['the claim', claim],
      ] as const) {
        assert.match(text, /txn_globals_due/, `${what} reads the unfinished index:\n${text}`);
        assert.doesNotMatch(
          text,
          /Seq Scan on txn_globals|txn_globals_created/,
          `${what}:\n${text}`,
        );
      }
      const listed = await admin.txn.list({ status: 'active', limit: 1000 });
      assert.ok(listed.some((t) => t.gid === 'plan-open'));
      assert.ok(!listed.some((t) => t.gid.startsWith('plan-done-')));
    } finally {
      await pool.query("DELETE FROM peak.txn_globals WHERE gid LIKE 'plan-%'");
      await pool.end();
    }
  });

  it('retention: finished transactions started before the cutoff go, with their rows; active and recent ones stay', async () => {
    const pool = new pg.Pool({ connectionString: server.postgresUrl(), max: 2 });
    try {
      const journal = new TxnJournal(pool, 'prune-test', 60_000);
      const make = async (gid: string, end?: 'succeeded' | 'failed') => {
        await journal.write({
          kind: 'insert',
          gid,
          txnKind: 'saga',
          status: 'running',
          spec: {},
          deadline: Date.now() + 60_000,
          leaseMs: 60_000,
        });
        await journal.write({
          kind: 'branch',
          gid,
          branch: 'b',
          op: 'action',
          status: 'failed',
          attempts: 1,
          startedAt: Date.now(),
          finishedAt: Date.now(),
        });
        if (end === 'failed') await journal.write({ kind: 'status', gid, status: 'aborting' });
        if (end !== undefined) await journal.write({ kind: 'status', gid, status: end });
      };
      await make('prune-done-old', 'succeeded');
      await make('prune-failed-old', 'failed');
      await make('prune-running-old');
      await make('prune-done-new', 'succeeded');
      await pool.query(
        `UPDATE peak.txn_globals SET created_at = now() - interval '10 days'
          WHERE gid IN ('prune-done-old', 'prune-failed-old', 'prune-running-old')`,
      );
      const deleted = await pruneFinished(pool, Date.now() - 7 * 86_400_000, 1000);
      assert.equal(deleted, 2);
      const left = await pool.query<{ gid: string }>(
        `SELECT gid FROM peak.txn_globals WHERE gid LIKE 'prune-%' ORDER BY gid`,
      );
      assert.deepEqual(
        left.rows.map((r) => r.gid),
        ['prune-done-new', 'prune-running-old'],
      );
      const rows = await pool.query<{ gid: string }>(
        `SELECT DISTINCT gid FROM peak.txn_branches WHERE gid LIKE 'prune-%' ORDER BY gid`,
      );
      assert.deepEqual(
        rows.rows.map((r) => r.gid),
        ['prune-done-new', 'prune-running-old'],
      );
      // The cutoff bounds a batch too: nothing left to take.
      assert.equal(await pruneFinished(pool, Date.now() - 7 * 86_400_000, 1000), 0);
    } finally {
      await pool.query(`DELETE FROM peak.txn_globals WHERE gid LIKE 'prune-%'`);
      await pool.end();
    }
  });

  it('TCC: submits of one gid at once are one transaction, driven once, by the first', async () => {
    const submit = (amount: number) =>
      txn.tcc({ gid: 'tcc-twice', branches: [tccFrom('p1', amount), tccTo('p2', amount)] });
    const outcomes = await Promise.all([submit(10), submit(20), submit(30)]);
    assert.deepEqual(
      outcomes.map((o) => o.status),
      ['succeeded', 'succeeded', 'succeeded'],
    );
    const p1 = await shop.balance('p1');
    const p2 = await shop.balance('p2');
    assert.ok([10, 20, 30].includes(p2.balance), JSON.stringify({ p1, p2 }));
    assert.deepEqual(p1, { balance: 100 - p2.balance, frozen: 0, incoming: 0 });
    assert.deepEqual(p2, { balance: p2.balance, frozen: 0, incoming: 0 });
    assert.deepEqual((await shop.effects('tcc-twice')).sort(), [
      'from:confirm',
      'from:try',
      'to:confirm',
      'to:try',
    ]);
  });

  it('TCC: a refused try cancels every branch (the refused one an empty cancel)', async () => {
    await assert.rejects(
      txn.tcc({ gid: 'tcc-refused', branches: [tccTo('m2', 500), tccFrom('m1', 500)] }),
      (err: unknown) => isPeakError(err, ErrorCodes.TXN_ABORTED),
    );
    assert.deepEqual(await shop.balance('m1'), { balance: 100, frozen: 0, incoming: 0 });
    assert.deepEqual(await shop.balance('m2'), { balance: 0, frozen: 0, incoming: 0 });
    assert.deepEqual((await shop.effects('tcc-refused')).sort(), ['to:cancel', 'to:try']);
  });

  // ---------------------------------------------------------------- operations

  it('stop: a running saga is rolled back, its held step filtered when it answers', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let reached!: () => void;
    const arrived = new Promise<void>((r) => {
      reached = r;
    });
    shop.hooks.set('credit', async () => {
      shop.hooks.delete('credit');
      reached();
      await gate;
    });
    await txn.saga(
      { gid: 'saga-stop', steps: [debit('k1', 10), credit('a2', 10, { timeoutMs: 30_000 })] },
      { wait: false },
    );
    await arrived;
    const stopped = await admin.txn.stop('saga-stop');
    assert.equal(stopped.status, 'aborting');
    const view = await finished('saga-stop');
    release();
    assert.equal(view.status, 'failed');
    assert.match(view.reason ?? '', /stopped by admin-token/);
    assert.equal((await shop.balance('k1')).balance, 100);
    await waitFor('the held credit to end', () => shop.server.inFlight === 0);
    assert.equal((await shop.balance('a2')).balance, 0);
    // A finished one cannot be stopped.
    await assert.rejects(admin.txn.stop('saga-stop'), (err: unknown) =>
      isPeakError(err, ErrorCodes.TXN_STATE),
    );
  });

  it('retry limit: a compensation that keeps failing parks the transaction; retry finishes it', async () => {
    shop.hooks.set('uncredit', () => {
      throw new Error('the ledger is down');
    });
    shop.hooks.set('debit', () => {
      throw new PeakError(ErrorCodes.TXN_BRANCH_FAILED, 'account frozen');
    });
    const out = await txn.saga({
      gid: 'saga-parked',
      steps: [credit('a2', 5, { retries: 0 }), debit('a1', 5)],
    });
    assert.equal(out.status, 'aborting', 'the caller hears it could not finish yet');
    let view: TxnView | undefined;
    await waitFor(
      () => `saga-parked to be parked: ${JSON.stringify(view)}`,
      async () => {
        view = await admin.txn.show('saga-parked');
        return view.parked;
      },
    );
    assert.equal(view!.status, 'aborting');
    const shown = await runPeak(['txn', 'show', 'saga-parked', '--server', server.info.url]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /PARKED/);
    assert.match(shown.stdout, /credit\.compensate {2}failed/);

    shop.hooks.delete('uncredit');
    shop.hooks.delete('debit');
    await admin.txn.retry('saga-parked');
    const done = await finished('saga-parked');
    assert.equal(done.status, 'failed');
    assert.equal(done.parked, false);
    assert.deepEqual(
      (await shop.effects('saga-parked')).filter((e) => e.startsWith('credit')),
      ['credit:action', 'credit:compensate'],
    );
    const listed = await runPeak([
      'txn',
      'ls',
      '--status',
      'failed',
      '--server',
      server.info.url,
      '--json',
    ]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.ok(
      (JSON.parse(listed.stdout) as { globals: { gid: string }[] }).globals.some(
        (g) => g.gid === 'saga-parked',
      ),
    );
  });

  // ---------------------------------------------------------------- two-phase messages

  const published = async (gid: string) =>
    (await admin.mq.query({ key: gid })).filter((m) => m.properties['peak-txn-gid'] === gid);

  it('msg: the message follows its committed local transaction, and not a rolled-back one', async () => {
    await admin.mq.createTopic({ name: 'txn.orders' });
    const check = call('checkMsg');
    const ok = await txn.message({
      gid: 'msg-ok',
      topic: 'txn.orders',
      message: { body: 'order 1 placed', keys: ['msg-ok'] },
      check,
    });
    await ok.run(shop.db, (client) =>
      client.query("UPDATE accounts SET balance = balance + 1 WHERE id = 'b2'"),
    );
    assert.equal((await txn.get('msg-ok')).status, 'succeeded');
    await waitFor('msg-ok to be published', async () => (await published('msg-ok')).length === 1);

    const bad = await txn.message({
      gid: 'msg-rolled-back',
      topic: 'txn.orders',
      message: { body: 'order 2 placed', keys: ['msg-rolled-back'] },
      check,
    });
    await assert.rejects(
      bad.run(shop.db, async (client) => {
        await client.query("UPDATE accounts SET balance = balance + 1 WHERE id = 'b2'");
        throw new Error('out of stock');
      }),
      /out of stock/,
    );
    assert.equal((await txn.get('msg-rolled-back')).status, 'failed');
    assert.equal((await shop.balance('b2')).balance, 1);
  });

  it('msg: join writes the message into a transaction of the caller (one commit with its own barrier), submit and abort after it; over RPC and over HTTP', async () => {
    for (const transport of ['rpc', 'http'] as const) {
      const client = new TxnClient({ servers: server.info.url, transport });
      const spec = (gid: string, checkAfterMs?: number) => ({
        gid,
        topic: 'txn.orders',
        message: { body: `${gid} placed`, keys: [gid] },
        check: call('checkMsg'),
        ...(checkAfterMs === undefined ? {} : { checkAfterMs }),
      });
      // A TCC confirm's barrier, the message's row and the work: one local transaction.
      const ok = await client.message(spec(`msg-join-${transport}`));
      await barrier(
        shop.db,
        { gid: `tcc-join-${transport}`, branch: 'o', op: 'confirm' },
        async (c) => {
          await ok.join(c);
          await c.query("UPDATE accounts SET balance = balance + 1 WHERE id = 'r2'");
        },
      );
      assert.equal((await ok.submit()).status, 'succeeded');
      assert.equal((await ok.submit()).status, 'succeeded', 'a second submit changes nothing');
      await waitFor(
        `${ok.gid} to be published`,
        async () => (await published(ok.gid)).length === 1,
      );

      const rolledBack = await client.message(spec(`msg-join-rb-${transport}`));
      await assert.rejects(
        barrier(
          shop.db,
          { gid: `tcc-join-rb-${transport}`, branch: 'o', op: 'confirm' },
          async (c) => {
            await rolledBack.join(c);
            await c.query("UPDATE accounts SET balance = balance + 1 WHERE id = 'r2'");
            throw new Error('refused');
          },
        ),
        /refused/,
      );
      assert.equal((await rolledBack.abort()).status, 'failed');
      await assert.rejects(rolledBack.submit(), (err: unknown) =>
        isPeakError(err, ErrorCodes.TXN_STATE),
      );

      // Rolled back by the check-back (its caller never got to it): join refuses, nothing runs.
      const late = await client.message(spec(`msg-join-late-${transport}`, 300));
      assert.equal((await finished(late.gid)).status, 'failed');
      await assert.rejects(
        barrier(
          shop.db,
          { gid: `tcc-join-late-${transport}`, branch: 'o', op: 'confirm' },
          async (c) => {
            await late.join(c);
            await c.query("UPDATE accounts SET balance = balance + 1 WHERE id = 'r2'");
          },
        ),
        (err: unknown) =>
          isPeakError(err, ErrorCodes.TXN_STATE) && /already decided/.test(err.message),
      );
      assert.equal(
        (await published(rolledBack.gid)).length + (await published(late.gid)).length,
        0,
      );
    }
    assert.equal(
      (await shop.balance('r2')).balance,
      2,
      'one unit a transport: the committed joins only',
    );
  });

  it('msg: takes the produce grant of its topic besides txn, as a send would (over RPC and HTTP)', async () => {
    const txnOnlyToken = (await admin.apps.create('txn.only', ['txn'])).credential;
    const txnOnly = new TxnClient({ servers: server.info.url, token: txnOnlyToken });
    await assert.rejects(
      new TxnClient({ servers: server.info.url, token: txnOnlyToken, transport: 'http' }).message({
        gid: 'msg-no-grant-http',
        topic: 'txn.orders',
        message: { body: 'order 6 placed' },
        check: call('checkMsg'),
      }),
      (err: unknown) =>
        isPeakError(err, ErrorCodes.FORBIDDEN) && /produce:txn\.orders/.test(err.message),
    );
    const spec = (gid: string) => ({
      gid,
      topic: 'txn.orders',
      message: { body: 'order 5 placed', keys: [gid] },
      check: call('checkMsg'),
    });
    await assert.rejects(
      txnOnly.message(spec('msg-no-grant')),
      (err: unknown) =>
        isPeakError(err, ErrorCodes.FORBIDDEN) && /produce:txn\.orders/.test(err.message),
    );
    const granted = new TxnClient({
      servers: server.info.url,
      token: (await admin.apps.create('txn.producer', ['txn', 'produce:txn.orders'])).credential,
    });
    const p = await granted.message(spec('msg-granted'));
    assert.equal((await txn.get(p.gid)).status, 'prepared');
    await assert.rejects(
      p.run(shop.db, async () => {
        throw new Error('not this time');
      }),
      /not this time/,
    );
    assert.equal((await txn.get(p.gid)).status, 'failed');
  });

  it('msg: after the caller died between commit and submit, the check-back publishes', async () => {
    const p = await txn.message({
      gid: 'msg-crash-committed',
      topic: 'txn.orders',
      message: { body: 'order 3 placed', keys: ['msg-crash-committed'] },
      check: call('checkMsg'),
      checkAfterMs: 300,
    });
    // The local transaction commits; the caller "dies" before submitting.
    await barrier(shop.db, { gid: p.gid, branch: '00', op: 'msg' }, (client) =>
      client.query("UPDATE accounts SET balance = balance + 1 WHERE id = 'b2'"),
    );
    const view = await finished(p.gid);
    assert.equal(view.status, 'succeeded');
    assert.ok((shop.calls.get('checkMsg') ?? 0) >= 1);
    await waitFor('its message to be published', async () => (await published(p.gid)).length === 1);
  });

  it('msg: a COMMIT whose answer was lost is not aborted: the check-back finds it committed and publishes', async () => {
    const p = await txn.message({
      gid: 'msg-commit-lost',
      topic: 'txn.orders',
      message: { body: 'order 7 placed', keys: ['msg-commit-lost'] },
      check: call('checkMsg'),
      checkAfterMs: 300,
    });
    // The COMMIT runs, then its answer is "lost": the caller cannot know it committed.
    const lossy = {
      connect: async () => {
        const client = await shop.db.connect();
        const query = client.query.bind(client) as (sql: string) => Promise<unknown>;
        return Object.assign(client, {
          query: async (sql: string, ...rest: unknown[]) => {
            const res = await (query as (...a: unknown[]) => Promise<unknown>)(sql, ...rest);
            if (sql === 'COMMIT') throw new Error('connection lost while reading the reply');
            return res;
          },
        });
      },
    } as unknown as pg.Pool;
    await assert.rejects(
      p.run(lossy, (client) =>
        client.query("UPDATE accounts SET balance = balance + 1 WHERE id = 'r2'"),
      ),
      /connection lost/,
    );
    assert.equal((await txn.get(p.gid)).status, 'prepared', 'not aborted blindly');
    assert.equal((await finished(p.gid)).status, 'succeeded');
    await waitFor('its message to be published', async () => (await published(p.gid)).length === 1);
  });

  it('msg: a caller that died before its local transaction: the check-back rolls it back for good', async () => {
    const p = await txn.message({
      gid: 'msg-crash-never',
      topic: 'txn.orders',
      message: { body: 'order 4 placed', keys: ['msg-crash-never'] },
      check: call('checkMsg'),
      checkAfterMs: 300,
    });
    const view = await finished(p.gid);
    assert.equal(view.status, 'failed');
    // The local transaction arriving now cannot commit: the check-back took its row.
    await assert.rejects(
      p.run(shop.db, (client) => client.query('SELECT 1')),
      (err: unknown) => isPeakError(err, ErrorCodes.TXN_STATE),
    );
    assert.equal((await published(p.gid)).length, 0);
  });
});
