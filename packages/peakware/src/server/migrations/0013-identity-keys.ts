import type { Migration } from '../migrator.js';

/**
 * The Ed25519 keys the control plane signs apps' identities with (any node signs with the
 * newest; the public halves are published for providers to verify offline). A retired key
 * signs no more but stays published until the identities it signed have expired.
 */
export const identityKeys: Migration = {
  version: 13,
  name: 'identity-keys',
  sql: `
    CREATE TABLE peak.identity_keys (
      kid          text PRIMARY KEY,
      public_pem   text NOT NULL,
      private_pem  text NOT NULL,
      created_at   timestamptz NOT NULL DEFAULT now(),
      retired_at   timestamptz
    );
  `,
};
