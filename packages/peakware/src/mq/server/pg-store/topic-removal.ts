/**
 * Removing a topic, or one consumer group's subscription to a topic (`peak mq topic rm`,
 * `peak mq group rm`). Both are refused (PEAK_MQ_IN_USE) while something would be lost or
 * cut off: messages a group has not acked, delayed / outbox / half messages still pending,
 * stored messages no group ever read, or consumers that heartbeat within the session;
 * `force` removes anyway. What goes and what stays is in src/mq/README.md ("Removing").
 */
import type pg from 'pg';
import { ErrorCodes, PeakError } from '../../../core/errors.js';
import { TopicNames } from '../../message-types.js';
import { inTransaction } from './transaction.js';

/** What still uses a topic (or a group's subscription to it). */
export interface TopicUse {
  /** Messages stored but not acked, summed over the groups (or the one group). */
  unacked: number;
  /** Delayed, outbox and half messages of the topic not yet in its queues (topic only). */
  pending: number;
  /** Messages stored while no group has ever read the topic (topic only). */
  unread: number;
  /** Consumers seen within the session, as `group/consumerId`. */
  liveConsumers: string[];
}

/** What a removal did. */
export interface Removal {
  topic: string;
  group?: string;
  /** What used it when it was removed (all zero and empty unless forced). */
  use: TopicUse;
  /** Rows removed per table, for the record. */
  removed: Record<string, number>;
}

async function unackedOf(c: pg.PoolClient, topic: string, grp: string | null): Promise<number> {
  // Per (group, queue): the queue's end minus the first offset not yet acked (in flight
  // rows hold it back), as the backlog reader computes it.
  const { rows } = await c.query<{ n: string }>(
    `SELECT coalesce(sum(q.next_offset - coalesce(least(
              (SELECT min(queue_offset) FROM peak.mq_deliveries d
                WHERE d.grp = o.grp AND d.topic = q.topic AND d.queue_id = q.queue_id),
              (SELECT min(first_offset) FROM peak.mq_claims c
                WHERE c.grp = o.grp AND c.topic = q.topic AND c.queue_id = q.queue_id)),
            o.pulled_offset)), 0)::text AS n
       FROM peak.mq_offsets o
       JOIN peak.mq_queues q ON q.topic = o.topic AND q.queue_id = o.queue_id
      WHERE o.topic = $1 AND ($2::text IS NULL OR o.grp = $2)`,
    [topic, grp],
  );
  return Number(rows[0]?.n ?? 0);
}

async function useOf(
  c: pg.PoolClient,
  topic: string,
  grp: string | null,
  sessionMs: number,
): Promise<TopicUse> {
  const unacked = await unackedOf(c, topic, grp);
  const live = await c.query<{ who: string }>(
    `SELECT grp || '/' || consumer_id AS who FROM peak.mq_consumers
      WHERE topic = $1 AND ($2::text IS NULL OR grp = $2)
        AND last_seen > now() - make_interval(secs => $3::float8 / 1000) ORDER BY 1`,
    [topic, grp, sessionMs],
  );
  if (grp !== null)
    return { unacked, pending: 0, unread: 0, liveConsumers: live.rows.map((r) => r.who) };
  const { rows } = await c.query<{ pending: number; unread: string }>(
    `SELECT (SELECT count(*) FROM peak.mq_pending WHERE topic = $1)::int AS pending,
            CASE WHEN EXISTS (SELECT 1 FROM peak.mq_offsets WHERE topic = $1) THEN 0
                 ELSE (SELECT coalesce(sum(next_offset), 0) FROM peak.mq_queues WHERE topic = $1) END::text AS unread`,
    [topic],
  );
  return {
    unacked,
    pending: rows[0]?.pending ?? 0,
    unread: Number(rows[0]?.unread ?? 0),
    liveConsumers: live.rows.map((r) => r.who),
  };
}

function refuse(what: string, use: TopicUse, hint: string): PeakError {
  const parts = [
    use.unacked > 0 ? `${use.unacked} unconsumed messages` : '',
    use.pending > 0 ? `${use.pending} pending (delayed, outbox or half) messages` : '',
    use.unread > 0 ? `${use.unread} messages no group has read` : '',
    use.liveConsumers.length > 0
      ? `${use.liveConsumers.length} live consumers (${use.liveConsumers.slice(0, 5).join(', ')})`
      : '',
  ].filter((p) => p.length > 0);
  return new PeakError(
    ErrorCodes.MQ_IN_USE,
    `${what} is in use: ${parts.join(', ')}; ${hint}, or pass --force to remove it anyway`,
    { details: { ...use } },
  );
}

const inUse = (u: TopicUse) =>
  u.unacked > 0 || u.pending > 0 || u.unread > 0 || u.liveConsumers.length > 0;

