/**
 * An XA transfer in a process of its own, for the crash tests of `data-xa.test.ts`: opens
 * the sharded database on XA_DS0 / XA_DS1, moves XA_AMOUNT from account XA_FROM to XA_TO
 * in one XA transaction, and kills itself with SIGKILL at the phase XA_DIE_AT (`prepared`
 * or `decided`), leaving the transaction in doubt as a crashed service would.
 */
import { ShardedDatabase } from '../src/data/index.js';
import { XA_LAYOUT } from './support/xa-layout.js';

const env = (name: string): string => {
  const v = process.env[name];
  if (v === undefined || v === '') {
    process.stderr.write(`data-xa-fixture: ${name} is required\n`);
    process.exit(2);
  }
  return v;
};

const db = await ShardedDatabase.connect({
  layout: XA_LAYOUT,
  connections: { ds0: { primary: env('XA_DS0') }, ds1: { primary: env('XA_DS1') } },
  poolSize: 2,
  xaRecoveryIntervalMs: 0,
});
const dieAt = env('XA_DIE_AT');
db.setXaHook((phase, gid) => {
  if (phase !== dieAt) return;
  process.stdout.write(`${JSON.stringify({ phase, gid })}\n`);
  process.kill(process.pid, 'SIGKILL');
  return new Promise<void>(() => {}); // never: the signal ends the process
});
const amount = Number(env('XA_AMOUNT'));
await db.transaction(
  async (tx) => {
    await tx.query('UPDATE accounts SET balance = balance - $2 WHERE id = $1', [
      Number(env('XA_FROM')),
      amount,
    ]);
    await tx.query('UPDATE accounts SET balance = balance + $2 WHERE id = $1', [
      Number(env('XA_TO')),
      amount,
    ]);
  },
  { xa: true },
);
process.stderr.write('data-xa-fixture: the transaction ended without reaching its phase\n');
process.exit(3);
