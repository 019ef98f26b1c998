/**
 * Test support for peakware/txn: a bank service whose branches move money between accounts
 * in their own database (not the control plane's), each handler wrapped in the barrier, with
 * saga (debit/credit and their compensations), TCC (try/confirm/cancel of a debit and a
 * credit) and the check-back of two-phase messages. Every effect that passed its barrier is
 * also written to `effects`, so a test can tell "ran once" from "ran twice". A test can
 * hold or fail any method through `hooks` (run before the barrier).
 */
import pg from 'pg';
import { z } from 'zod';
import { ErrorCodes, PeakError } from '../../src/core/errors.js';
import { HttpRegistry } from '../../src/registry/http-registry.js';
import { defineService, RpcServer } from '../../src/rpc/index.js';
import {
  barrier,
  branchCall,
  checkPrepared,
  installBarrier,
  type SagaStep,
  txnBranch,
} from '../../src/txn/index.js';

const move = {
  input: z.object({ account: z.string(), amount: z.number().int() }),
  output: z.unknown(),
};

/** The bank service's definition. */
export const bank = defineService({
  name: 'txn.bank',
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
    checkMsg: { input: z.object({ gid: z.string() }), output: z.unknown() },
  },
});

/** The saga step that debits `account` (compensated by `undebit`); `extra` sets its policy. */
export function debitStep(
  account: string,
  amount: number,
  extra: Partial<SagaStep> = {},
): SagaStep {
  return {
    name: 'debit',
    action: branchCall(bank, 'debit'),
    compensate: branchCall(bank, 'undebit'),
    payload: { account, amount },
    ...extra,
  };
}

/** The saga step that credits `account` (compensated by `uncredit`); `extra` sets its policy. */
export function creditStep(
  account: string,
  amount: number,
  extra: Partial<SagaStep> = {},
): SagaStep {
  return {
    name: 'credit',
    action: branchCall(bank, 'credit'),
    compensate: branchCall(bank, 'uncredit'),
    payload: { account, amount },
    ...extra,
  };
}

/** A hook run before a method's barrier: hold it, throw, or count. */
export type BankHook = (method: string, gid: string) => Promise<void> | void;

/** A running bank: its database, its RPC server and its hooks. */
export interface Bank {
  db: pg.Pool;
  server: RpcServer;
  hooks: Map<string, BankHook>;
  /** Calls that reached each method (before the barrier). */
  calls: Map<string, number>;
  balance(account: string): Promise<{ balance: number; frozen: number; incoming: number }>;
  /** Effects recorded for `gid` (one row per handler that passed its barrier). */
  effects(gid: string): Promise<string[]>;
  stop(): Promise<void>;
}

/** Creates database `name` on the server of `adminUrl` when it does not exist yet. */
export async function ensureDatabase(adminUrl: string, name: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
}

/** Starts the bank on database `dbUrl` (tables and barrier created), registered at `servers`. */
export async function startBank(
  dbUrl: string,
  servers: string | string[],
  accounts: Record<string, number>,
): Promise<Bank> {
  const db = new pg.Pool({ connectionString: dbUrl, max: 10 });
  await installBarrier(db);
  await db.query(`CREATE TABLE IF NOT EXISTS accounts (
      id text PRIMARY KEY, balance int NOT NULL CHECK (balance >= 0),
      frozen int NOT NULL DEFAULT 0, incoming int NOT NULL DEFAULT 0);
    CREATE TABLE IF NOT EXISTS effects (gid text, branch text, op text, at timestamptz DEFAULT now());`);
  for (const [id, balance] of Object.entries(accounts)) {
    await db.query(
      `INSERT INTO accounts (id, balance) VALUES ($1, $2)
       ON CONFLICT (id) DO UPDATE SET balance = $2, frozen = 0, incoming = 0`,
      [id, balance],
    );
  }
  const hooks = new Map<string, BankHook>();
  const calls = new Map<string, number>();
  const guarded =
    (method: string, sql: string, refuseWhenNone = false) =>
    async (input: { account: string; amount: number }) => {
      calls.set(method, (calls.get(method) ?? 0) + 1);
      const b = txnBranch();
      await hooks.get(method)?.(method, b.gid);
      return barrier(db, b, async (client) => {
        const res = await client.query(sql, [input.account, input.amount]);
        if (refuseWhenNone && res.rowCount === 0) {
          throw new PeakError(
            ErrorCodes.TXN_BRANCH_FAILED,
            `account ${input.account} cannot give ${input.amount}`,
          );
        }
        await client.query('INSERT INTO effects (gid, branch, op) VALUES ($1, $2, $3)', [
          b.gid,
          b.branch,
          b.op,
        ]);
        return { method, account: input.account };
      });
    };
  const registry = new HttpRegistry({ servers, leaseMs: 5000 });
  const server = new RpcServer({ registry });
  server.addService(bank, {
    debit: guarded(
      'debit',
      'UPDATE accounts SET balance = balance - $2 WHERE id = $1 AND balance >= $2',
      true,
    ),
    undebit: guarded('undebit', 'UPDATE accounts SET balance = balance + $2 WHERE id = $1'),
    credit: guarded('credit', 'UPDATE accounts SET balance = balance + $2 WHERE id = $1'),
    uncredit: guarded('uncredit', 'UPDATE accounts SET balance = balance - $2 WHERE id = $1'),
    tryDebit: guarded(
      'tryDebit',
      'UPDATE accounts SET balance = balance - $2, frozen = frozen + $2 WHERE id = $1 AND balance >= $2',
      true,
    ),
    confirmDebit: guarded('confirmDebit', 'UPDATE accounts SET frozen = frozen - $2 WHERE id = $1'),
    cancelDebit: guarded(
      'cancelDebit',
      'UPDATE accounts SET balance = balance + $2, frozen = frozen - $2 WHERE id = $1',
    ),
    tryCredit: guarded('tryCredit', 'UPDATE accounts SET incoming = incoming + $2 WHERE id = $1'),
    confirmCredit: guarded(
      'confirmCredit',
      'UPDATE accounts SET incoming = incoming - $2, balance = balance + $2 WHERE id = $1',
    ),
    cancelCredit: guarded(
      'cancelCredit',
      'UPDATE accounts SET incoming = incoming - $2 WHERE id = $1',
    ),
    checkMsg: async (input) => {
      calls.set('checkMsg', (calls.get('checkMsg') ?? 0) + 1);
      await hooks.get('checkMsg')?.('checkMsg', input.gid);
      return checkPrepared(db, input.gid);
    },
  });
  await server.start();
  return {
    db,
    server,
    hooks,
    calls,
    balance: async (account) => {
      const res = await db.query<{ balance: number; frozen: number; incoming: number }>(
        'SELECT balance, frozen, incoming FROM accounts WHERE id = $1',
        [account],
      );
      return res.rows[0]!;
    },
    effects: async (gid) => {
      const res = await db.query<{ branch: string; op: string }>(
        'SELECT branch, op FROM effects WHERE gid = $1 ORDER BY at, branch, op',
        [gid],
      );
      return res.rows.map((r) => `${r.branch}:${r.op}`);
    },
    stop: async () => {
      await server.stop();
      await registry.close();
      await db.end();
    },
  };
}
