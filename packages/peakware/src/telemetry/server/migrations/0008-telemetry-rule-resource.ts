import type { Migration } from '../../../server/migrator.js';

/**
 * Error-rate and burn-rate alert rules may watch one resource's pushed per-second metrics
 * (every call counted) instead of the collector's spans (sampled): `resource` names it.
 */
export const telemetryRuleResource: Migration = {
  version: 8,
  name: 'telemetry-rule-resource',
  sql: `
    ALTER TABLE peak.telemetry_alert_rules ADD COLUMN resource text;
  `,
};
