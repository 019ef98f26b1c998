/**
 * XA transactions over two embedded PostgreSQL instances: a transfer between accounts on
 * two shard databases commits on both or neither; a PREPARE that fails rolls both back; a
 * process killed with SIGKILL between the phases leaves a prepared transaction that
 * recovery settles the way the coordinator ended (rolled back before the decision,
 * committed after it); recovery waits for a coordinator still running instead of aborting
 * it; a participant's PostgreSQL killed with `kill -9` between PREPARE and COMMIT PREPARED
 * is settled by recovery once it is back (`peak data xa ls|recover` list and settle).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ErrorCodes, isPeakError } from '../src/core/errors.js';
import { ShardedDatabase } from '../src/data/index.js';
import { listInDoubt } from '../src/data/xa-in-doubt.js';
import { runPeak } from './support/peak-process.js';
import { type PostgresCluster, startPostgresCluster } from './support/postgres-cluster.js';
import { waitFor } from './support/wait.js';
import { XA_LAYOUT } from './support/xa-layout.js';

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), 'data-xa-fixture.js');
const MOVE = 'UPDATE accounts SET balance = balance + $2 WHERE id = $1';

describe('data: XA transactions across shard databases', { timeout: 120_000 }, () => {
  let cluster: PostgresCluster;
  let db: ShardedDatabase;

  const balances = async (): Promise<Record<number, number>> => {
    const { rows } = await db.query<{ id: number; balance: number }>(
      'SELECT id, balance FROM accounts ORDER BY id',
    );
    return Object.fromEntries(rows.map((r) => [r.id, r.balance]));
  };
  const preparedLeft = async (): Promise<string[]> => {
    const out: string[] = [];
    for (const ds of db.layout.dataSources) {
      const { rows } = await db
        .primary(ds)
        .query<{ gid: string }>(`SELECT gid FROM pg_prepared_xacts WHERE gid LIKE 'peak_xa:%'`);
      out.push(...rows.map((r) => `${ds} ${r.gid}`));
    }
    return out;
  };
  const transfer = (from: number, to: number, amount: number) =>
    db.transaction(
      async (tx) => {
        await tx.query(MOVE, [from, -amount]);
        await tx.query(MOVE, [to, amount]);
      },
      { xa: true },
    );

  before(async () => {
    cluster = await startPostgresCluster(2);
    db = await ShardedDatabase.connect({
      layout: XA_LAYOUT,
      connections: { ds0: { primary: cluster.url(0) }, ds1: { primary: cluster.url(1) } },
      poolSize: 4,
      xaRecoveryIntervalMs: 0,
    });
    for (const t of db.physicalTables()) {
      const source = db.primary(t.dataSource);
      await source.query(`CREATE TABLE ${t.table} (id int PRIMARY KEY, balance int NOT NULL)`);
      // Checked at commit (so at PREPARE): a balance may go negative only inside a transaction.
      await source.query(`CREATE FUNCTION ${t.table}_check() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.balance < 0 THEN RAISE EXCEPTION 'account % would go negative', NEW.id; END IF;
        RETURN NULL; END $$`);
      await source.query(`CREATE CONSTRAINT TRIGGER ${t.table}_no_debt AFTER UPDATE ON ${t.table}
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ${t.table}_check()`);
    }
  });

  beforeEach(async () => {
    await db.query('DELETE FROM accounts WHERE id IN (0, 1, 2, 3)');
    for (const id of [0, 1, 2, 3]) {
      await db.query('INSERT INTO accounts (id, balance) VALUES ($1, 100)', [id]);
    }
  });

  after(async () => {
    await db?.close();
    await cluster?.stop();
  });

  it('the layout puts even accounts on ds0 and odd ones on ds1', () => {
    const ds = (id: number) =>
      db.route('SELECT 1 FROM accounts WHERE id = $1', [id]).units[0]!.dataSource;
    assert.deepEqual([0, 1, 2, 3].map(ds), ['ds0', 'ds1', 'ds0', 'ds1']);
  });

  it('commits on both databases at once, and leaves nothing prepared or logged', async () => {
    await transfer(0, 1, 30);
    assert.deepEqual(await balances(), { 0: 70, 1: 130, 2: 100, 3: 100 });
    assert.deepEqual(await preparedLeft(), []);
    const { rows } = await db.primary('ds0').query('SELECT gid FROM peak_xa.log');
    assert.deepEqual(rows, [], 'the coordinator log row goes once every participant committed');
  });

  it('rolls back on both when the work throws, and refuses nothing it should not', async () => {
    await assert.rejects(
      db.transaction(
        async (tx) => {
          await tx.query(MOVE, [0, -10]);
          await tx.query(MOVE, [1, 10]);
          throw new Error('the caller changed its mind');
        },
        { xa: true },
      ),
      /changed its mind/,
    );
    assert.deepEqual(await balances(), { 0: 100, 1: 100, 2: 100, 3: 100 });
    // Without xa (or bestEffort) a second database is refused, and the error says how.
    await assert.rejects(
      db.transaction(async (tx) => {
        await tx.query(MOVE, [0, -10]);
        await tx.query(MOVE, [1, 10]);
      }),
      (err: unknown) =>
        isPeakError(err, ErrorCodes.DATA_CROSS_SHARD) && /xa: true/.test((err as Error).message),
    );
    // On one database an XA transaction is a plain local one.
    await db.transaction((tx) => tx.query(MOVE, [2, 5]), { xa: true });
    assert.equal((await balances())[2], 105);
    assert.deepEqual(await preparedLeft(), []);
  });

  it('a PREPARE that fails (a deferred check on ds1) rolls back both and names the stage', async () => {
    await assert.rejects(transfer(0, 1, -150), (err: unknown) => {
      assert.ok(isPeakError(err, ErrorCodes.DATA_XA), String(err));
      assert.match((err as Error).message, /PREPARE on ds1 failed .*would go negative/);
      assert.match((err as Error).message, /nothing was committed/);
      return true;
    });
    assert.deepEqual(await balances(), { 0: 100, 1: 100, 2: 100, 3: 100 });
    assert.deepEqual(await preparedLeft(), []);
  });

  /** Runs the fixture's transfer of 40 from 2 to 3, killed at `phase`; returns its global id. */
  const crashAt = (phase: 'prepared' | 'decided') =>
    new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, [fixture], {
        env: {
          ...process.env,
          XA_DS0: cluster.url(0),
          XA_DS1: cluster.url(1),
          XA_FROM: '2',
          XA_TO: '3',
          XA_AMOUNT: '40',
          XA_DIE_AT: phase,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d;
      });
      child.stderr.on('data', (d: Buffer) => {
        err += d;
      });
      child.once('exit', (code, signal) => {
        if (signal !== 'SIGKILL') {
          reject(new Error(`the fixture exited with ${code ?? signal}: ${err}`));
          return;
        }
        resolve((JSON.parse(out.trim().split('\n').at(-1)!) as { gid: string }).gid);
      });
    });

  it('killed after PREPARE, before the decision: recovery rolls the prepared side back', async () => {
    const gid = await crashAt('prepared');
    const left = await preparedLeft();
    assert.equal(left.length, 1, 'ds1 is left prepared');
    assert.match(left[0]!, new RegExp(`^ds1 peak_xa:${gid}:`));
    // A young prepared transaction is left alone (it may be running).
    assert.deepEqual(await db.recoverXa(60_000), []);
    const settled = await db.recoverXa(0);
    assert.deepEqual(
      settled.map((r) => [r.dataSource, r.coordinator, r.gid, r.outcome]),
      [['ds1', 'ds0', gid, 'rolled-back']],
    );
    assert.deepEqual(await balances(), { 0: 100, 1: 100, 2: 100, 3: 100 });
    assert.deepEqual(await preparedLeft(), []);
  });

  it('killed after the decision: recovery commits the prepared side', async () => {
    const gid = await crashAt('decided');
    // ds0 (the coordinator) has committed; ds1 waits prepared: the books are off until recovery.
    assert.deepEqual(await balances(), { 0: 100, 1: 100, 2: 60, 3: 100 });
    const settled = await db.recoverXa(0);
    assert.deepEqual(
      settled.map((r) => [r.dataSource, r.gid, r.outcome]),
      [['ds1', gid, 'committed']],
    );
    assert.deepEqual(await balances(), { 0: 100, 1: 100, 2: 60, 3: 140 });
    assert.deepEqual(await preparedLeft(), []);
    const { rows } = await db
      .primary('ds0')
      .query('SELECT gid FROM peak_xa.log WHERE gid = $1', [gid]);
    assert.deepEqual(rows, [], 'the log row goes once the transaction is settled everywhere');
  });

  it('recovery waits for a coordinator still running instead of aborting it', async () => {
    let letGo!: () => void;
    const held = new Promise<void>((r) => {
      letGo = r;
    });
    let reached!: () => void;
    const atPrepared = new Promise<void>((r) => {
      reached = r;
    });
    db.setXaHook(async (phase) => {
      if (phase !== 'prepared') return;
      reached();
      await held;
    });
    try {
      const running = transfer(0, 1, 25);
      await atPrepared;
      const recovering = db.recoverXa(0);
      // Recovery's insert waits on the coordinator's open log row; let the coordinator commit.
      setTimeout(letGo, 300);
      const [settled] = await Promise.all([recovering, running]);
      // Recovery saw the commit: it committed ds1 itself, or found the owner had done it.
      assert.ok(
        settled.every((r) => r.outcome === 'committed'),
        JSON.stringify(settled),
      );
    } finally {
      db.setXaHook(undefined);
    }
    assert.deepEqual(await balances(), { 0: 75, 1: 125, 2: 100, 3: 100 });
    assert.deepEqual(await preparedLeft(), []);
  });

  // Last: it kills ds1, so `db` has a dead pool for it afterwards.
  it("a participant's PostgreSQL killed with kill -9 before COMMIT PREPARED: once back, recovery commits the decided branch and rolls back the undecided one", async () => {
    // B (0 -> 1) waits at 'prepared' while A (2 -> 3) commits on its coordinator ds0; then
    // ds1's postmaster is killed: A's COMMIT PREPARED and B's ROLLBACK PREPARED on ds1 both fail.
    let aDecided!: () => void;
    const decided = new Promise<void>((r) => {
      aDecided = r;
    });
    let first: string | undefined;
    db.setXaHook(async (phase, gid) => {
      if (phase === 'prepared' && first === undefined) {
        first = gid;
        await decided;
        throw new Error('B gives up after ds1 died');
      }
      if (phase === 'decided') {
        await cluster.kill(1);
        aDecided();
      }
    });
    let gidA = '';
    try {
      const b = transfer(0, 1, 10);
      await waitFor('B to prepare', () => first !== undefined);
      await transfer(2, 3, 40);
      await assert.rejects(b, (err) => isPeakError(err) && err.code === ErrorCodes.DATA_XA);
      gidA = (
        await db
          .primary('ds0')
          .query<{ gid: string }>("SELECT gid FROM peak_xa.log WHERE outcome = 'commit'")
      ).rows[0]!.gid;
    } finally {
      db.setXaHook(undefined);
    }
    await cluster.restart(1);
    const layoutFile = path.join(os.tmpdir(), `peak-xa-layout-${process.pid}.json`);
    await writeFile(
      layoutFile,
      JSON.stringify({
        ...XA_LAYOUT,
        connections: { ds0: { primary: cluster.url(0) }, ds1: { primary: cluster.url(1) } },
      }),
    );
    const again = await ShardedDatabase.connect({
      layout: XA_LAYOUT,
      connections: { ds0: { primary: cluster.url(0) }, ds1: { primary: cluster.url(1) } },
      poolSize: 2,
      xaRecoveryIntervalMs: 0,
    });
    try {
      const host = { primary: (d: string) => again.primary(d) };
      const doubt = await listInDoubt(host, again.layout.dataSources);
      assert.deepEqual(
        doubt
          .map((d) => [d.dataSource, d.coordinator, d.gid === gidA ? 'A' : 'B', d.decision])
          .sort(),
        [
          ['ds1', 'ds0', 'A', 'commit'],
          ['ds1', 'ds0', 'B', 'undecided'],
        ],
      );
      const ls = await runPeak(['data', 'xa', 'ls', '--layout', layoutFile, '--json']);
      assert.equal(ls.code, 0, ls.stderr);
      assert.equal((JSON.parse(ls.stdout) as { inDoubt: unknown[] }).inDoubt.length, 2);
      const recovered = await runPeak(['data', 'xa', 'recover', '--layout', layoutFile, '--json']);
      assert.equal(recovered.code, 0, recovered.stderr);
      const settled = (
        JSON.parse(recovered.stdout) as { settled: { gid: string; outcome: string }[] }
      ).settled;
      assert.deepEqual(settled.map((r) => [r.gid === gidA ? 'A' : 'B', r.outcome]).sort(), [
        ['A', 'committed'],
        ['B', 'rolled-back'],
      ]);
      const { rows } = await again.query<{ id: number; balance: number }>(
        'SELECT id, balance FROM accounts ORDER BY id',
      );
      assert.deepEqual(Object.fromEntries(rows.map((r) => [r.id, r.balance])), {
        0: 100,
        1: 100,
        2: 60,
        3: 140,
      });
      assert.deepEqual(await listInDoubt(host, again.layout.dataSources), []);
      const none = await runPeak(['data', 'xa', 'ls', '--layout', layoutFile]);
      assert.match(none.stdout, /no prepared transactions in doubt/);
    } finally {
      await again.close();
      await rm(layoutFile, { force: true });
    }
  });
});
