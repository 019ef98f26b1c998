import type { Migration } from '../../../server/migrator.js';

/**
 * Which app registered an instance: only that app's credential may renew, change or
 * deregister it (NULL for instances an operator token registered).
 */
export const registryOwner: Migration = {
  version: 12,
  name: 'registry-owner',
  sql: `ALTER TABLE peak.registry_instances ADD COLUMN app text;`,
};
