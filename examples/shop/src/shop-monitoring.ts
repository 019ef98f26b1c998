/**
 * What the shop watches while the sale runs, all through the control plane's typed admin
 * API (`peakware/admin`): SLA alert rules (ARMS/Lurker style: latency at the edge, an
 * error-budget burn rate, and the backlog of the points consumer), and the per-second
 * metrics every process pushes (what `peak top` shows live).
 */
import type { AdminClient, AlertRuleBody, LiveResource } from 'peakware/admin';
import { ORDER_PLACED_TOPIC, POINTS_GROUP } from './catalog.js';
import { BUY_RESOURCE } from './edge.js';

/**
 * The shop's SLA rules. Windows are short (seconds, not the hours a production burn-rate
 * rule uses) so that a 30 s sale on a laptop shows them fire and resolve.
 */
export const SHOP_ALERT_RULES: Record<string, { body: AlertRuleBody; says: string }> = {
  'shop.buy-p99': {
    says: `p99 of ${BUY_RESOURCE} over 10 s > 1000 ms while ≥ 10 req/s, for 4 s (every call: the gateways' pushed RT histograms added)`,
    body: {
      kind: 'p99',
      service: 'shop.gateway',
      resource: BUY_RESOURCE,
      threshold: 1000,
      minQps: 10,
      windowSeconds: 10,
      forSeconds: 4,
    },
  },
  'shop.buy-burn': {
    says: `SLO 99% of ${BUY_RESOURCE} succeed: error budget burning > 5× over 60 s and 10 s, at ≥ 2 req/s`,
    body: {
      kind: 'burn-rate',
      service: 'shop.gateway',
      resource: BUY_RESOURCE,
      objective: 0.99,
      // Not on a handful of calls: one failure among the first few reads as a burn of 100.
      minQps: 2,
      threshold: 5,
      windowSeconds: 60,
      shortWindowSeconds: 10,
    },
  },
  'shop.points-backlog': {
    says: `backlog of ${POINTS_GROUP} on ${ORDER_PLACED_TOPIC} > 25 messages for 4 s`,
    body: {
      kind: 'mq-backlog',
      group: POINTS_GROUP,
      topic: ORDER_PLACED_TOPIC,
      threshold: 25,
      forSeconds: 4,
    },
  },
};

/** Creates (or replaces) the shop's alert rules. */
export async function defineAlertRules(admin: AdminClient): Promise<void> {
  for (const [name, { body }] of Object.entries(SHOP_ALERT_RULES)) {
    await admin.alerts.putRule(name, body);
  }
}

/** What one rule did since the sale began. */
export interface AlertOutcome {
  rule: string;
  says: string;
  /** Seconds after the sale's start of each transition, in order. */
  transitions: { state: 'fired' | 'resolved'; atSecond: number; value: number }[];
}

/** The fired/resolved events of the shop's rules since `sinceMs`. */
export async function readAlertOutcomes(
  admin: AdminClient,
  sinceMs: number,
): Promise<AlertOutcome[]> {
  const outcomes: AlertOutcome[] = [];
  for (const [rule, { says }] of Object.entries(SHOP_ALERT_RULES)) {
    const events = await admin.alerts.events({ rule, limit: 50 });
    const transitions = events
      .filter((e) => Date.parse(e.at) >= sinceMs)
      .sort((a, b) => a.id - b.id)
      .map((e) => ({
        state: e.state,
        atSecond: Math.round((Date.parse(e.at) - sinceMs) / 100) / 10,
        value: e.value,
      }));
    outcomes.push({ rule, says, transitions });
  }
  return outcomes;
}

/** Per-resource averages over the last `seconds`, busiest first. */
export async function readLiveMetrics(
  admin: AdminClient,
  seconds: number,
): Promise<LiveResource[]> {
  const { resources } = await admin.telemetry.liveMetrics({ seconds });
  return resources.sort((a, b) => b.qps + b.blockQps - (a.qps + a.blockQps));
}
