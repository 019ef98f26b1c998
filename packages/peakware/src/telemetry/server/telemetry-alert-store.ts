/**
 * Where SLA alerts live: rules in `peak.telemetry_alert_rules` and fired/resolved events in
 * `peak.telemetry_alert_events`. A rule's firing state is its last event, so it survives
 * restarts and reads the same on every node.
 */
import type pg from 'pg';
import type { Measure } from './telemetry-alert-logic.js';
import type { AlertEvent, AlertKind, AlertRule } from './telemetry-alert-rules.js';

/** A stored rule with whether its last event fired it. */
export interface StoredAlertRule {
  rule: AlertRule;
  firing: boolean;
}

/** The SQL of alert rules and events. */
export class AlertStore {
  readonly #pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  /** Creates or replaces a checked rule. */
  async putRule(rule: AlertRule): Promise<void> {
    await this.#pool.query(
      `INSERT INTO peak.telemetry_alert_rules
         (name, service, endpoint, kind, threshold, min_qps, window_seconds, for_seconds, webhook,
          mq_group, mq_topic, objective, latency_ms, short_window_seconds, resource)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
       ON CONFLICT (name) DO UPDATE SET service = $2, endpoint = $3, kind = $4, threshold = $5,
         min_qps = $6, window_seconds = $7, for_seconds = $8, webhook = $9, mq_group = $10,
         mq_topic = $11, objective = $12, latency_ms = $13, short_window_seconds = $14,
         resource = $15`,
      [
        rule.name,
        rule.service ?? null,
        rule.endpoint ?? null,
        rule.kind,
        rule.threshold,
        rule.minQps,
        rule.windowSeconds,
        rule.forSeconds,
        rule.webhook ?? null,
        rule.group ?? null,
        rule.topic ?? null,
        rule.objective ?? null,
        rule.latencyMs ?? null,
        rule.shortWindowSeconds ?? null,
        rule.resource ?? null,
      ],
    );
  }

  /** Deletes a rule; false when there was none. */
  async deleteRule(name: string): Promise<boolean> {
    const res = await this.#pool.query('DELETE FROM peak.telemetry_alert_rules WHERE name = $1', [
      name,
    ]);
    return (res.rowCount ?? 0) > 0;
  }

  /** Silences a rule's webhooks until `until`; false if unknown. */
  async silence(name: string, until: Date): Promise<boolean> {
    const res = await this.#pool.query(
      'UPDATE peak.telemetry_alert_rules SET silenced_until = $2 WHERE name = $1',
      [name, until],
    );
    return (res.rowCount ?? 0) > 0;
  }

  /** Every rule, by name, with whether its last event fired it. */
  async rulesWithState(): Promise<StoredAlertRule[]> {
    const res = await this.#pool.query(
      `SELECT r.*, e.state AS last_state FROM peak.telemetry_alert_rules r
         LEFT JOIN LATERAL (SELECT state FROM peak.telemetry_alert_events
                             WHERE rule = r.name ORDER BY id DESC LIMIT 1) e ON true
        ORDER BY r.name`,
    );
    return res.rows.map((r) => ({ rule: fromRow(r), firing: r.last_state === 'fired' }));
  }

  /** Every rule (what one evaluation goes through). */
  async rules(): Promise<AlertRule[]> {
    const res = await this.#pool.query('SELECT * FROM peak.telemetry_alert_rules');
    return res.rows.map(fromRow);
  }

  /** Whether each rule that has events is firing now (its last event). */
  async firingByRule(): Promise<Map<string, boolean>> {
    const res = await this.#pool.query(
      `SELECT DISTINCT ON (rule) rule, state FROM peak.telemetry_alert_events ORDER BY rule, id DESC`,
    );
    return new Map(res.rows.map((r) => [String(r.rule), r.state === 'fired']));
  }

  /** Events, newest first, of one rule or all. */
  async events(rule: string | undefined, limit: number): Promise<AlertEvent[]> {
    const res = await this.#pool.query(
      `SELECT * FROM peak.telemetry_alert_events WHERE ($1::text IS NULL OR rule = $1)
        ORDER BY id DESC LIMIT $2`,
      [rule ?? null, limit],
    );
    return res.rows.map((r) => ({
      id: Number(r.id),
      rule: r.rule,
      state: r.state,
      value: Number(r.value),
      qps: Number(r.qps),
      details: (r.details ?? {}) as Record<string, unknown>,
      at: (r.at as Date).toISOString(),
      delivery: r.delivery,
    }));
  }

  /** Records a fired or resolved event; its id and time (undefined if the row says nothing). */
  async addEvent(
    rule: string,
    state: 'fired' | 'resolved',
    m: Measure,
    delivery: string,
  ): Promise<{ id: number; at: Date | undefined }> {
    const res = await this.#pool.query(
      `INSERT INTO peak.telemetry_alert_events (rule, state, value, qps, delivery, details)
       VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, at`,
      [rule, state, m.value, m.qps, delivery, JSON.stringify(m.details)],
    );
    return { id: Number(res.rows[0]?.id), at: res.rows[0]?.at };
  }

  /** Records how an event's webhook delivery ended (`sent`, `failed: ...`). */
  async setDelivery(id: number, outcome: string): Promise<void> {
    await this.#pool.query('UPDATE peak.telemetry_alert_events SET delivery = $2 WHERE id = $1', [
      id,
      outcome,
    ]);
  }
}

function fromRow(r: Record<string, unknown>): AlertRule {
  const opt = <T>(key: string, as: (v: unknown) => T) =>
    r[key] === null || r[key] === undefined ? undefined : as(r[key]);
  const rule: AlertRule = {
    name: String(r.name),
    kind: r.kind as AlertKind,
    threshold: Number(r.threshold),
    minQps: Number(r.min_qps),
    windowSeconds: Number(r.window_seconds),
    forSeconds: Number(r.for_seconds),
  };
  const fields = {
    service: opt('service', String),
    endpoint: opt('endpoint', String),
    resource: opt('resource', String),
    group: opt('mq_group', String),
    topic: opt('mq_topic', String),
    objective: opt('objective', Number),
    latencyMs: opt('latency_ms', Number),
    shortWindowSeconds: opt('short_window_seconds', Number),
    webhook: opt('webhook', String),
    silencedUntil: opt('silenced_until', (v) => (v as Date).toISOString()),
  };
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) Object.assign(rule, { [k]: v });
  return rule;
}
