import type { Migration } from '../../../server/migrator.js';

/**
 * Service registry: one row per (provider instance, service key), alive while its lease is
 * renewed. Changes are announced on channel `peak_registry` (payload: the service key) so
 * every control-plane node pushes them to its watchers.
 */
export const registry: Migration = {
  version: 2,
  name: 'registry',
  sql: `
    CREATE TABLE peak.registry_instances (
      instance_id      text NOT NULL,
      service_key      text NOT NULL,
      service          text NOT NULL,
      version          text NOT NULL,
      grp              text NOT NULL,
      host             text NOT NULL,
      port             integer NOT NULL CHECK (port > 0 AND port < 65536),
      weight           integer NOT NULL CHECK (weight >= 0),
      tags             text[] NOT NULL DEFAULT '{}',
      metadata         jsonb NOT NULL DEFAULT '{}',
      status           text NOT NULL DEFAULT 'up' CHECK (status IN ('up', 'offline')),
      started_at       timestamptz NOT NULL DEFAULT now(),
      registered_at    timestamptz NOT NULL DEFAULT now(),
      lease_expires_at timestamptz NOT NULL,
      PRIMARY KEY (instance_id, service_key)
    );
    CREATE INDEX registry_instances_key ON peak.registry_instances (service_key);
    CREATE INDEX registry_instances_lease ON peak.registry_instances (lease_expires_at);
  `,
};
