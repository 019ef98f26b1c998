import type { Migration } from '../../../server/migrator.js';

/**
 * Releases: one row per release of a supervised service (at most one in progress per
 * service), its settings, where it stands (phase, step, when the step began, the primary's
 * last figures), and every step it took with the figures behind it (`peak release show`).
 */
export const scaleReleases: Migration = {
  version: 24,
  name: 'scale-releases',
  sql: `
    CREATE TABLE peak.scale_releases (
      id              bigserial PRIMARY KEY,
      app             text NOT NULL,
      service         text NOT NULL,
      version         text NOT NULL,
      command         text NOT NULL,
      from_version    text NOT NULL,
      settings        jsonb NOT NULL,
      state           text NOT NULL CHECK (state IN ('running', 'paused', 'promoted', 'rolled-back', 'aborted')),
      phase           text NOT NULL CHECK (phase IN ('starting', 'step', 'done')),
      step            integer NOT NULL DEFAULT 0,
      step_started_at timestamptz NOT NULL DEFAULT now(),
      baseline        jsonb,
      outcome         text,
      author          text NOT NULL,
      created_at      timestamptz NOT NULL DEFAULT now(),
      updated_at      timestamptz NOT NULL DEFAULT now()
    );
    CREATE UNIQUE INDEX scale_releases_one_in_progress ON peak.scale_releases (app, service)
      WHERE state IN ('running', 'paused');

    CREATE TABLE peak.scale_release_events (
      id          bigserial PRIMARY KEY,
      release_id  bigint NOT NULL REFERENCES peak.scale_releases (id) ON DELETE CASCADE,
      at          timestamptz NOT NULL DEFAULT now(),
      kind        text NOT NULL,
      message     text NOT NULL,
      detail      jsonb NOT NULL DEFAULT '{}',
      author      text NOT NULL
    );
    CREATE INDEX scale_release_events_release ON peak.scale_release_events (release_id, id);
  `,
};
