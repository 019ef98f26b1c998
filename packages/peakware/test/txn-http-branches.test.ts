/**
 * HTTP branches: a saga's steps and a TCC's branches that are an outside service's HTTP
 * endpoints (test/txn-http-bank-fixture.ts, plain node:http in a process of its own, the
 * barrier on its own database), called by the coordinator of a real `peak server` (in this
 * process) under the URL prefix its operator allowed. Each call carries the global id,
 * branch and operation in headers and the coordinator's identity, which the bank verifies
 * against the control plane's keys. A 409 refuses for good, a 503 or a dropped connection is
 * tried again, and a URL outside the allowed prefixes is refused at submit, never called.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { ErrorCodes, isPeakError } from '../src/core/errors.js';
import { PeakServer } from '../src/server/index.js';
import { httpBranch, type SagaStep, type TccBranch, TxnClient } from '../src/txn/index.js';
import { useLocalCredential } from './support/credentials.js';
import { quietAtShutdown } from './support/pg-pool.js';
import { ensureDatabase } from './support/txn-bank.js';

const here = path.dirname(fileURLToPath(import.meta.url));

describe('txn: HTTP branches', { timeout: 120_000 }, () => {
  let dir: string;
  let bank: ChildProcess;
  let bankUrl: string;
  let server: PeakServer;
  let txn: TxnClient;
  let db: pg.Pool;
  let out = '';

  const waitLine = (pattern: RegExp) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const check = () => {
        const m = pattern.exec(out);
        if (m !== null) {
          bank.stdout!.off('data', onData);
          resolve(m);
        }
      };
      const onData = (b: Buffer) => {
        out += b;
        check();
      };
      bank.stdout!.on('data', onData);
      bank.once('exit', (code) => reject(new Error(`the bank exited (${code}) before ${pattern}`)));
      check();
    });

  const step = (
    name: string,
    account: string,
    amount: number,
    action: string,
    undo: string,
    fault = '',
  ) =>
    ({
      name,
      action: httpBranch(`${bankUrl}/${action}${fault}`),
      compensate: httpBranch(`${bankUrl}/${undo}`),
      payload: { account, amount },
    }) satisfies SagaStep;

  const balance = async (id: string) =>
    (
      await db.query<{ balance: number; frozen: number }>(
        'SELECT balance, frozen FROM accounts WHERE id = $1',
        [id],
      )
    ).rows[0]!;

  /** What reached the bank for `gid`: `method:op:status` in order, and the apps that called. */
  const calls = async (gid: string) => {
    const r = await db.query<{ method: string; op: string; status: number; app: string | null }>(
      'SELECT method, op, status, app FROM calls WHERE gid = $1 ORDER BY at',
      [gid],
    );
    return {
      seen: r.rows.map((c) => `${c.method}:${c.op}:${c.status}`),
      apps: [...new Set(r.rows.map((c) => c.app))],
    };
  };

  const accounts = async (rows: Record<string, number>) => {
    for (const [id, amount] of Object.entries(rows))
      await db.query(
        'INSERT INTO accounts (id, balance) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET balance = $2, frozen = 0',
        [id, amount],
      );
  };

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'peak-txn-http-'));
    bank = spawn(process.execPath, [path.join(here, 'txn-http-bank-fixture.js')], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const port = Number((await waitLine(/listening (\d+)/))[1]);
    bankUrl = `http://127.0.0.1:${port}/bank`;
    server = await PeakServer.start({
      dataDir: dir,
      port: 0,
      txn: {
        leaseMs: 1000,
        recoveryIntervalMs: 100,
        maxRecoveries: 2,
        httpBranches: [`http://127.0.0.1:${port}/bank/`],
      },
    });
    useLocalCredential(server);
    await ensureDatabase(server.postgresUrl(), 'txn_http_bank');
    bank.stdin!.write(
      `${JSON.stringify({ db: server.postgresUrl('txn_http_bank'), server: server.info.url })}\n`,
    );
    await waitLine(/ready/);
    db = quietAtShutdown(
      new pg.Pool({ connectionString: server.postgresUrl('txn_http_bank'), max: 2 }),
    );
    txn = new TxnClient({ servers: server.info.url });
  });

  after(async () => {
    bank?.kill('SIGTERM');
    await db?.end();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('runs a saga of two HTTP branches: each called once, with its branch in headers, as the verified coordinator', async () => {
    await accounts({ a1: 100, a2: 0 });
    const outcome = await txn.saga({
      gid: 'http-saga-ok',
      steps: [
        step('debit', 'a1', 30, 'debit', 'undebit'),
        step('credit', 'a2', 30, 'credit', 'uncredit'),
      ],
    });
    assert.equal(outcome.status, 'succeeded');
    assert.equal((await balance('a1')).balance, 70);
    assert.equal((await balance('a2')).balance, 30);
    const c = await calls('http-saga-ok');
    assert.deepEqual(c.seen, ['debit:action:200', 'credit:action:200']);
    assert.deepEqual(c.apps, ['peak-txn'], 'every call carried the identity the bank verified');
  });

  it('takes a 409 as a refusal for good: no retry, the earlier step compensated', async () => {
    await accounts({ b1: 100, b2: 0 });
    await assert.rejects(
      txn.saga({
        gid: 'http-saga-refused',
        steps: [
          step('debit', 'b1', 30, 'debit', 'undebit'),
          step('credit', 'b2', 30, 'credit', 'uncredit', '?fault=refuse'),
        ],
      }),
      (e) =>
        isPeakError(e, ErrorCodes.TXN_ABORTED) &&
        /refused action of branch credit: the bank refuses credit for good/.test(e.message),
    );
    assert.equal((await balance('b1')).balance, 100);
    assert.equal((await balance('b2')).balance, 0);
    const c = await calls('http-saga-refused');
    // The refused credit is still compensated (an empty compensation: its barrier skips it).
    assert.deepEqual(c.seen, [
      'debit:action:200',
      'credit:action:409',
      'uncredit:compensate:200',
      'undebit:compensate:200',
    ]);
  });

  it('tries a 503 and a dropped connection again under the step policy', async () => {
    await accounts({ c1: 100, c2: 0 });
    const outcome = await txn.saga({
      gid: 'http-saga-503',
      steps: [
        step('debit', 'c1', 10, 'debit', 'undebit', '?fault=503-once'),
        step('credit', 'c2', 10, 'credit', 'uncredit'),
      ],
    });
    assert.equal(outcome.status, 'succeeded');
    assert.equal((await balance('c2')).balance, 10);
    assert.deepEqual((await calls('http-saga-503')).seen, [
      'debit:action:503',
      'debit:action:200',
      'credit:action:200',
    ]);
    const view = await txn.get('http-saga-503');
    assert.equal(view.branches.find((b) => b.branch === 'debit' && b.op === 'action')?.attempts, 2);

    await accounts({ d1: 100, d2: 0 });
    await assert.rejects(
      txn.saga({
        gid: 'http-saga-hangup',
        steps: [
          step('debit', 'd1', 10, 'debit', 'undebit'),
          {
            ...step('credit', 'd2', 10, 'credit', 'uncredit', '?fault=hangup'),
            retries: 1,
            retryDelayMs: 10,
          },
        ],
      }),
      (e) =>
        isPeakError(e, ErrorCodes.TXN_ABORTED) &&
        /could not be reached|did not answer/.test(e.message),
    );
    assert.equal((await balance('d1')).balance, 100, 'the debit was compensated');
    const seen = (await calls('http-saga-hangup')).seen;
    assert.deepEqual(
      seen.filter((s) => s.startsWith('credit:')),
      ['credit:action:0', 'credit:action:0'],
      'the dropped call was tried twice (its policy: one retry)',
    );
  });

  it('runs a TCC over HTTP: tries then confirms; a refused try cancels every branch', async () => {
    await accounts({ e1: 100, e2: 100 });
    const branch = (name: string, account: string, amount: number): TccBranch => ({
      name,
      try: httpBranch(`${bankUrl}/tryDebit`),
      confirm: httpBranch(`${bankUrl}/confirmDebit`),
      cancel: httpBranch(`${bankUrl}/cancelDebit`),
      payload: { account, amount },
    });
    const ok = await txn.tcc({
      gid: 'http-tcc-ok',
      branches: [branch('x', 'e1', 10), branch('y', 'e2', 20)],
    });
    assert.equal(ok.status, 'succeeded');
    assert.deepEqual(await balance('e1'), { balance: 90, frozen: 0 });
    assert.deepEqual(await balance('e2'), { balance: 80, frozen: 0 });

    await assert.rejects(
      txn.tcc({
        gid: 'http-tcc-refused',
        branches: [branch('x', 'e1', 10), branch('y', 'e2', 500)],
      }),
      (e) => isPeakError(e, ErrorCodes.TXN_ABORTED) && /cannot give 500/.test(e.message),
    );
    assert.deepEqual(
      await balance('e1'),
      { balance: 90, frozen: 0 },
      'the try that passed was cancelled',
    );
    assert.deepEqual(await balance('e2'), { balance: 80, frozen: 0 });
    const seen = (await calls('http-tcc-refused')).seen.sort();
    assert.deepEqual(seen, [
      'cancelDebit:cancel:200',
      'cancelDebit:cancel:200',
      'tryDebit:try:200',
      'tryDebit:try:409',
    ]);
  });

  it('refuses at submit a URL the server does not allow, or a call that is neither or both, and calls nothing', async () => {
    const port = new URL(bankUrl).port;
    const refused: [string, unknown, RegExp][] = [
      [
        'another path',
        { url: `http://127.0.0.1:${port}/admin/debit` },
        /not under a URL prefix this server allows .*PEAK_TXN_HTTP_BRANCHES/,
      ],
      [
        'a sibling path',
        { url: `http://127.0.0.1:${port}/bank-admin/x` },
        /not under a URL prefix/,
      ],
      [
        'another host',
        { url: `http://127.0.0.1.nip.io:${port}/bank/debit` },
        /not under a URL prefix/,
      ],
      ['a file URL', { url: 'file:///etc/passwd' }, /is not an http:\/\/ or https:\/\/ URL/],
      [
        'credentials',
        { url: `http://user:pw@127.0.0.1:${port}/bank/debit` },
        /carries credentials/,
      ],
      [
        'both',
        { url: `${bankUrl}/debit`, service: 'x/y:1', method: 'z' },
        /either an RPC method .* or an HTTP endpoint .*not both/,
      ],
      ['neither', {}, /names an RPC method \(\{service, method\}\) or an HTTP endpoint/],
    ];
    for (const [what, action, pattern] of refused) {
      await assert.rejects(
        txn.saga({
          gid: `http-refused-${what.replaceAll(' ', '-')}`,
          steps: [
            { name: 'debit', action: action as never, payload: { account: 'a1', amount: 1 } },
          ],
        }),
        (e) => isPeakError(e, ErrorCodes.TXN_INVALID) && pattern.test(e.message),
        what,
      );
    }
    const r = await db.query(
      "SELECT count(*)::int AS n FROM calls WHERE gid LIKE 'http-refused-%'",
    );
    assert.equal(r.rows[0].n, 0, 'nothing reached the bank');
    // A request that is not a branch call is told which headers it lacks (httpTxnBranch).
    const direct = await fetch(`${bankUrl}/debit`, { method: 'POST', body: '{}' });
    assert.equal(direct.status, 400);
    assert.match(
      ((await direct.json()) as { message: string }).message,
      /not a txn branch call: header peak-txn-gid, peak-txn-branch, peak-txn-op missing/,
    );
  });
});
