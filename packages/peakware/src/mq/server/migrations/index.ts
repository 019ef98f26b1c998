/** The mq tables' migrations, in order: the node's database, and each message database (`mq.databases`). */
import type { Migration } from '../../../server/migrator.js';
import { mq } from './0003-mq.js';
import { mqHotPath } from './0009-mq-hot-path.js';
import { mqDeliveredAt } from './0010-mq-delivered-at.js';
import { mqStorageV2 } from './0021-mq-storage-v2.js';
import { mqTopicDatabases } from './0028-mq-topic-databases.js';

export const mqMigrations: readonly Migration[] = [
  mq,
  mqHotPath,
  mqDeliveredAt,
  mqStorageV2,
  mqTopicDatabases,
];
