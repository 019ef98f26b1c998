import type { Migration } from '../../../server/migrator.js';

/**
 * The message queue's send path: the GIN index on message keys only holds messages that
 * have keys. Most messages have none, and a GIN insert of an empty array still adds an
 * entry (and grows the pending list every insert has to clean up now and then); query by
 * key (`keys @> ARRAY[k] AND keys <> '{}'`) uses the partial index.
 */
export const mqHotPath: Migration = {
  version: 9,
  name: 'mq-hot-path',
  sql: `
    DROP INDEX peak.mq_messages_keys;
    CREATE INDEX mq_messages_keys ON peak.mq_messages USING gin (keys) WHERE keys <> '{}';
  `,
};
