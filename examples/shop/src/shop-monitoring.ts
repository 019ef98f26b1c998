/**
 * What the shop watches while the sale runs, all through the control plane's telemetry
 * API: SLA alert rules (ARMS/Lurker style: latency at the edge, an error-budget burn rate,
 * and the backlog of the points consumer), and the per-second metrics every process
 * pushes (what `peak top` shows live).
 */
import { ORDER_PLACED_TOPIC, POINTS_GROUP } from './catalog.js';
import { BUY_RESOURCE } from './gateway.js';

/** An alert rule as `PUT /api/v1/telemetry/alerts/rules/:name` takes it. */
interface RuleBody {
  kind: 'p99' | 'error-rate' | 'mq-backlog' | 'burn-rate';
  [field: string]: unknown;
}

/**
 * The shop's SLA rules. Windows are short (seconds, not the hours a production burn-rate
 * rule uses) so that a 30 s sale on a laptop shows them fire and resolve.
 */
export const SHOP_ALERT_RULES: Record<string, { body: RuleBody; says: string }> = {
  'shop.buy-p99': {
    says: 'p99 of the gateway over 10 s > 1000 ms while ≥ 10 req/s, for 4 s',
    body: {
      kind: 'p99',
      service: 'shop.gateway',
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
export async function defineAlertRules(serverUrl: string, adminToken: string): Promise<void> {
  for (const [name, { body }] of Object.entries(SHOP_ALERT_RULES)) {
    const res = await fetch(`${serverUrl}/api/v1/telemetry/alerts/rules/${name}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`defining alert ${name}: HTTP ${res.status} ${await res.text()}`);
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
  serverUrl: string,
  sinceMs: number,
): Promise<AlertOutcome[]> {
  const outcomes: AlertOutcome[] = [];
  for (const [rule, { says }] of Object.entries(SHOP_ALERT_RULES)) {
    const res = await fetch(
      `${serverUrl}/api/v1/telemetry/alerts/events?rule=${encodeURIComponent(rule)}&limit=50`,
    );
    if (!res.ok) throw new Error(`reading alert events: HTTP ${res.status} ${await res.text()}`);
    const { events } = (await res.json()) as {
      events: { id: number; state: 'fired' | 'resolved'; value: number; at: string }[];
    };
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

/** One resource's figures from the pushed per-second metrics (`GET .../metrics/live`). */
export interface ResourceFigures {
  service: string;
  resource: string;
  instances: number;
  qps: number;
  blockQps: number;
  errorQps: number;
  rtAvgMs: number;
  rtP99Ms?: number;
}

/** Per-resource averages over the last `seconds`, busiest first. */
export async function readLiveMetrics(
  serverUrl: string,
  seconds: number,
): Promise<ResourceFigures[]> {
  const res = await fetch(`${serverUrl}/api/v1/telemetry/metrics/live?seconds=${seconds}`);
  if (!res.ok) throw new Error(`reading metrics: HTTP ${res.status} ${await res.text()}`);
  const { resources } = (await res.json()) as { resources: ResourceFigures[] };
  return resources.sort((a, b) => b.qps + b.blockQps - (a.qps + a.blockQps));
}
