import type { Migration } from '../../../server/migrator.js';

/**
 * Stress runs and capacity figures. A run is registered when it starts (`running`), its
 * target may be changed and its stop asked for while it runs (generators and agents poll
 * `control`), agents heartbeat into `stress_agents` to get their share, and the report and
 * isolation check land when it ends (`finished`). `stress_capacity` keeps the latest probe
 * of each service: the instance probed and its max QPS within the SLA.
 */
export const stress: Migration = {
  version: 16,
  name: 'stress',
  sql: `
    CREATE TABLE peak.stress_runs (
      id              text PRIMARY KEY,
      scenario        text NOT NULL,
      status          text NOT NULL CHECK (status IN ('running', 'finished')),
      model           jsonb NOT NULL,
      target          double precision,
      stop_requested  boolean NOT NULL DEFAULT false,
      started_at      timestamptz NOT NULL DEFAULT now(),
      finished_at     timestamptz,
      stop_reason     text,
      report          jsonb,
      isolation       jsonb
    );
    CREATE INDEX stress_runs_started ON peak.stress_runs (started_at DESC);
    CREATE TABLE peak.stress_agents (
      run_id     text NOT NULL REFERENCES peak.stress_runs (id) ON DELETE CASCADE,
      agent_id   text NOT NULL,
      joined_at  timestamptz NOT NULL DEFAULT now(),
      last_seen  timestamptz NOT NULL DEFAULT now(),
      report     jsonb,
      PRIMARY KEY (run_id, agent_id)
    );
    CREATE TABLE peak.stress_capacity (
      service      text PRIMARY KEY,
      instance     text NOT NULL,
      max_qps      double precision NOT NULL,
      p99_ms       double precision,
      sla          jsonb NOT NULL,
      steps        jsonb NOT NULL,
      measured_at  timestamptz NOT NULL DEFAULT now()
    );
  `,
};
