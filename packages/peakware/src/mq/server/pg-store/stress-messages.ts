/**
 * Stress messages in real topics, for the stress module's isolation check: messages stored
 * since a time in a topic that is not a shadow topic, carrying the stress flag or a stress
 * run's id in their baggage. Either is a producer that ignored the shadow routing.
 */
import type pg from 'pg';

/**
 * Counts, per real topic, the messages of stress run `runId` stored since `sinceMs`, on the
 * databases `pools()` gives at each count (every message database of the broker).
 */
export function openStressMessageCounter(
  pools: () => readonly pg.Pool[],
): (runId: string, sinceMs: number) => Promise<{ topic: string; messages: number }[]> {
  const countOn = async (pool: pg.Pool, runId: string, sinceMs: number) => {
    const { rows } = await pool.query<{ topic: string; n: string }>(
      `SELECT topic, count(*)::text AS n FROM peak.mq_messages
        WHERE stored_at >= to_timestamp($1::double precision / 1000)
          AND left(topic, 8) <> '%SHADOW%'
          AND (props->>'peak-stress' = '1'
               OR position($2 IN coalesce(props->>'baggage', '')) > 0)
        GROUP BY topic ORDER BY topic`,
      [sinceMs, `peak-stress-run=${runId}`],
    );
    return rows.map((r) => ({ topic: r.topic, messages: Number(r.n) }));
  };
  return async (runId, sinceMs) => {
    const all = (await Promise.all(pools().map((p) => countOn(p, runId, sinceMs)))).flat();
    return all.sort((a, b) => a.topic.localeCompare(b.topic));
  };
}
