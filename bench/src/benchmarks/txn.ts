/**
 * Transactions across services: two-branch sagas/s and TCCs/s through the coordinator in
 * `peak server`, every branch wrapped in the barrier, against the same work without it:
 *
 * - local: the two branches' local transactions (BEGIN; UPDATE one account; COMMIT, twice)
 *   run by the caller itself on the business database: the floor;
 * - rpc: the caller calls the two branch methods over RPC itself (each a plain local
 *   transaction, no barrier): what the service would do without peakware/txn, no safety;
 * - saga: one HTTP call to the coordinator, which writes the transaction (batched), calls
 *   debit then credit over RPC (each a local transaction with its barrier row), and writes
 *   its end;
 * - tcc: the same with try (both at once), then confirm (both at once): four branch calls;
 * - sagaNB: the saga with branches that do not use the barrier (plain local transactions,
 *   as rpc's): not safe (a repeated call runs twice), only to split the saga's cost between
 *   the coordinator and the barrier;
 * - local1 and saga1: local and saga with each branch's work as one statement: two
 *   autocommit UPDATEs by the caller, against branches that put the barrier insert and the
 *   UPDATE in one statement (`barrierStatement`): one round trip per branch, not three;
 * - send, msg and msgHttp: a local transaction (a transfer between two accounts) and its
 *   event: sent to the broker after the COMMIT (a crash between loses it), against a two-phase message
 *   (prepare, the local transaction with the message's barrier row, submit: both or
 *   neither) over the node's RPC port, and over HTTP.
 *
 * Processes: the peak server (embedded PostgreSQL, the business database beside it), the
 * branch service, and this one driving a closed loop with 64 in flight over 2 000 accounts
 * (no hot row). DTM, the anchor: 935 two-branch sagas/s on 4 cores with MySQL, about
 * 10 900/s with its Redis store. Run as `--serve <peak|provider> ...`, this file is one of
 * the processes.
 *
 * Diagnosis: `PEAK_BENCH_TXN_ONLY=saga,local` runs only the named contenders;
 * `PEAK_BENCH_TXN_DIAG=1` prints, after each window, the WAL each operation wrote by record
 * type and the statements by execution time (see printDiagnosis).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdminClient } from 'peakware/admin';
import { Producer } from 'peakware/mq';
import { HttpRegistry } from 'peakware/registry';
import { defineService, definitionKey, RpcClient, RpcServer } from 'peakware/rpc';
import { PeakServer } from 'peakware/server';
import {
  barrier,
  barrierStatement,
  checkPrepared,
  installBarrier,
  TxnClient,
  txnBranch,
} from 'peakware/txn';
import pg from 'pg';
import { z } from 'zod';
import { type Benchmark, median, round } from '../bench.js';
import { childNodeArgs, postgresCpuUs, postmasterOf, processCpuUs } from '../child-server.js';
import { dataDirWithStatements } from '../pg-stat-statements.js';

const move = {
  input: z.object({ account: z.number().int(), amount: z.number().int() }),
  output: z.unknown(),
};
const ledger = defineService({
  name: 'bench.ledger',
  methods: {
    debit: move,
    undebit: move,
    credit: move,
    uncredit: move,
    tryDebit: move,
    confirmDebit: move,
    cancelDebit: move,
    tryCredit: move,
    confirmCredit: move,
    cancelCredit: move,
    plainDebit: move,
    plainCredit: move,
    debitOne: move,
    undebitOne: move,
    creditOne: move,
    uncreditOne: move,
    // A two-phase message's check-back (called only when a submit never came).
    checkMsg: { input: z.object({ gid: z.string() }), output: z.unknown() },
  },
});
const KEY = definitionKey(ledger);
const ACCOUNTS = 2000;
const IN_FLIGHT = 64;
const DEBIT = 'UPDATE accounts SET balance = balance - $2 WHERE id = $1';
/** The topic of the two-phase message contenders' events. */
const EVENTS = 'bench.txn.events';
const CREDIT = 'UPDATE accounts SET balance = balance + $2 WHERE id = $1';

