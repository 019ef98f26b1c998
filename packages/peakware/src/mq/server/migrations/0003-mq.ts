import type { Migration } from '../../../server/migrator.js';

/**
 * The message queue's storage (see src/mq/README.md). Messages and trace events live in
 * tables partitioned by day on their time column, so retention drops whole partitions; the
 * broker creates the dated partitions ahead of time, the DEFAULT partition only catches
 * rows if it ever falls behind. `mq_pending` holds what is not yet in a queue: delayed
 * messages, retries waiting for their backoff, transactional outbox rows and half messages.
 */
export const mq: Migration = {
  version: 3,
  name: 'mq',
  sql: `
    CREATE TABLE peak.mq_topics (
      name            text PRIMARY KEY,
      queues          integer NOT NULL CHECK (queues BETWEEN 1 AND 256),
      ordered         boolean NOT NULL DEFAULT false,
      internal        boolean NOT NULL DEFAULT false,
      max_body_bytes  integer NOT NULL,
      produce_secret  text,
      consume_secret  text,
      created_at      timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE peak.mq_queues (
      topic        text NOT NULL REFERENCES peak.mq_topics (name) ON DELETE CASCADE,
      queue_id     integer NOT NULL,
      next_offset  bigint NOT NULL DEFAULT 0,
      PRIMARY KEY (topic, queue_id)
    );

    CREATE TABLE peak.mq_messages (
      topic         text NOT NULL,
      queue_id      integer NOT NULL,
      queue_offset  bigint NOT NULL,
      msg_id        bigint NOT NULL,
      tag           text,
      keys          text[] NOT NULL DEFAULT '{}',
      msg_group     text,
      props         jsonb NOT NULL DEFAULT '{}',
      body          bytea NOT NULL,
      born_at       timestamptz NOT NULL,
      stored_at     timestamptz NOT NULL DEFAULT now(),
      reconsume     integer NOT NULL DEFAULT 0,
      origin_topic  text
    ) PARTITION BY RANGE (stored_at);
    CREATE INDEX mq_messages_position ON peak.mq_messages (topic, queue_id, queue_offset);
    CREATE INDEX mq_messages_id ON peak.mq_messages (msg_id);
    CREATE INDEX mq_messages_keys ON peak.mq_messages USING gin (keys);
    CREATE INDEX mq_messages_time ON peak.mq_messages (topic, stored_at);
    CREATE TABLE peak.mq_messages_default PARTITION OF peak.mq_messages DEFAULT;

    CREATE TABLE peak.mq_pending (
      seq             bigserial PRIMARY KEY,
      kind            text NOT NULL CHECK (kind IN ('delay', 'outbox', 'retry', 'half')),
      msg_id          bigint NOT NULL,
      topic           text NOT NULL,
      tag             text,
      keys            text[] NOT NULL DEFAULT '{}',
      msg_group       text,
      props           jsonb NOT NULL DEFAULT '{}',
      body            bytea NOT NULL,
      born_at         timestamptz NOT NULL DEFAULT now(),
      deliver_at      timestamptz NOT NULL DEFAULT now(),
      reconsume       integer NOT NULL DEFAULT 0,
      origin_topic    text,
      producer_group  text,
      check_count     integer NOT NULL DEFAULT 0
    );
    CREATE INDEX mq_pending_due ON peak.mq_pending (deliver_at, seq) WHERE kind <> 'half';
    CREATE INDEX mq_pending_half ON peak.mq_pending (producer_group, deliver_at) WHERE kind = 'half';
    CREATE INDEX mq_pending_id ON peak.mq_pending (msg_id);

    CREATE TABLE peak.mq_groups (
      name          text PRIMARY KEY,
      broadcasting  boolean NOT NULL DEFAULT false,
      max_retries   integer NOT NULL,
      backoff_ms    integer[] NOT NULL,
      invisible_ms  integer NOT NULL,
      created_at    timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE peak.mq_consumers (
      grp          text NOT NULL,
      topic        text NOT NULL,
      consumer_id  text NOT NULL,
      last_seen    timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (grp, topic, consumer_id)
    );

    CREATE TABLE peak.mq_offsets (
      grp            text NOT NULL,
      topic          text NOT NULL,
      queue_id       integer NOT NULL,
      pulled_offset  bigint NOT NULL,
      PRIMARY KEY (grp, topic, queue_id)
    );

    CREATE TABLE peak.mq_deliveries (
      grp           text NOT NULL,
      topic         text NOT NULL,
      queue_id      integer NOT NULL,
      queue_offset  bigint NOT NULL,
      msg_id        bigint NOT NULL,
      msg_group     text,
      visible_at    timestamptz,
      deliveries    integer NOT NULL DEFAULT 0,
      consumer_id   text,
      PRIMARY KEY (grp, topic, queue_id, queue_offset)
    );
    CREATE INDEX mq_deliveries_consumer ON peak.mq_deliveries (grp, topic, consumer_id);
    CREATE INDEX mq_deliveries_visible ON peak.mq_deliveries (grp, topic, queue_id, visible_at);

    CREATE TABLE peak.mq_dlq (
      grp           text NOT NULL,
      msg_id        bigint NOT NULL,
      topic         text NOT NULL,
      tag           text,
      keys          text[] NOT NULL DEFAULT '{}',
      msg_group     text,
      props         jsonb NOT NULL DEFAULT '{}',
      body          bytea NOT NULL,
      born_at       timestamptz NOT NULL,
      reconsume     integer NOT NULL,
      dead_at       timestamptz NOT NULL DEFAULT now(),
      reason        text,
      PRIMARY KEY (grp, msg_id)
    );

    CREATE TABLE peak.mq_trace (
      msg_id    bigint NOT NULL,
      at        timestamptz NOT NULL DEFAULT clock_timestamp(),
      event     text NOT NULL,
      grp       text,
      consumer  text,
      detail    text
    ) PARTITION BY RANGE (at);
    CREATE INDEX mq_trace_id ON peak.mq_trace (msg_id, at);
    CREATE TABLE peak.mq_trace_default PARTITION OF peak.mq_trace DEFAULT;

    -- Ids for rows written by SQL alone (sendInTransaction): the IdGenerator layout with
    -- worker id 1023, which brokers never take (they draw 0..1022 from mq_worker_seq).
    CREATE SEQUENCE peak.mq_id_seq MINVALUE 0 MAXVALUE 4095 START 0 CYCLE;
    CREATE SEQUENCE peak.mq_worker_seq MINVALUE 0 MAXVALUE 1022 START 0 CYCLE;
    CREATE FUNCTION peak.mq_new_id() RETURNS bigint LANGUAGE sql VOLATILE AS $fn$
      SELECT ((floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint - 1704067200000) << 22)
             | (1023::bigint << 12) | nextval('peak.mq_id_seq')
    $fn$;
  `,
};
