/**
 * Every migration of schema `peak`, in version order. A subsystem that needs tables adds a
 * file `NNNN-name.ts` here and appends it to the list; versions are never reused or edited
 * once released.
 */
import type { Migration } from '../migrator.js';
import { foundation } from './0001-foundation.js';
import { registry } from './0002-registry.js';
import { mq } from './0003-mq.js';
import { config } from './0004-config.js';
import { telemetry } from './0005-telemetry.js';
import { telemetryAlerts } from './0006-telemetry-alerts.js';
import { telemetryRulesMetrics } from './0007-telemetry-rules-metrics.js';
import { telemetryRuleResource } from './0008-telemetry-rule-resource.js';
import { mqHotPath } from './0009-mq-hot-path.js';
import { mqDeliveredAt } from './0010-mq-delivered-at.js';

/** The migrations this build of Peakware knows, oldest first. */
export const migrations: readonly Migration[] = [
  foundation,
  registry,
  mq,
  config,
  telemetry,
  telemetryAlerts,
  telemetryRulesMetrics,
  telemetryRuleResource,
  mqHotPath,
  mqDeliveredAt,
];
