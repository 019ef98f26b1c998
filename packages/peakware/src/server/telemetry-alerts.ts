/**
 * SLA alerts over the collector's spans. A rule watches one service (optionally one
 * endpoint, i.e. server span name), real traffic only (stress spans excluded), over a
 * sliding `windowSeconds`:
 *
 * - `p99`: breached when p99 RT > `threshold` ms while QPS ≥ `minQps`;
 * - `error-rate`: breached when errors / calls > `threshold` (0..1) while QPS ≥ `minQps`.
 *
 * A breach that lasts `forSeconds` fires (one event, webhook POST); the first evaluation
 * without a breach resolves it (event, webhook). A silenced rule still records events but
 * sends no webhook. Events are listed by the API. State survives restarts through the last
 * event of each rule. With several control-plane nodes each would evaluate; only one node
 * should run the evaluator (not enforced yet).
 */
import type pg from 'pg';
import { errorMessage, InvalidArgumentError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';

/** One alert rule. */
export interface AlertRule {
  name: string;
  service: string;
  /** Server span name; absent = every endpoint of the service. */
  endpoint?: string;
  kind: 'p99' | 'error-rate';
  /** ms for `p99`, a fraction 0..1 for `error-rate`. */
  threshold: number;
  minQps: number;
  windowSeconds: number;
  forSeconds: number;
  webhook?: string;
  silencedUntil?: string;
}

/** One fired or resolved event. */
export interface AlertEvent {
  id: number;
  rule: string;
  state: 'fired' | 'resolved';
  /** The measured p99 (ms) or error rate. */
  value: number;
  qps: number;
  at: string;
  /** `sent`, `failed: ...`, `silenced`, `none` (no webhook) or `pending`. */
  delivery: string;
}

interface RuleState {
  breachSince?: number;
  firing: boolean;
  lastValue?: number;
  lastQps?: number;
}

/** Checks a rule from the API; throws a clear {@link InvalidArgumentError}. */
export function validateRule(rule: AlertRule): AlertRule {
  if (rule.kind === 'error-rate' && rule.threshold > 1) {
    throw new InvalidArgumentError(
      `rule ${rule.name}: an error-rate threshold is a fraction 0..1, got ${rule.threshold}`,
    );
  }
  if (rule.webhook !== undefined && !/^https?:\/\//.test(rule.webhook)) {
    throw new InvalidArgumentError(
      `rule ${rule.name}: webhook must be an http(s) URL, got '${rule.webhook}'`,
    );
  }
  return rule;
}

function fromRow(r: Record<string, unknown>): AlertRule {
  return {
    name: String(r.name),
    service: String(r.service),
    ...(r.endpoint === null ? {} : { endpoint: String(r.endpoint) }),
    kind: r.kind as AlertRule['kind'],
    threshold: Number(r.threshold),
    minQps: Number(r.min_qps),
    windowSeconds: Number(r.window_seconds),
    forSeconds: Number(r.for_seconds),
    ...(r.webhook === null ? {} : { webhook: String(r.webhook) }),
    ...(r.silenced_until === null
      ? {}
      : { silencedUntil: (r.silenced_until as Date).toISOString() }),
  };
}

/** Rules, events and the periodic evaluator. */
export class AlertEvaluator {
  readonly #pool: pg.Pool;
  readonly #logger: Logger;
  readonly #state = new Map<string, RuleState>();
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #loaded = false;

  constructor(pool: pg.Pool, logger: Logger) {
    this.#pool = pool;
    this.#logger = logger;
  }

  /** Creates or replaces a rule (its firing state is kept). */
  async putRule(rule: AlertRule): Promise<void> {
    validateRule(rule);
    await this.#pool.query(
      `INSERT INTO peak.telemetry_alert_rules
         (name, service, endpoint, kind, threshold, min_qps, window_seconds, for_seconds, webhook)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
       ON CONFLICT (name) DO UPDATE SET service = $2, endpoint = $3, kind = $4, threshold = $5,
         min_qps = $6, window_seconds = $7, for_seconds = $8, webhook = $9`,
      [
        rule.name,
        rule.service,
        rule.endpoint ?? null,
        rule.kind,
        rule.threshold,
        rule.minQps,
        rule.windowSeconds,
        rule.forSeconds,
        rule.webhook ?? null,
      ],
    );
  }

  /** Deletes a rule; false when there was none. */
  async deleteRule(name: string): Promise<boolean> {
    const res = await this.#pool.query('DELETE FROM peak.telemetry_alert_rules WHERE name = $1', [
      name,
    ]);
    this.#state.delete(name);
    return (res.rowCount ?? 0) > 0;
  }

  /** Silences a rule's webhooks until `until` (events are still recorded); false if unknown. */
  async silence(name: string, until: Date): Promise<boolean> {
    const res = await this.#pool.query(
      'UPDATE peak.telemetry_alert_rules SET silenced_until = $2 WHERE name = $1',
      [name, until],
    );
    return (res.rowCount ?? 0) > 0;
  }

  /** Every rule with its current state. */
  async rules(): Promise<(AlertRule & { firing: boolean; value?: number; qps?: number })[]> {
    const res = await this.#pool.query('SELECT * FROM peak.telemetry_alert_rules ORDER BY name');
    return res.rows.map((r) => {
      const rule = fromRow(r);
      const s = this.#state.get(rule.name);
      return {
        ...rule,
        firing: s?.firing ?? false,
        ...(s?.lastValue === undefined ? {} : { value: s.lastValue }),
        ...(s?.lastQps === undefined ? {} : { qps: s.lastQps }),
      };
    });
  }

  /** Events, newest first. */
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
      at: (r.at as Date).toISOString(),
      delivery: r.delivery,
    }));
  }

  /** Starts evaluating every `intervalMs`. */
  start(intervalMs: number): void {
    this.#timer = setInterval(() => {
      if (this.#running) return;
      this.#running = true;
      this.evaluate()
        .catch((err: unknown) =>
          this.#logger.warn({ err: errorMessage(err) }, 'alert evaluation failed'),
        )
        .finally(() => {
          this.#running = false;
        });
    }, intervalMs);
    this.#timer.unref();
  }

  /** Stops the evaluator. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async #load(): Promise<void> {
    const res = await this.#pool.query(
      `SELECT DISTINCT ON (rule) rule, state FROM peak.telemetry_alert_events ORDER BY rule, id DESC`,
    );
    for (const r of res.rows) this.#state.set(r.rule, { firing: r.state === 'fired' });
    this.#loaded = true;
  }

  /** One evaluation of every rule (the timer calls it; tests may too). */
  async evaluate(now = Date.now()): Promise<void> {
    if (!this.#loaded) await this.#load();
    const res = await this.#pool.query('SELECT * FROM peak.telemetry_alert_rules');
    for (const row of res.rows) {
      const rule = fromRow(row);
      const m = await this.#pool.query(
        `SELECT count(*)::bigint AS calls, sum(error::int)::bigint AS errors,
                percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_us) AS p99
           FROM peak.telemetry_spans
          WHERE service = $1 AND kind IN ('server', 'consumer') AND NOT stress
            AND start_us >= $2 AND ($3::text IS NULL OR name = $3)`,
        [rule.service, (now - rule.windowSeconds * 1000) * 1000, rule.endpoint ?? null],
      );
      const calls = Number(m.rows[0]?.calls ?? 0);
      const qps = calls / rule.windowSeconds;
      const value =
        rule.kind === 'p99'
          ? Number(m.rows[0]?.p99 ?? 0) / 1000
          : calls === 0
            ? 0
            : Number(m.rows[0]?.errors ?? 0) / calls;
      const breach = calls > 0 && qps >= rule.minQps && value > rule.threshold;
      const s = this.#state.get(rule.name) ?? { firing: false };
      this.#state.set(rule.name, s);
      s.lastValue = value;
      s.lastQps = qps;
      if (breach) {
        s.breachSince ??= now;
        if (!s.firing && now - s.breachSince >= rule.forSeconds * 1000) {
          s.firing = true;
          await this.#emit(rule, 'fired', value, qps, now);
        }
      } else {
        delete s.breachSince;
        if (s.firing) {
          s.firing = false;
          await this.#emit(rule, 'resolved', value, qps, now);
        }
      }
    }
  }

  async #emit(
    rule: AlertRule,
    state: 'fired' | 'resolved',
    value: number,
    qps: number,
    now: number,
  ) {
    const silenced = rule.silencedUntil !== undefined && Date.parse(rule.silencedUntil) > now;
    const delivery = rule.webhook === undefined ? 'none' : silenced ? 'silenced' : 'pending';
    const res = await this.#pool.query(
      `INSERT INTO peak.telemetry_alert_events (rule, state, value, qps, delivery)
       VALUES ($1, $2, $3, $4, $5) RETURNING id, at`,
      [rule.name, state, value, qps, delivery],
    );
    this.#logger.info({ rule: rule.name, state, value, qps }, 'alert');
    if (delivery !== 'pending' || rule.webhook === undefined) return;
    const id = Number(res.rows[0]?.id);
    const body = {
      rule: rule.name,
      state,
      service: rule.service,
      endpoint: rule.endpoint ?? null,
      kind: rule.kind,
      threshold: rule.threshold,
      minQps: rule.minQps,
      value,
      qps,
      at: new Date(res.rows[0]?.at ?? now).toISOString(),
    };
    // Delivery never holds up evaluation; its outcome is recorded on the event.
    void fetch(rule.webhook, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(5000),
    })
      .then((r) => (r.ok ? 'sent' : `failed: HTTP ${r.status}`))
      .catch((err: unknown) => `failed: ${errorMessage(err)}`.slice(0, 300))
      .then((outcome) =>
        this.#pool.query('UPDATE peak.telemetry_alert_events SET delivery = $2 WHERE id = $1', [
          id,
          outcome,
        ]),
      )
      .catch(() => undefined);
  }
}