async function serve(kind: string, extra: string[]): Promise<void> {
  if (kind === 'peak') {
    const server = await PeakServer.start({ dataDir: extra[0]!, port: 0 });
    const admin = new pg.Client({ connectionString: server.postgresUrl() });
    await admin.connect();
    await admin.query('DROP DATABASE IF EXISTS bench_txn');
    await admin.query('CREATE DATABASE bench_txn');
    await admin.end();
    await new AdminClient({
      servers: server.info.url,
      token: server.info.adminToken!,
    }).mq.createTopic({ name: EVENTS });
    process.stdout.write(
      `${JSON.stringify({
        url: server.info.url,
        db: server.postgresUrl('bench_txn'),
        credential: server.credential(),
      })}\n`,
    );
    process.once('SIGTERM', () => void server.stop().then(() => process.exit(0)));
    return;
  }
  const [serverUrl, dbUrl] = extra as [string, string];
  const db = new pg.Pool({ connectionString: dbUrl, max: 20 });
  const guarded = (sql: string) => (input: { account: number; amount: number }) =>
    barrier(db, txnBranch(), (client) => client.query(sql, [input.account, input.amount])).then(
      () => ({}),
    );
  // The same work as one statement gated by the barrier: one round trip, no BEGIN/COMMIT.
  const oneStatement = (sql: string) => (input: { account: number; amount: number }) =>
    barrierStatement(db, txnBranch(), (gate) => `${sql} AND ${gate} RETURNING id`, [
      input.account,
      input.amount,
    ]).then(() => ({}));
  const plain = (sql: string) => async (input: { account: number; amount: number }) => {
    const client = await db.connect();
    try {
      await client.query('BEGIN');
      await client.query(sql, [input.account, input.amount]);
      await client.query('COMMIT');
      return {};
    } finally {
      client.release();
    }
  };
  const registry = new HttpRegistry({ servers: serverUrl });
  const server = new RpcServer({ registry, maxInFlight: 100_000 });
  server.addService(ledger, {
    debit: guarded(DEBIT),
    undebit: guarded(CREDIT),
    credit: guarded(CREDIT),
    uncredit: guarded(DEBIT),
    tryDebit: guarded(
      'UPDATE accounts SET balance = balance - $2, frozen = frozen + $2 WHERE id = $1',
    ),
    confirmDebit: guarded('UPDATE accounts SET frozen = frozen - $2 WHERE id = $1'),
    cancelDebit: guarded(
      'UPDATE accounts SET balance = balance + $2, frozen = frozen - $2 WHERE id = $1',
    ),
    tryCredit: guarded('UPDATE accounts SET incoming = incoming + $2 WHERE id = $1'),
    confirmCredit: guarded(
      'UPDATE accounts SET incoming = incoming - $2, balance = balance + $2 WHERE id = $1',
    ),
    cancelCredit: guarded('UPDATE accounts SET incoming = incoming - $2 WHERE id = $1'),
    plainDebit: plain(DEBIT),
    plainCredit: plain(CREDIT),
    debitOne: oneStatement(DEBIT),
    undebitOne: oneStatement(CREDIT),
    creditOne: oneStatement(CREDIT),
    uncreditOne: oneStatement(DEBIT),
    checkMsg: ({ gid }) => checkPrepared(db, gid),
  });
  await server.start();
  process.stdout.write('{}\n');
  process.once('SIGTERM', () => void server.stop().then(() => process.exit(0)));
}