async function del(
  c: pg.PoolClient,
  removed: Record<string, number>,
  table: string,
  where: string,
  params: unknown[],
): Promise<void> {
  const r = await c.query(`DELETE FROM peak.${table} WHERE ${where}`, params);
  removed[table] = (removed[table] ?? 0) + (r.rowCount ?? 0);
}

/**
 * Removes topic `topic` (and its shadow topic): its queues, stored and pending messages,
 * every group's offsets, claims, deliveries and consumers on it. Dead letters and retry
 * copies that came from it stay with their groups; trace rows age out with retention.
 */
export async function removeTopic(
  pool: pg.Pool,
  topic: string,
  options: { force: boolean; sessionMs: number },
): Promise<Removal> {
  return inTransaction(pool, async (c) => {
    const { rows } = await c.query<{ internal: boolean }>(
      'SELECT internal FROM peak.mq_topics WHERE name = $1 FOR UPDATE',
      [topic],
    );
    const t = rows[0];
    if (t === undefined) {
      throw new PeakError(
        ErrorCodes.MQ_UNKNOWN_TOPIC,
        `topic '${topic}' does not exist; see 'peak mq topics list'`,
        {
          details: { topic },
        },
      );
    }
    if (t.internal) {
      throw new PeakError(
        ErrorCodes.INVALID_ARGUMENT,
        `topic '${topic}' is internal (a group's retry topic or a shadow topic); it goes with its group ('peak mq group rm') or its topic`,
        { details: { topic } },
      );
    }
    const use = await useOf(c, topic, null, options.sessionMs);
    if (inUse(use) && !options.force)
      throw refuse(`topic '${topic}'`, use, 'let its consumers drain it and stop them');
    const removed: Record<string, number> = {};
    for (const name of [topic, TopicNames.shadow(topic)]) {
      for (const table of [
        'mq_claims',
        'mq_deliveries',
        'mq_offsets',
        'mq_consumers',
        'mq_pending',
        'mq_messages',
      ])
        await del(c, removed, table, 'topic = $1', [name]);
      await del(c, removed, 'mq_topics', 'name = $1', [name]);
    }
    return { topic, use, removed };
  });
}

/**
 * Removes group `grp`'s subscription to `topic`: its offsets, claims, deliveries and
 * consumers there. When the group then reads no topic at all, its settings, its retry
 * topic `%RETRY%<group>` (with the retries waiting in it) and its dead letters go too.
 */
export async function removeGroup(
  pool: pg.Pool,
  topic: string,
  grp: string,
  options: { force: boolean; sessionMs: number },
): Promise<Removal & { groupRemoved: boolean }> {
  return inTransaction(pool, async (c) => {
    const known = await c.query(
      `SELECT 1 FROM peak.mq_offsets WHERE grp = $1 AND topic = $2
       UNION ALL SELECT 1 FROM peak.mq_consumers WHERE grp = $1 AND topic = $2 LIMIT 1`,
      [grp, topic],
    );
    if (known.rowCount === 0) {
      throw new PeakError(
        ErrorCodes.NOT_FOUND,
        `group '${grp}' has no subscription to topic '${topic}'; see 'peak mq stats'`,
        { details: { group: grp, topic } },
      );
    }
    const use = await useOf(c, topic, grp, options.sessionMs);
    if (inUse(use) && !options.force)
      throw refuse(
        `group '${grp}' on topic '${topic}'`,
        use,
        'let it drain and stop its consumers',
      );
    const removed: Record<string, number> = {};
    for (const table of ['mq_claims', 'mq_deliveries', 'mq_offsets', 'mq_consumers'])
      await del(c, removed, table, 'grp = $1 AND topic = $2', [grp, topic]);
    const retry = TopicNames.retry(grp);
    const left = await c.query(
      `SELECT 1 FROM peak.mq_offsets WHERE grp = $1 AND topic <> $2
       UNION ALL SELECT 1 FROM peak.mq_consumers WHERE grp = $1 AND topic <> $2 LIMIT 1`,
      [grp, retry],
    );
    const groupRemoved = left.rowCount === 0;
    if (groupRemoved) {
      for (const table of ['mq_claims', 'mq_deliveries', 'mq_offsets', 'mq_consumers'])
        await del(c, removed, table, 'topic = $1', [retry]);
      await del(c, removed, 'mq_pending', 'topic = $1', [retry]);
      await del(c, removed, 'mq_messages', 'topic = $1', [retry]);
      await del(c, removed, 'mq_topics', 'name = $1', [retry]);
      await del(c, removed, 'mq_dlq', 'grp = $1', [grp]);
      await del(c, removed, 'mq_groups', 'name = $1', [grp]);
    }
    return { topic, group: grp, use, removed, groupRemoved };
  });
}
