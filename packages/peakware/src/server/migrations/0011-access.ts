import type { Migration } from '../migrator.js';

/**
 * Who may call the control plane: apps with their grants and hashed credentials, and a
 * role and name for every operator token (the tokens of before are admins named `admin`).
 */
export const access: Migration = {
  version: 11,
  name: 'access',
  sql: `
    CREATE TABLE peak.apps (
      name        text PRIMARY KEY,
      scopes      text[] NOT NULL DEFAULT '{}',
      created_at  timestamptz NOT NULL DEFAULT now(),
      created_by  text NOT NULL,
      updated_at  timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE peak.app_credentials (
      id          bigserial PRIMARY KEY,
      app         text NOT NULL REFERENCES peak.apps (name) ON DELETE CASCADE,
      token_hash  bytea NOT NULL UNIQUE,
      hint        text NOT NULL,
      created_at  timestamptz NOT NULL DEFAULT now(),
      created_by  text NOT NULL,
      expires_at  timestamptz,
      revoked_at  timestamptz
    );
    CREATE INDEX app_credentials_app ON peak.app_credentials (app);

    ALTER TABLE peak.admin_tokens
      ADD COLUMN role text NOT NULL DEFAULT 'admin' CHECK (role IN ('admin', 'operator', 'viewer')),
      ADD COLUMN name text NOT NULL DEFAULT 'admin';
  `,
};
