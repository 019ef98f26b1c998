/**
 * A stock writer in a process of its own, for the crash test of `cache-stock.test.ts`:
 * drains the Redis stock engine's stream into PostgreSQL until SIGTERM (then prints its
 * figures as one JSON line and exits) or until it is killed with SIGKILL mid-batch.
 *
 * Environment: STOCK_REDIS_URL, STOCK_PG_URL, STOCK_SCHEMA, STOCK_NAME, STOCK_CONSUMER,
 * STOCK_CLAIM_IDLE_MS, STOCK_BATCH_SIZE, and STOCK_COMMIT_DELAY_MS: a pause before and
 * after each COMMIT, which widens the windows a kill -9 should land in ("applied but not
 * committed" and "committed but not acknowledged").
 */
import pg from 'pg';
import { StockWriter } from '../src/cache/stock-writer.js';

const env = (name: string): string => {
  const v = process.env[name];
  if (v === undefined || v === '') {
    process.stderr.write(`cache-stock-writer-fixture: ${name} is required\n`);
    process.exit(2);
  }
  return v;
};

const pool = new pg.Pool({ connectionString: env('STOCK_PG_URL'), max: 2 });
const delayMs = Number(process.env.STOCK_COMMIT_DELAY_MS ?? '0');
if (delayMs > 0) {
  const patched = new WeakSet<pg.PoolClient>();
  const connect = pool.connect.bind(pool) as () => Promise<pg.PoolClient>;
  const sleep = () => new Promise((r) => setTimeout(r, delayMs));
  (pool as unknown as { connect: () => Promise<pg.PoolClient> }).connect = async () => {
    const client = await connect();
    if (!patched.has(client)) {
      patched.add(client);
      const query = client.query.bind(client) as (...a: unknown[]) => Promise<unknown>;
      (client as unknown as { query: (...a: unknown[]) => Promise<unknown> }).query = async (
        ...args: unknown[]
      ) => {
        if (args[0] !== 'COMMIT') return query(...args);
        await sleep();
        const result = await query(...args);
        await sleep();
        return result;
      };
    }
    return client;
  };
}

const writer = new StockWriter({
  redis: env('STOCK_REDIS_URL'),
  pool,
  schema: env('STOCK_SCHEMA'),
  name: env('STOCK_NAME'),
  consumer: env('STOCK_CONSUMER'),
  claimIdleMs: Number(process.env.STOCK_CLAIM_IDLE_MS ?? '5000'),
  batchSize: Number(process.env.STOCK_BATCH_SIZE ?? '500'),
  blockMs: 50,
}).start();

process.once('SIGTERM', () => {
  void writer
    .close()
    .then(() => pool.end())
    .then(() => {
      process.stdout.write(`${JSON.stringify({ stats: writer.stats() })}\n`);
      process.exit(0);
    });
});
process.stdout.write('ready\n');
