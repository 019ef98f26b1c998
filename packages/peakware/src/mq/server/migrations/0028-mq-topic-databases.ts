import type { Migration } from '../../../server/migrator.js';

/**
 * Where each topic lives when the broker has more than one database (`mq.databases`,
 * src/mq/README.md "Topics on several databases"): a row per topic placed on another
 * database than the node's own; a topic without a row lives on the node's own (`main`), so
 * every topic made before this migration stays where it is. Written once, when the topic is
 * created; a topic does not move.
 */
export const mqTopicDatabases: Migration = {
  version: 28,
  name: 'mq-topic-databases',
  sql: `
    CREATE TABLE peak.mq_topic_databases (
      topic     text PRIMARY KEY,
      database  text NOT NULL,
      placed_at timestamptz NOT NULL DEFAULT now()
    );
  `,
};
