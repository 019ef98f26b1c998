import type { Migration } from '../../../server/migrator.js';

/**
 * The gateway's state: routes, apps, keys and subscriptions as one table of objects, each
 * change stamped with the next value of `peak.gateway_rev` and announced on channel
 * `peak_gateway` (payload: the rev), so gateways catch up with "everything after rev N".
 * A deleted object stays as a tombstone (value NULL) for a day, so a gateway that was away
 * learns of the delete; one away longer gets a whole snapshot (`pruned_rev`). Nonces (an
 * unlogged table: a crash forgets them, as a cache would) and quota usage per UTC day and
 * month are here too.
 */
export const gateway: Migration = {
  version: 11,
  name: 'gateway',
  sql: `
    CREATE SEQUENCE peak.gateway_rev;
    CREATE TABLE peak.gateway_objects (
      kind       text NOT NULL CHECK (kind IN ('route', 'app', 'key', 'subscription')),
      id         text NOT NULL,
      value      jsonb,
      rev        bigint NOT NULL,
      shape      text,
      updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (kind, id)
    );
    CREATE INDEX gateway_objects_rev ON peak.gateway_objects (rev);
    CREATE UNIQUE INDEX gateway_objects_shape ON peak.gateway_objects (shape)
      WHERE value IS NOT NULL AND shape IS NOT NULL;
    CREATE TABLE peak.gateway_meta (
      one        boolean PRIMARY KEY DEFAULT true CHECK (one),
      pruned_rev bigint NOT NULL DEFAULT 0
    );
    INSERT INTO peak.gateway_meta DEFAULT VALUES;
    CREATE UNLOGGED TABLE peak.gateway_nonces (
      key_id     text NOT NULL,
      nonce      text NOT NULL,
      expires_at timestamptz NOT NULL,
      PRIMARY KEY (key_id, nonce)
    );
    CREATE INDEX gateway_nonces_expiry ON peak.gateway_nonces (expires_at);
    CREATE TABLE peak.gateway_quota_usage (
      app          text NOT NULL,
      api          text NOT NULL,
      period       text NOT NULL CHECK (period IN ('day', 'month')),
      period_start date NOT NULL,
      used         bigint NOT NULL DEFAULT 0 CHECK (used >= 0),
      PRIMARY KEY (app, api, period, period_start)
    );
  `,
};
