/**
 * An outside service for the HTTP branch tests, in a process of its own: a bank over plain
 * `node:http` (no peakware RPC) whose endpoints `POST /bank/<method>` are saga and TCC
 * branches and a message's check-back. Each reads its branch from the request headers
 * (`httpTxnBranch`), runs in the barrier on its own database, and accepts only callers whose
 * `authorization: Bearer` identity verifies against the control plane's keys as app
 * `peak-txn`. Every request that reached a handler is written to `calls` (method, gid,
 * branch, op, the verified app, the answer) so a test counts what the coordinator sent.
 *
 * Faults by query string: `?fault=refuse` answers 409, `?fault=503-once` answers 503 to the
 * first call of each gid and method, `?fault=hangup` drops the connection.
 *
 * Start-up: it listens on a free port and prints `listening <port>`; it then reads one JSON
 * line `{ "db": <postgres url>, "server": <control plane url> }` on stdin, creates its
 * tables and prints `ready`.
 */
import http from 'node:http';
import { createInterface } from 'node:readline';
import pg from 'pg';
import { isPeakError } from '../src/core/errors.js';
import { IdentityVerifier } from '../src/security/index.js';
import {
  barrier,
  checkPrepared,
  httpTxnBranch,
  installBarrier,
  type TxnBranch,
} from '../src/txn/index.js';

const SQL: Record<string, { sql: string; refuseWhenNone?: boolean }> = {
  debit: {
    sql: 'UPDATE accounts SET balance = balance - $2 WHERE id = $1 AND balance >= $2',
    refuseWhenNone: true,
  },
  undebit: { sql: 'UPDATE accounts SET balance = balance + $2 WHERE id = $1' },
  credit: { sql: 'UPDATE accounts SET balance = balance + $2 WHERE id = $1' },
  uncredit: { sql: 'UPDATE accounts SET balance = balance - $2 WHERE id = $1' },
  tryDebit: {
    sql: 'UPDATE accounts SET balance = balance - $2, frozen = frozen + $2 WHERE id = $1 AND balance >= $2',
    refuseWhenNone: true,
  },
  confirmDebit: { sql: 'UPDATE accounts SET frozen = frozen - $2 WHERE id = $1' },
  cancelDebit: {
    sql: 'UPDATE accounts SET balance = balance + $2, frozen = frozen - $2 WHERE id = $1',
  },
};

/** Thrown inside the barrier to refuse: rolls the barrier row back with the work. */
class Refused extends Error {}

let db: pg.Pool | undefined;
let verifier: IdentityVerifier | undefined;
const failedOnce = new Set<string>();

function answer(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of req) {
    text += chunk;
    if (text.length > 65_536) throw new Error('body over 64 KiB');
  }
  return text;
}

async function record(
  method: string,
  b: TxnBranch | undefined,
  app: string | undefined,
  status: number,
): Promise<void> {
  await db!.query(
    'INSERT INTO calls (method, gid, branch, op, app, status) VALUES ($1, $2, $3, $4, $5, $6)',
    [method, b?.gid ?? null, b?.branch ?? null, b?.op ?? null, app ?? null, status],
  );
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://bank');
  const method = /^\/bank\/([A-Za-z]+)$/.exec(url.pathname)?.[1];
  if (req.method !== 'POST' || method === undefined) {
    answer(res, 404, { message: `no route ${req.method} ${url.pathname}` });
    return;
  }
  if (db === undefined || verifier === undefined) {
    answer(res, 503, { message: 'not configured yet' });
    return;
  }
  const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
  let app: string | undefined;
  try {
    app = token === undefined ? undefined : (await verifier.verify(token)).app;
  } catch {
    app = undefined;
  }
  let branch: TxnBranch | undefined;
  try {
    branch = httpTxnBranch(req.headers);
  } catch (err) {
    await record(method, undefined, app, 400);
    answer(res, 400, { message: (err as Error).message });
    return;
  }
  if (app !== 'peak-txn') {
    await record(method, branch, app, 401);
    answer(res, 401, { message: 'only the txn coordinator (app peak-txn) calls the bank' });
    return;
  }
  const fault = url.searchParams.get('fault');
  if (fault === 'hangup') {
    await record(method, branch, app, 0);
    req.socket.destroy();
    return;
  }
  if (fault === 'refuse') {
    await record(method, branch, app, 409);
    answer(res, 409, { message: `the bank refuses ${method} for good` });
    return;
  }
  if (fault === '503-once' && !failedOnce.has(`${branch.gid}/${method}`)) {
    failedOnce.add(`${branch.gid}/${method}`);
    await record(method, branch, app, 503);
    answer(res, 503, { message: 'busy, try again' });
    return;
  }
  const input = JSON.parse((await readBody(req)) || '{}') as {
    account?: string;
    amount?: number;
    gid?: string;
  };
  if (method === 'checkMsg') {
    await record(method, branch, app, 200);
    answer(res, 200, await checkPrepared(db, input.gid ?? branch.gid));
    return;
  }
  const op = SQL[method];
  if (op === undefined) {
    answer(res, 404, { message: `no bank method ${method}` });
    return;
  }
  // A refusal throws inside the barrier, so the barrier row rolls back with the work: the
  // cancel that follows is then an empty compensation (it must not give back what was
  // never taken). Returning normally would commit the try's barrier row.
  let done: unknown;
  try {
    done = await barrier(db, branch, async (client) => {
      const r = await client.query(op.sql, [input.account, input.amount]);
      if (op.refuseWhenNone === true && r.rowCount === 0) throw new Refused();
      return { method, account: input.account };
    });
  } catch (err) {
    if (!(err instanceof Refused)) throw err;
    await record(method, branch, app, 409);
    answer(res, 409, { message: `account ${input.account} cannot give ${input.amount}` });
    return;
  }
  await record(method, branch, app, 200);
  answer(res, 200, done ?? { method, filtered: true });
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err: unknown) => {
    if (!res.headersSent)
      answer(res, isPeakError(err) ? 400 : 500, { message: (err as Error).message });
  });
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as { port: number }).port}\n`);
});

const lines = createInterface({ input: process.stdin });
lines.once('line', (line) => {
  const config = JSON.parse(line) as { db: string; server: string };
  void (async () => {
    const pool = new pg.Pool({ connectionString: config.db, max: 8 });
    await installBarrier(pool);
    await pool.query(`CREATE TABLE IF NOT EXISTS accounts (
        id text PRIMARY KEY, balance int NOT NULL CHECK (balance >= 0), frozen int NOT NULL DEFAULT 0);
      CREATE TABLE IF NOT EXISTS calls (method text, gid text, branch text, op text, app text,
        status int, at timestamptz DEFAULT clock_timestamp());`);
    const v = new IdentityVerifier({ servers: config.server });
    await v.start();
    db = pool;
    verifier = v;
    process.stdout.write('ready\n');
  })();
});
process.once('SIGTERM', () => {
  server.close();
  verifier?.close();
  void db?.end().then(() => process.exit(0));
});
