import type { Migration } from '../../../server/migrator.js';

/**
 * Topics on several databases (`mq.databases`, src/mq/README.md "Topics on several
 * databases"), in the node's own database:
 *
 * - `mq_topic_databases`: where each topic lives, a row per topic made while the broker had
 *   more than one database (`main`, the node's own, or another's name); a topic without a
 *   row is on `main`, so every topic made before stays where it is. Written once, when the
 *   topic is made (a topic does not move), with the settings a transactional enqueue checks
 *   (`ordered`, `max_body_bytes`).
 * - `mq_forward`: messages enqueued in a transaction of this database (`sendInTransaction`,
 *   the coordinator's two-phase messages) for a topic on another: the relay copies each to
 *   its topic's database once due, then deletes it here. A row it cannot deliver keeps
 *   `error` for an operator.
 */
export const mqTopicDatabases: Migration = {
  version: 28,
  name: 'mq-topic-databases',
  sql: `
    CREATE TABLE peak.mq_topic_databases (
      topic          text PRIMARY KEY,
      database       text NOT NULL,
      ordered        boolean NOT NULL DEFAULT false,
      max_body_bytes integer NOT NULL DEFAULT 262144,
      placed_at      timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE peak.mq_forward (
      seq         bigserial PRIMARY KEY,
      msg_id      bigint NOT NULL,
      topic       text NOT NULL,
      tag         text,
      keys        text[] NOT NULL DEFAULT '{}',
      msg_group   text,
      props       jsonb NOT NULL DEFAULT '{}',
      body        bytea NOT NULL,
      born_at     timestamptz NOT NULL DEFAULT now(),
      deliver_at  timestamptz NOT NULL DEFAULT now(),
      error       text
    );
    CREATE INDEX mq_forward_due ON peak.mq_forward (deliver_at, seq) WHERE error IS NULL;
  `,
};
