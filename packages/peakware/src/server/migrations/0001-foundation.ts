import type { Migration } from '../migrator.js';

/** Control-plane nodes and admin tokens: what the foundation of the server needs. */
export const foundation: Migration = {
  version: 1,
  name: 'foundation',
  sql: `
    CREATE TABLE peak.nodes (
      node_id      text PRIMARY KEY,
      http_url     text NOT NULL,
      version      text NOT NULL,
      hostname     text NOT NULL,
      pid          integer NOT NULL,
      started_at   timestamptz NOT NULL DEFAULT now(),
      last_seen_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE peak.admin_tokens (
      id          bigserial PRIMARY KEY,
      token_hash  bytea NOT NULL UNIQUE,
      created_at  timestamptz NOT NULL DEFAULT now(),
      created_by  text NOT NULL,
      revoked_at  timestamptz
    );
    CREATE INDEX admin_tokens_active ON peak.admin_tokens (id) WHERE revoked_at IS NULL;
  `,
};
