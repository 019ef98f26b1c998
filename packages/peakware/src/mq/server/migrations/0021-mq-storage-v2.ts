import type { Migration } from '../../../server/migrator.js';

/**
 * MQ storage v2 (see src/mq/README.md, "Storage model"): less written per message.
 *
 * - `mq_claims`: a fresh claim of a normal (unordered) topic is ONE row covering the range
 *   of offsets it handed out (`first_offset`, `span`, `delivered` when a tag filter skipped
 *   some), with the offsets acked so far (`acked`, relative to `first_offset`); the last
 *   ack deletes it. Redeliveries, nacks and ordered topics keep per-message rows in
 *   `mq_deliveries` (a claim that times out is expanded into them), so a v1 store's
 *   in-flight deliveries stay valid: nothing to drain.
 * - `mq_trace` takes batch rows (`topic`, `queue_id`, `offsets`, no `msg_id`): one row per
 *   acked claim batch, expanded when a message's trace is read.
 * - `mq_messages_time` (a btree on every message for the rare query by topic and time) is
 *   replaced by a BRIN index on `stored_at`: rows arrive in `stored_at` order, so a block
 *   range summary finds the time range at almost no cost per insert.
 */
export const mqStorageV2: Migration = {
  version: 21,
  name: 'mq-storage-v2',
  sql: `
    CREATE TABLE peak.mq_claims (
      grp           text NOT NULL,
      topic         text NOT NULL,
      queue_id      integer NOT NULL,
      first_offset  bigint NOT NULL,
      span          integer NOT NULL,
      delivered     integer[],
      acked         integer[] NOT NULL DEFAULT '{}',
      visible_at    timestamptz NOT NULL,
      consumer_id   text,
      delivered_at  timestamptz NOT NULL,
      PRIMARY KEY (grp, topic, queue_id, first_offset)
    );

    ALTER TABLE peak.mq_trace ALTER COLUMN msg_id DROP NOT NULL;
    ALTER TABLE peak.mq_trace ADD COLUMN topic text;
    ALTER TABLE peak.mq_trace ADD COLUMN queue_id integer;
    ALTER TABLE peak.mq_trace ADD COLUMN offsets bigint[];
    CREATE INDEX mq_trace_batch ON peak.mq_trace (topic, queue_id, (offsets[1])) WHERE offsets IS NOT NULL;

    DROP INDEX peak.mq_messages_time;
    CREATE INDEX mq_messages_stored ON peak.mq_messages USING brin (stored_at);
  `,
};
