/** One transaction on a pooled client, the way every multi-statement store operation runs. */
import type pg from 'pg';

/** Runs `fn` in a transaction on a pooled client. */
export async function inTransaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
  durable = true,
): Promise<T> {
  const client = await pool.connect();
  try {
    // Delivery bookkeeping (claims, acks, retries, relay moves) may commit without
    // waiting for the WAL flush: a crash can only undo the last few ms of it, which means
    // a redelivery (at-least-once), never a lost message. Appends stay durable.
    await client.query(durable ? 'BEGIN' : 'BEGIN; SET LOCAL synchronous_commit TO off');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