/** Starts this module as `--serve <args>`; resolves with the JSON of its first stdout line. */
function startChild(
  args: string[],
): Promise<{ child: ChildProcess; info: Record<string, string> }> {
  const child = spawn(
    process.execPath,
    [...childNodeArgs(), fileURLToPath(import.meta.url), '--serve', ...args],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args[0]} did not start in 120 s`)), 120_000);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      resolve({ child, info: JSON.parse(out.slice(0, nl)) as Record<string, string> });
    });
    child.once('exit', (code) => reject(new Error(`${args[0]} exited with ${code}`)));
  });
}

/** A closed loop of `inFlight` workers running `op` for `ms`: completed ops per second, and how many. */
async function closedLoop(
  op: (i: number) => Promise<unknown>,
  ms: number,
): Promise<{ rate: number; done: number }> {
  const until = performance.now() + ms;
  let done = 0;
  let seq = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (performance.now() < until) {
        await op(seq++);
        done++;
      }
    }),
  );
  return { rate: done / ((performance.now() - started) / 1000), done };
}

const pair = (i: number) => {
  const from = (i * 7919) % ACCOUNTS;
  return { from, to: (from + 1 + (i % (ACCOUNTS - 1))) % ACCOUNTS };
};

/**
 * `PEAK_BENCH_TXN_DIAG=1`: after each contender's window, where its PostgreSQL work went, per
 * operation: the WAL it wrote by record type (pg_walinspect, from the window's first LSN) and
 * the statements by execution time (pg_stat_statements, reset as each window starts;
 * execution time is wall time, so on a busy machine it includes waiting for a core).
 */
async function printDiagnosis(pool: pg.Pool, name: string, lsn: string, ops: number) {
  const wal = await pool.query<{ t: string; n: string; rec: string; fpi: string; total: string }>(
    `SELECT "resource_manager/record_type" AS t, round(count::numeric / $2, 2)::text AS n,
            round(record_size::numeric / $2, 1)::text AS rec, round(fpi_size::numeric / $2, 1)::text AS fpi,
            round(combined_size::numeric / $2, 1)::text AS total
       FROM pg_get_wal_stats($1::pg_lsn, pg_current_wal_insert_lsn(), true)
      WHERE count > 0 ORDER BY combined_size DESC LIMIT 12`,
    [lsn, ops],
  );
  const stmts = await pool.query<{ us: string; n: string; each: string; q: string }>(
    `SELECT round(total_exec_time::numeric * 1000 / $1, 1)::text AS us, round(calls::numeric / $1, 3)::text AS n,
            round(total_exec_time::numeric * 1000 / greatest(calls, 1), 1)::text AS each,
            left(regexp_replace(query, '\\s+', ' ', 'g'), 100) AS q
       FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 10`,
    [ops],
  );
  const lines = [
    `diagnosis of ${name} (${ops} operations), per operation:`,
    '  WAL by record type: count · record bytes · full-page-image bytes · total bytes',
    ...wal.rows.map(
      (r) => `    ${r.t.padEnd(28)} ${r.n.padStart(6)} · ${r.rec} · ${r.fpi} · ${r.total}`,
    ),
    '  statements by execution time: µs · calls · µs each',
    ...stmts.rows.map(
      (r) => `    ${r.us.padStart(7)} · ${r.n.padStart(6)} · ${r.each.padStart(8)}  ${r.q}`,
    ),
  ];
  process.stderr.write(`${lines.join('\n')}\n`);
}

export const benchmark: Benchmark = {
  name: 'txn',
  description:
    'two-branch sagas/s and TCCs/s through the coordinator with barriers, vs the same two local transactions run directly and over plain RPC; two-phase messages vs a send after the commit',
  async run({ runs, quick, progress }) {
    const ms = quick ? 1500 : 4000;
    const diagnose = process.env.PEAK_BENCH_TXN_DIAG === '1';
    // Only these contenders (a comma list of their names), for a diagnostic run.
    const only = process.env.PEAK_BENCH_TXN_ONLY?.split(',').map((n) => n.trim());
    // A diagnostic run preloads pg_stat_statements (PostgreSQL restarted once, before the run).
    const dataDir = diagnose
      ? (await dataDirWithStatements('peak-bench-txn-')).dataDir
      : mkdtempSync(path.join(os.tmpdir(), 'peak-bench-txn-'));
    const children: ChildProcess[] = [];
    let db: pg.Pool | undefined;
    let rpc: RpcClient | undefined;
    let registry: HttpRegistry | undefined;
    try {
      progress('starting peak server (its own process)');
      const peak = await startChild(['peak', dataDir]);
      children.push(peak.child);
      const {
        url,
        db: dbUrl,
        credential,
      } = peak.info as {
        url: string;
        db: string;
        credential: string;
      };
      // The local app's credential (every SDK grant): the branch service (it inherits the
      // environment), the registry and the TxnClient send it, as a deployed service would.
      process.env.PEAK_CREDENTIAL = credential;
      db = new pg.Pool({ connectionString: dbUrl, max: 20 });
      await installBarrier(db);
      await db.query(`CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL,
        frozen bigint NOT NULL DEFAULT 0, incoming bigint NOT NULL DEFAULT 0)`);
      await db.query(
        'INSERT INTO accounts (id, balance) SELECT g, 1000000000 FROM generate_series(0, $1) g',
        [ACCOUNTS - 1],
      );
      progress('starting the branch service (its own process)');
      const provider = await startChild(['provider', url, dbUrl]);
      children.push(provider.child);
      registry = new HttpRegistry({ servers: url });
      rpc = new RpcClient({ registry, warmupMs: 0, cluster: 'failfast' });
      const ledgerClient = rpc.service(ledger);
      const txn = new TxnClient({ servers: url });
      const pool = db;
      // The postmaster is the parent of any backend: one of the pool's tells its pid.
      const backend = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      const postmaster = postmasterOf(backend.rows[0]!.pid);

      const local = async (i: number) => {
        const { from, to } = pair(i);
        for (const [sql, id] of [
          [DEBIT, from],
          [CREDIT, to],
        ] as const) {
          const client = await pool.connect();
          try {
            await client.query('BEGIN');
            await client.query(sql, [id, 1]);
            await client.query('COMMIT');
          } finally {
            client.release();
          }
        }
      };
      // The same two updates, each one statement on its own (autocommit): one round trip each.
      const local1 = async (i: number) => {
        const { from, to } = pair(i);
        await pool.query(DEBIT, [from, 1]);
        await pool.query(CREDIT, [to, 1]);
      };
      const direct = async (i: number) => {
        const { from, to } = pair(i);
        await ledgerClient.plainDebit({ account: from, amount: 1 });
        await ledgerClient.plainCredit({ account: to, amount: 1 });
      };
      const call = (method: string) => ({ service: KEY, method });
      // A two-step saga (debit, then credit) over the given methods of the branch service.
      const sagaOf =
        (debit: string, undebit: string, credit: string, uncredit: string) => (i: number) => {
          const { from, to } = pair(i);
          return txn.saga({
            steps: [
              {
                name: 'debit',
                action: call(debit),
                compensate: call(undebit),
                payload: { account: from, amount: 1 },
              },
              {
                name: 'credit',
                action: call(credit),
                compensate: call(uncredit),
                payload: { account: to, amount: 1 },
              },
            ],
          });
        };
      const saga = sagaOf('debit', 'undebit', 'credit', 'uncredit');
      // The same saga without the barrier in the branches (the diagnostic row: not safe).
      const sagaNB = sagaOf('plainDebit', 'plainCredit', 'plainCredit', 'plainDebit');
      const saga1 = sagaOf('debitOne', 'undebitOne', 'creditOne', 'uncreditOne');
      const tcc = (i: number) => {
        const { from, to } = pair(i);
        return txn.tcc({
          branches: [
            {
              name: 'from',
              try: call('tryDebit'),
              confirm: call('confirmDebit'),
              cancel: call('cancelDebit'),
              payload: { account: from, amount: 1 },
            },
            {
              name: 'to',
              try: call('tryCredit'),
              confirm: call('confirmCredit'),
              cancel: call('cancelCredit'),
              payload: { account: to, amount: 1 },
            },
          ],
        });
      };
      // A local transaction and its event: sent after the commit (a crash between loses the
      // event), or as a two-phase message (both or neither) over the node's RPC port or HTTP.
      const producer = new Producer({ servers: url });
      // The local transaction: one transfer (both accounts in one transaction, the books stay whole).
      const transfer = async (c: pg.PoolClient, i: number) => {
        const { from, to } = pair(i);
        await c.query(DEBIT, [from, 1]);
        await c.query(CREDIT, [to, 1]);
      };
      const event = (i: number) => ({ body: `transfer ${i}`, keys: [String(i)] });
      const send = async (i: number) => {
        const client = await pool.connect();
        try {
          await client.query('BEGIN');
          await transfer(client, i);
          await client.query('COMMIT');
        } finally {
          client.release();
        }
        await producer.send(EVENTS, event(i));
      };
      const msgOver = (client: TxnClient) => async (i: number) => {
        const m = await client.message({
          topic: EVENTS,
          message: event(i),
          check: call('checkMsg'),
        });
        await m.run(pool, (c) => transfer(c, i));
      };
      const msg = msgOver(txn);
      const msgHttp = msgOver(new TxnClient({ servers: url, transport: 'http' }));
      const contenders = {
        local,
        rpc: direct,
        saga,
        sagaNB,
        tcc,
        local1,
        saga1,
        send,
        msg,
        msgHttp,
      } as const;
      const rates: Record<keyof typeof contenders, number[]> = {
        local: [],
        rpc: [],
        saga: [],
        sagaNB: [],
        tcc: [],
        local1: [],
        saga1: [],
        send: [],
        msg: [],
        msgHttp: [],
      };
      // CPU per operation, µs, in each process: the coordinator's, the branches', the
      // caller's and PostgreSQL's (the control plane's and the business database's).
      const cpu: Record<
        keyof typeof contenders,
        { peak: number[]; branch: number[]; caller: number[]; pg: number[]; wal: number[] }
      > = {
        local: { peak: [], branch: [], caller: [], pg: [], wal: [] },
        rpc: { peak: [], branch: [], caller: [], pg: [], wal: [] },
        saga: { peak: [], branch: [], caller: [], pg: [], wal: [] },
        sagaNB: { peak: [], branch: [], caller: [], pg: [], wal: [] },
        tcc: { peak: [], branch: [], caller: [], pg: [], wal: [] },
        local1: { peak: [], branch: [], caller: [], pg: [], wal: [] },
        saga1: { peak: [], branch: [], caller: [], pg: [], wal: [] },
        send: { peak: [], branch: [], caller: [], pg: [], wal: [] },
        msg: { peak: [], branch: [], caller: [], pg: [], wal: [] },
        msgHttp: { peak: [], branch: [], caller: [], pg: [], wal: [] },
      };
      // WAL written by the whole PostgreSQL (both databases), bytes: how much each
      // contender's rows and index entries cost on disk.
      const walLsn = async () =>
        (await pool.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn'))
          .rows[0]!.lsn;
      const walBytes = async (from: string) =>
        Number(
          (
            await pool.query<{ d: string }>(
              'SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1::pg_lsn)::text AS d',
              [from],
            )
          ).rows[0]!.d,
        );
      if (diagnose) {
        await pool.query('CREATE EXTENSION IF NOT EXISTS pg_walinspect');
        await pool.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
      }
      progress('warming up');
      for (const op of Object.values(contenders)) await closedLoop(op, 1000);
      for (let r = 0; r < runs; r++) {
        for (const [name, op] of Object.entries(contenders) as [
          keyof typeof contenders,
          (i: number) => Promise<unknown>,
        ][]) {
          if (only !== undefined && !only.includes(name)) continue;
          const before = [
            processCpuUs(peak.child.pid),
            processCpuUs(provider.child.pid),
            process.cpuUsage(),
            postgresCpuUs(postmaster),
          ] as const;
          if (diagnose) await pool.query('SELECT pg_stat_statements_reset()');
          const lsn = await walLsn();
          const { rate, done } = await closedLoop(op, ms);
          cpu[name].wal.push((await walBytes(lsn)) / done);
          const mine = process.cpuUsage(before[2]);
          cpu[name].peak.push((processCpuUs(peak.child.pid) - before[0]) / done);
          cpu[name].branch.push((processCpuUs(provider.child.pid) - before[1]) / done);
          cpu[name].caller.push((mine.user + mine.system) / done);
          cpu[name].pg.push((postgresCpuUs(postmaster) - before[3]) / done);
          // After the CPU is read: the diagnosis's own statements are not the contender's.
          if (diagnose) await printDiagnosis(pool, name, lsn, done);
          rates[name].push(rate);
          progress(`run ${r + 1} ${name}: ${Math.round(rate)}/s`);
        }
      }
      const sum = await pool.query<{ total: string; frozen: string; incoming: string }>(
        'SELECT sum(balance)::text AS total, sum(frozen)::text AS frozen, sum(incoming)::text AS incoming FROM accounts',
      );
      const expected = String(ACCOUNTS * 1_000_000_000);
      const books = sum.rows[0]!;
      const figures = {
        'local.perSec': round(median(rates.local)),
        'rpc.perSec': round(median(rates.rpc)),
        'saga.perSec': round(median(rates.saga)),
        'sagaNB.perSec': round(median(rates.sagaNB)),
        'tcc.perSec': round(median(rates.tcc)),
        'local1.perSec': round(median(rates.local1)),
        'saga1.perSec': round(median(rates.saga1)),
        'send.perSec': round(median(rates.send)),
        'msg.perSec': round(median(rates.msg)),
        'msgHttp.perSec': round(median(rates.msgHttp)),
        ...Object.fromEntries(
          Object.entries(cpu).flatMap(([name, c]) => [
            [`${name}.peakCpuUsPerOp`, round(median(c.peak))],
            [`${name}.branchCpuUsPerOp`, round(median(c.branch))],
            [`${name}.callerCpuUsPerOp`, round(median(c.caller))],
            [`${name}.postgresCpuUsPerOp`, round(median(c.pg))],
            [`${name}.walBytesPerOp`, round(median(c.wal))],
          ]),
        ),
      } as Record<string, number>;
      const all = {
        'local/saga': round(figures['local.perSec']! / figures['saga.perSec']!),
        'rpc/saga': round(figures['rpc.perSec']! / figures['saga.perSec']!),
        // The coordinator's share alone, and what the barrier costs on top of it.
        'local/sagaNB': round(figures['local.perSec']! / figures['sagaNB.perSec']!),
        'sagaNB/saga': round(figures['sagaNB.perSec']! / figures['saga.perSec']!),
        'local/tcc': round(figures['local.perSec']! / figures['tcc.perSec']!),
        'local1/saga1': round(figures['local1.perSec']! / figures['saga1.perSec']!),
        'saga/goal2000': round(figures['saga.perSec']! / 2000),
        'saga1/goal2000': round(figures['saga1.perSec']! / 2000),
        // What a two-phase message costs over sending after the commit, and over HTTP.
        'send/msg': round(figures['send.perSec']! / figures['msg.perSec']!),
        'msg/msgHttp': round(figures['msg.perSec']! / figures['msgHttp.perSec']!),
      };
      // A run of some contenders only (PEAK_BENCH_TXN_ONLY) has no ratios for the others.
      const ratios = Object.fromEntries(Object.entries(all).filter(([, v]) => Number.isFinite(v)));
      return {
        figures,
        ratios,
        table: [
          [
            'contender',
            'per s (median)',
            'runs',
            'CPU µs/op peak · branch · caller · postgres',
            'WAL bytes/op',
          ],
          ...(
            [
              ['local', 'local: 2 local transactions by the caller'],
              ['rpc', 'rpc: 2 RPC calls, plain local transactions'],
              ['saga', 'saga: 2 branches, barriers, coordinator'],
              ['sagaNB', 'sagaNB: the saga without barriers (diagnostic; not safe)'],
              ['tcc', 'tcc: 2 branches (4 calls), barriers, coordinator'],
              ['local1', 'local1: 2 one-statement local transactions'],
              ['saga1', 'saga1: saga, one-statement branches (barrierStatement)'],
              ['send', 'send: 1 local transfer, then its event sent (not atomic)'],
              ['msg', 'msg: the same as a two-phase message (RPC port)'],
              ['msgHttp', 'msgHttp: the two-phase message over HTTP'],
            ] as const
          )
            .filter(([k]) => rates[k].length > 0)
            .map(([k, label]) => [
              label,
              figures[`${k}.perSec`] ?? Number.NaN,
              rates[k].map(Math.round).join(' '),
              `${figures[`${k}.peakCpuUsPerOp`]} · ${figures[`${k}.branchCpuUsPerOp`]} · ${figures[`${k}.callerCpuUsPerOp`]} · ${figures[`${k}.postgresCpuUsPerOp`]}`,
              figures[`${k}.walBytesPerOp`] ?? Number.NaN,
            ]),
          ...Object.entries(ratios).map(([k, v]) => [k, v, '', '', '']),
        ],
        notes: [
          `${IN_FLIGHT} in flight, closed loop, ${ms} ms per contender and run, ${ACCOUNTS} accounts; peak server, branch service and load in three processes, one embedded PostgreSQL for the control plane and the business database`,
          `books after the run: balance sum ${books.total} (expected ${expected}), frozen ${books.frozen}, incoming ${books.incoming} (expected 0 and 0)`,
        ],
      };
    } finally {
      await rpc?.close();
      await registry?.close();
      await db?.end();
      for (const c of children.reverse()) {
        c.kill('SIGTERM');
        await new Promise((r) => {
          const t = setTimeout(() => {
            c.kill('SIGKILL');
            r(undefined);
          }, 15_000);
          c.once('exit', () => {
            clearTimeout(t);
            r(undefined);
          });
        });
      }
      rmSync(dataDir, { recursive: true, force: true });
    }
  },
};

if (process.argv[2] === '--serve') await serve(process.argv[3]!, process.argv.slice(4));
