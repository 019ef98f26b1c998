/**
 * Transactional enqueue (pg-boss / graphile-worker style): the message is written by the
 * caller's own PostgreSQL client, inside the caller's open transaction, into the broker's
 * outbox (`peak.mq_pending`). It exists only if that transaction commits; the broker's
 * relay then moves it into its queue (woken by a NOTIFY that PostgreSQL sends at commit).
 *
 * Why the outbox and not the queue itself: appending to a queue takes the queue's row lock
 * until commit, and an application transaction may run for a long time; the outbox row
 * takes no shared lock, so a slow business transaction never stalls other producers.
 * The price is that the application's database must be the broker's database (schema
 * `peak`); an application on another database uses half messages instead.
 */
import { currentContext } from '../core/context.js';
import { ErrorCodes, PeakError } from '../core/errors.js';
import type { KeyRing } from './body-cipher.js';
import { type OutgoingMessage, TopicNames } from './message-types.js';
import { bodyOf, deliverAtOf, propertiesOf } from './wire-encoding.js';

/** What `sendInTransaction` needs of a client: `pg.Client` and `pg.PoolClient` fit. */
export interface SqlClient {
  query(
    text: string,
    values?: unknown[],
  ): Promise<{ rows: Record<string, unknown>[]; rowCount: number | null }>;
}

/** Options of {@link sendInTransaction}. */
export interface SendInTransactionOptions {
  /** Encrypt the body with this key ring's current key. */
  encryption?: KeyRing;
}

/**
 * Writes `message` for `topic` in the caller's transaction (call between BEGIN and
 * COMMIT on `client`); returns the message id. Rolled back → never delivered.
 */
export async function sendInTransaction(
  client: SqlClient,
  topic: string,
  message: OutgoingMessage,
  options: SendInTransactionOptions = {},
): Promise<{ id: string; topic: string }> {
  const props = propertiesOf(message);
  const body = bodyOf(message, options.encryption, props);
  const deliverAt = deliverAtOf(message);
  let target = topic;
  if (currentContext()?.stress === true) {
    target = TopicNames.shadow(topic);
    await client.query(
      `WITH t AS (
         INSERT INTO peak.mq_topics (name, queues, ordered, internal, max_body_bytes, produce_secret, consume_secret)
         SELECT $2, queues, ordered, true, max_body_bytes, produce_secret, consume_secret FROM peak.mq_topics WHERE name = $1
         ON CONFLICT (name) DO NOTHING RETURNING name, queues)
       INSERT INTO peak.mq_queues (topic, queue_id) SELECT t.name, g FROM t, generate_series(0, t.queues - 1) g`,
      [topic, target],
    );
  }
  // A topic on another message database (placed there by the broker) takes the message in
  // the forwarding table: the relay copies it to the topic's database once committed.
  const { rows } = await client.query(
    `WITH here AS (SELECT name, ordered, max_body_bytes, false AS far FROM peak.mq_topics WHERE name = $1),
          t AS (
            SELECT * FROM here
            UNION ALL
            SELECT $1, ordered, max_body_bytes, true FROM peak.mq_topic_databases
             WHERE topic = $8 AND database <> 'main' AND NOT EXISTS (SELECT 1 FROM here)),
          ok AS (
            SELECT * FROM t WHERE (NOT t.ordered OR $4::text IS NOT NULL) AND octet_length($6::bytea) <= t.max_body_bytes),
          ins AS (
            INSERT INTO peak.mq_pending (kind, msg_id, topic, tag, keys, msg_group, props, body, deliver_at)
            SELECT 'outbox', peak.mq_new_id(), ok.name, $2, $3, $4, $5, $6, coalesce(to_timestamp($7::float8 / 1000), now())
              FROM ok WHERE NOT ok.far
            RETURNING msg_id::text AS id),
          fwd AS (
            INSERT INTO peak.mq_forward (msg_id, topic, tag, keys, msg_group, props, body, deliver_at)
            SELECT peak.mq_new_id(), ok.name, $2, $3, $4, $5, $6, coalesce(to_timestamp($7::float8 / 1000), now())
              FROM ok WHERE ok.far
            RETURNING msg_id::text AS id)
     SELECT coalesce((SELECT id FROM ins), (SELECT id FROM fwd)) AS id, (SELECT ordered FROM t) AS ordered,
            (SELECT max_body_bytes FROM t) AS max, pg_notify('peak_mq_pending', '')`,
    [
      target,
      message.tag ?? null,
      [...(message.keys ?? [])],
      message.group ?? null,
      JSON.stringify(props),
      body,
      deliverAt ?? null,
      topic,
    ],
  );
  const r = rows[0] ?? {};
  if (typeof r.id === 'string') return { id: r.id, topic: target };
  if (r.ordered === null || r.ordered === undefined) {
    throw new PeakError(
      ErrorCodes.MQ_UNKNOWN_TOPIC,
      `topic '${topic}' does not exist; create it first (peak mq topics create ${topic})`,
      {
        details: { topic },
      },
    );
  }
  if (r.ordered === true && message.group === undefined) {
    throw new PeakError(
      ErrorCodes.INVALID_ARGUMENT,
      `topic '${topic}' is ordered: the message needs a 'group' (the ordering key)`,
      {
        details: { input: 'group' },
      },
    );
  }
  throw new PeakError(
    ErrorCodes.MQ_MESSAGE_TOO_LARGE,
    `the body is ${body.length} bytes; topic '${topic}' takes at most ${String(r.max)}`,
    {
      details: { input: 'body', bytes: body.length },
    },
  );
}
