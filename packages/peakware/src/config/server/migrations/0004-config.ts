import type { Migration } from '../../../server/migrator.js';

/**
 * Config center: the released value of every item (app/group/key), every released version
 * (history, diff, rollback), at most one gray release per item, and an audit log of every
 * change. Changes are announced on channel `peak_config` (payload: `app/group/key`) so every
 * control-plane node pushes them to its watchers.
 */
export const config: Migration = {
  version: 4,
  name: 'config',
  sql: `
    CREATE TABLE peak.config_items (
      app        text NOT NULL,
      grp        text NOT NULL,
      key        text NOT NULL,
      version    integer NOT NULL CHECK (version > 0),
      format     text NOT NULL CHECK (format IN ('json', 'text')),
      value      text NOT NULL,
      schema     jsonb,
      updated_by text NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (app, grp, key)
    );
    CREATE TABLE peak.config_versions (
      app        text NOT NULL,
      grp        text NOT NULL,
      key        text NOT NULL,
      version    integer NOT NULL,
      format     text NOT NULL,
      value      text NOT NULL,
      author     text NOT NULL,
      comment    text NOT NULL DEFAULT '',
      source     text NOT NULL DEFAULT '',
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (app, grp, key, version)
    );
    CREATE TABLE peak.config_gray (
      app          text NOT NULL,
      grp          text NOT NULL,
      key          text NOT NULL,
      base_version integer NOT NULL,
      format       text NOT NULL,
      value        text NOT NULL,
      tags         text[] NOT NULL DEFAULT '{}',
      instance_ids text[] NOT NULL DEFAULT '{}',
      author       text NOT NULL,
      comment      text NOT NULL DEFAULT '',
      created_at   timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (app, grp, key)
    );
    CREATE TABLE peak.config_audit (
      id      bigserial PRIMARY KEY,
      at      timestamptz NOT NULL DEFAULT now(),
      actor   text NOT NULL,
      source  text NOT NULL,
      action  text NOT NULL,
      app     text NOT NULL,
      grp     text NOT NULL,
      key     text NOT NULL,
      version integer,
      detail  jsonb NOT NULL DEFAULT '{}'
    );
    CREATE INDEX config_audit_item ON peak.config_audit (app, grp, key, id);
  `,
};
