import type { Migration } from '../migrator.js';

/**
 * The Ed25519 keys the control plane signs apps' identities with (any node signs with the
 * newest; the public halves are published for providers to verify offline). A retired key
 * signs no more but stays published until the identities it signed have expired. And the
 * nonces of signed MQ messages, claimed once per topic while their signing time is
 * accepted (a second send of one is a replay).
 */
export const identityKeys: Migration = {
  version: 14,
  name: 'identity-keys',
  sql: `
    CREATE TABLE peak.identity_keys (
      kid          text PRIMARY KEY,
      public_pem   text NOT NULL,
      private_pem  text NOT NULL,
      created_at   timestamptz NOT NULL DEFAULT now(),
      retired_at   timestamptz
    );

    CREATE TABLE peak.mq_signed_nonces (
      topic       text NOT NULL,
      nonce       text NOT NULL,
      expires_at  timestamptz NOT NULL,
      PRIMARY KEY (topic, nonce)
    );
    CREATE INDEX mq_signed_nonces_expiry ON peak.mq_signed_nonces (expires_at);
  `,
};
