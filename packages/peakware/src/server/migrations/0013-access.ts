import type { Migration } from '../migrator.js';

/**
 * Who may call the control plane: apps with their grants and hashed credentials, and a
 * role and name for every operator token (the tokens of before are admins named `admin`).
 * A console session (migration 12, when the console is loaded) may carry any of the roles.
 * A registry instance (migration 2) records which app registered it: only that app's
 * credential may renew, change or deregister it (NULL for instances an operator token
 * registered).
 */
export const access: Migration = {
  version: 13,
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

    ALTER TABLE IF EXISTS peak.registry_instances ADD COLUMN IF NOT EXISTS app text;

    ALTER TABLE IF EXISTS peak.console_sessions
      DROP CONSTRAINT IF EXISTS console_sessions_role_check,
      ADD CONSTRAINT console_sessions_role_check CHECK (role IN ('admin', 'operator', 'viewer'));
  `,
};
