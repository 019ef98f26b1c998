/**
 * SLA alerts. Four kinds of rule, each with a for-duration, a webhook and silences:
 *
 * - `p99` (over the collector's spans of one service, optionally one endpoint, real traffic
 *   only): breached when p99 RT > `threshold` ms over `windowSeconds` while QPS ≥ `minQps`;
 * - `error-rate` (same spans): breached when errors / calls > `threshold` (0..1);
 * - `mq-backlog`: breached when the backlog of consumer `group` on `topic` (messages stored
 *   but not yet acked, in flight included: mq's own backlog query) > `threshold`;
 * - `burn-rate` (SRE multi-window, multi-burn-rate): an SLO says `objective` (e.g. 0.999)
 *   of the service's calls succeed (and, with `latencyMs`, finish within it); the burn
 *   rate of a window is its bad-call ratio / (1 − objective); breached when the burn rate
 *   over `windowSeconds` (long, default 1 h) AND over `shortWindowSeconds` (default 5 min)
 *   both exceed `threshold` (the factor, default 14.4: 2% of a 30-day budget in an hour).
 *
 * `error-rate` and `burn-rate` rules with a `resource` count that resource's pushed
 * per-second metrics (`MetricsPusher`: every call, summed over instances, the last second
 * left out as pushes may still be on their way) instead of spans, which are sampled.
 *
 * A breach that lasts `forSeconds` fires (one event, webhook POST); the first evaluation
 * without a breach resolves it (event, webhook). A silenced rule still records events but
 * sends no webhook. Events are listed by the API; a rule's firing state is its last event,
 * so it survives restarts and is the same on every node. With several control-plane nodes
 * only the one holding the evaluator lock ({@link AdvisoryLeader}) evaluates.
 */
import type pg from 'pg';
import { errorMessage, InvalidArgumentError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { AdvisoryLeader } from '../../server/advisory-leader.js';
import type { MqBacklogSource } from './mq-backlog-source.js';
import {
  burnMeasure,
  type CallCounts,
  defaultShortWindowSeconds,
  deliveryFor,
  type Measure,
  metricsWindow,
  stepAlert,
  thresholdMeasure,
} from './telemetry-alert-logic.js';

/** The kinds of alert rule. */
export const ALERT_KINDS = ['p99', 'error-rate', 'mq-backlog', 'burn-rate'] as const;

/** One kind of alert rule. */
export type AlertKind = (typeof ALERT_KINDS)[number];

/** One alert rule. */
export interface AlertRule {
  name: string;
  kind: AlertKind;
  /** The watched service (every kind but `mq-backlog`). */
  service?: string;
  /** Server span name; absent = every endpoint of the service. */
  endpoint?: string;
  /**
   * `error-rate`/`burn-rate`: count this resource's pushed per-second metrics (exact)
   * instead of the service's spans (sampled).
   */
  resource?: string;
  /** `mq-backlog`: the consumer group. */
  group?: string;
  /** `mq-backlog`: the topic. */
  topic?: string;
  /**
   * ms for `p99`, a fraction 0..1 for `error-rate`, messages for `mq-backlog`, the burn
   * factor for `burn-rate`.
   */
  threshold: number;
  minQps: number;
  /** The window (`burn-rate`: the long one). Not used by `mq-backlog`. */
  windowSeconds: number;
  /** `burn-rate`: the short window. */
  shortWindowSeconds?: number;
  /** `burn-rate`: the SLO objective, a fraction strictly between 0 and 1. */
  objective?: number;
  /** `burn-rate`: a call slower than this (ms) counts against the SLO too. */
  latencyMs?: number;
  forSeconds: number;
  webhook?: string;
  silencedUntil?: string;
}

/** A rule as the API takes it: the kind-specific defaults may be left out. */
export type AlertRuleInput = Omit<
  AlertRule,
  'threshold' | 'minQps' | 'windowSeconds' | 'forSeconds' | 'silencedUntil'
> & {
  threshold?: number;
  minQps?: number;
  windowSeconds?: number;
  forSeconds?: number;
};

/** One fired or resolved event. */
export interface AlertEvent {
  id: number;
  rule: string;
  state: 'fired' | 'resolved';
  /** The measured p99 (ms), error rate, backlog (messages) or long-window burn rate. */
  value: number;
  qps: number;
  /** Kind-specific figures (short-window burn rate, in-flight messages, ...). */
  details: Record<string, unknown>;
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

/** Default burn factor: 14.4 over 1 h burns 2% of a 30-day error budget. */
export const DEFAULT_BURN_FACTOR = 14.4;

function bad(rule: string, what: string): InvalidArgumentError {
  return new InvalidArgumentError(`alert rule ${rule}: ${what}`);
}

/**
 * Fills the kind's defaults and checks a rule from the API; throws a clear
 * {@link InvalidArgumentError} naming the rule and the field.
 */
export function validateRule(input: AlertRuleInput): AlertRule {
  const n = input.name;
  const spanKind = input.kind !== 'mq-backlog';
  if (spanKind) {
    if (input.service === undefined) {
      throw bad(n, `a ${input.kind} rule needs 'service' (the service whose calls it watches)`);
    }
    for (const f of ['group', 'topic'] as const) {
      if (input[f] !== undefined) {
        throw bad(n, `'${f}' belongs to mq-backlog rules, not ${input.kind}`);
      }
    }
  } else {
    if (input.group === undefined || input.topic === undefined) {
      throw bad(n, "an mq-backlog rule needs 'group' (the consumer group) and 'topic'");
    }
    for (const f of ['service', 'endpoint'] as const) {
      if (input[f] !== undefined) {
        throw bad(n, `'${f}' does not apply to an mq-backlog rule; it watches 'group' on 'topic'`);
      }
    }
  }
  if (input.resource !== undefined) {
    if (input.kind !== 'error-rate' && input.kind !== 'burn-rate') {
      throw bad(
        n,
        `'resource' (pushed metrics) applies to error-rate and burn-rate rules, not ${input.kind}`,
      );
    }
    if (input.endpoint !== undefined) {
      throw bad(n, "give 'resource' (pushed metrics) or 'endpoint' (spans), not both");
    }
    if (input.latencyMs !== undefined) {
      throw bad(
        n,
        "'latencyMs' needs each call's duration, which spans have and per-second metrics do not: leave out 'resource' for a latency SLO",
      );
    }
  }
  if (input.kind !== 'burn-rate') {
    for (const f of ['objective', 'latencyMs', 'shortWindowSeconds'] as const) {
      if (input[f] !== undefined) {
        throw bad(n, `'${f}' belongs to burn-rate rules, not ${input.kind}`);
      }
    }
  }
  let threshold = input.threshold;
  let windowSeconds = input.windowSeconds ?? 60;
  let shortWindowSeconds: number | undefined;
  switch (input.kind) {
    case 'p99':
      if (threshold === undefined) throw bad(n, "a p99 rule needs 'threshold' (ms)");
      break;
    case 'error-rate':
      if (threshold === undefined) throw bad(n, "an error-rate rule needs 'threshold' (0..1)");
      if (threshold > 1) {
        throw bad(n, `an error-rate threshold is a fraction 0..1, got ${threshold}`);
      }
      break;
    case 'mq-backlog':
      if (threshold === undefined || !Number.isInteger(threshold)) {
        throw bad(n, `an mq-backlog rule needs 'threshold', a whole number of messages`);
      }
      break;
    case 'burn-rate': {
      const o = input.objective;
      if (o === undefined || !(o > 0 && o < 1)) {
        throw bad(
          n,
          `a burn-rate rule needs 'objective', the SLO as a fraction strictly between 0 and 1 (e.g. 0.999), got ${o}`,
        );
      }
      threshold ??= DEFAULT_BURN_FACTOR;
      if (!(threshold > 0)) throw bad(n, `the burn factor 'threshold' must be > 0`);
      windowSeconds = input.windowSeconds ?? 3600;
      shortWindowSeconds = input.shortWindowSeconds ?? defaultShortWindowSeconds(windowSeconds);
      if (shortWindowSeconds >= windowSeconds) {
        throw bad(
          n,
          `shortWindowSeconds (${shortWindowSeconds}) must be shorter than windowSeconds (${windowSeconds}), e.g. 300 and 3600`,
        );
      }
      break;
    }
  }
  if (input.webhook !== undefined && !/^https?:\/\//.test(input.webhook)) {
    throw bad(n, `webhook must be an http(s) URL, got '${input.webhook}'`);
  }
  const rule: AlertRule = {
    name: n,
    kind: input.kind,
    threshold,
    minQps: input.minQps ?? 0,
    windowSeconds,
    forSeconds: input.forSeconds ?? 0,
  };
  for (const f of [
    'service',
    'endpoint',
    'resource',
    'group',
    'topic',
    'objective',
    'latencyMs',
  ] as const) {
    const v = input[f];
    if (v !== undefined) Object.assign(rule, { [f]: v });
  }
  if (shortWindowSeconds !== undefined) rule.shortWindowSeconds = shortWindowSeconds;
  if (input.webhook !== undefined) rule.webhook = input.webhook;
  return rule;
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

/** Rules, events and the periodic evaluator. */
export class AlertEvaluator {
  readonly #pool: pg.Pool;
  readonly #logger: Logger;
  readonly #mq: MqBacklogSource;
  readonly #leader: AdvisoryLeader | undefined;
  readonly #state = new Map<string, RuleState>();
  #timer: NodeJS.Timeout | undefined;
  #tick: Promise<void> | undefined;
  #loaded = false;

  /**
   * `mq` reads consumer backlog for `mq-backlog` rules. Without a `leader`, this evaluator
   * always evaluates (one node, or tests).
   */
  constructor(pool: pg.Pool, logger: Logger, mq: MqBacklogSource, leader?: AdvisoryLeader) {
    this.#pool = pool;
    this.#logger = logger;
    this.#mq = mq;
    this.#leader = leader;
  }

  /** Whether this node evaluates (holds the evaluator lock, or runs without one). */
  get evaluating(): boolean {
    return this.#leader === undefined ? this.#timer !== undefined : this.#leader.leader;
  }

  /** Creates or replaces a rule (its firing state is kept); returns it with defaults. */
  async putRule(input: AlertRuleInput): Promise<AlertRule> {
    const rule = validateRule(input);
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
    return rule;
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

  /**
   * Every rule with its state: `firing` from its last event (the same on every node);
   * `value`/`qps`, the last measurement, only on the evaluating node.
   */
  async rules(): Promise<(AlertRule & { firing: boolean; value?: number; qps?: number })[]> {
    const res = await this.#pool.query(
      `SELECT r.*, e.state AS last_state FROM peak.telemetry_alert_rules r
         LEFT JOIN LATERAL (SELECT state FROM peak.telemetry_alert_events
                             WHERE rule = r.name ORDER BY id DESC LIMIT 1) e ON true
        ORDER BY r.name`,
    );
    return res.rows.map((r) => {
      const rule = fromRow(r);
      const s = this.#state.get(rule.name);
      return {
        ...rule,
        firing: r.last_state === 'fired',
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
      details: (r.details ?? {}) as Record<string, unknown>,
      at: (r.at as Date).toISOString(),
      delivery: r.delivery,
    }));
  }

  /** Starts evaluating every `intervalMs` (only while holding the leader lock, if any). */
  start(intervalMs: number): void {
    this.#timer = setInterval(() => {
      if (this.#tick !== undefined) return;
      this.#tick = this.#once()
        .catch((err: unknown) =>
          this.#logger.warn({ err: errorMessage(err) }, 'alert evaluation failed'),
        )
        .finally(() => {
          this.#tick = undefined;
        });
    }, intervalMs);
    this.#timer.unref();
  }

  async #once(): Promise<void> {
    if (this.#leader !== undefined) {
      const wasLeader = this.#leader.leader;
      if (!(await this.#leader.holds())) return;
      if (!wasLeader) {
        // Another node evaluated until now: start from the events it recorded.
        this.#state.clear();
        this.#loaded = false;
      }
    }
    await this.evaluate();
  }

  /** Stops the evaluator (waits for a running evaluation) and gives up the lock. */
  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#tick;
    await this.#leader?.close();
  }

  async #load(): Promise<void> {
    const res = await this.#pool.query(
      `SELECT DISTINCT ON (rule) rule, state FROM peak.telemetry_alert_events ORDER BY rule, id DESC`,
    );
    for (const r of res.rows) this.#state.set(r.rule, { firing: r.state === 'fired' });
    this.#loaded = true;
  }

  async #measureSpans(rule: AlertRule, now: number): Promise<Measure> {
    if (rule.resource !== undefined) {
      const c = await this.#countMetrics(rule, now, rule.windowSeconds);
      return thresholdMeasure(rule, c.calls, c.calls === 0 ? 0 : c.bad / c.calls, {
        calls: c.calls,
        errors: c.bad,
        source: 'metrics',
      });
    }
    const m = await this.#pool.query(
      `SELECT count(*)::bigint AS calls, sum(error::int)::bigint AS errors,
              percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_us) AS p99
         FROM peak.telemetry_spans
        WHERE service = $1 AND kind IN ('server', 'consumer') AND NOT stress
          AND start_us >= $2 AND ($3::text IS NULL OR name = $3)`,
      [rule.service, (now - rule.windowSeconds * 1000) * 1000, rule.endpoint ?? null],
    );
    const calls = Number(m.rows[0]?.calls ?? 0);
    const value =
      rule.kind === 'p99'
        ? Number(m.rows[0]?.p99 ?? 0) / 1000
        : calls === 0
          ? 0
          : Number(m.rows[0]?.errors ?? 0) / calls;
    return thresholdMeasure(rule, calls, value, { calls });
  }

  /**
   * Calls and failures of `rule.resource` from pushed metrics over the long and short
   * windows ending one whole second ago (pushes of the last second may still be coming).
   */
  async #countMetrics(rule: AlertRule, now: number, shortSeconds: number): Promise<CallCounts> {
    const { from, shortFrom, until } = metricsWindow(now, rule.windowSeconds, shortSeconds);
    const m = await this.#pool.query(
      `SELECT coalesce(sum(success + error), 0)::float8 AS calls,
              coalesce(sum(error), 0)::float8 AS bad,
              coalesce(sum(success + error) FILTER (WHERE second >= to_timestamp($4 / 1000.0)), 0)::float8 AS short_calls,
              coalesce(sum(error) FILTER (WHERE second >= to_timestamp($4 / 1000.0)), 0)::float8 AS short_bad
         FROM peak.telemetry_metrics
        WHERE service = $1 AND resource = $2
          AND second >= to_timestamp($3 / 1000.0) AND second < to_timestamp($5 / 1000.0)`,
      [rule.service, rule.resource, from, shortFrom, until],
    );
    const row = m.rows[0] ?? {};
    return {
      calls: Number(row.calls ?? 0),
      bad: Number(row.bad ?? 0),
      shortCalls: Number(row.short_calls ?? 0),
      shortBad: Number(row.short_bad ?? 0),
    };
  }

  async #measureBacklog(rule: AlertRule): Promise<Measure> {
    const queues = await this.#mq.backlog(rule.group ?? '', rule.topic ?? '');
    const backlog = queues.reduce((a, q) => a + q.backlog, 0);
    const inflight = queues.reduce((a, q) => a + q.inflight, 0);
    return {
      breach: backlog > rule.threshold,
      value: backlog,
      qps: 0,
      details: { group: rule.group, topic: rule.topic, inflight, queues: queues.length },
    };
  }

  async #measureBurn(rule: AlertRule, now: number): Promise<Measure> {
    const short = rule.shortWindowSeconds ?? defaultShortWindowSeconds(rule.windowSeconds);
    let c: CallCounts;
    if (rule.resource !== undefined) {
      c = await this.#countMetrics(rule, now, short);
    } else {
      const shortFrom = (now - short * 1000) * 1000;
      const latencyUs = rule.latencyMs === undefined ? null : rule.latencyMs * 1000;
      const m = await this.#pool.query(
        `WITH calls AS (
           SELECT start_us, (error OR ($4::float8 IS NOT NULL AND duration_us > $4::float8)) AS bad
             FROM peak.telemetry_spans
            WHERE service = $1 AND kind IN ('server', 'consumer') AND NOT stress
              AND start_us >= $2 AND ($3::text IS NULL OR name = $3))
         SELECT count(*)::bigint AS calls, count(*) FILTER (WHERE bad)::bigint AS bad,
                count(*) FILTER (WHERE start_us >= $5)::bigint AS short_calls,
                count(*) FILTER (WHERE bad AND start_us >= $5)::bigint AS short_bad
           FROM calls`,
        [
          rule.service,
          (now - rule.windowSeconds * 1000) * 1000,
          rule.endpoint ?? null,
          latencyUs,
          shortFrom,
        ],
      );
      const row = m.rows[0] ?? {};
      c = {
        calls: Number(row.calls ?? 0),
        bad: Number(row.bad ?? 0),
        shortCalls: Number(row.short_calls ?? 0),
        shortBad: Number(row.short_bad ?? 0),
      };
    }
    return burnMeasure(rule, c);
  }

  /** One evaluation of every rule (the timer calls it; tests may too). */
  async evaluate(now = Date.now()): Promise<void> {
    if (!this.#loaded) await this.#load();
    const res = await this.#pool.query('SELECT * FROM peak.telemetry_alert_rules');
    for (const row of res.rows) {
      const rule = fromRow(row);
      let m: Measure;
      try {
        m =
          rule.kind === 'mq-backlog'
            ? await this.#measureBacklog(rule)
            : rule.kind === 'burn-rate'
              ? await this.#measureBurn(rule, now)
              : await this.#measureSpans(rule, now);
      } catch (err) {
        this.#logger.warn({ rule: rule.name, err: errorMessage(err) }, 'alert rule not evaluated');
        continue;
      }
      const s = this.#state.get(rule.name) ?? { firing: false };
      this.#state.set(rule.name, s);
      s.lastValue = m.value;
      s.lastQps = m.qps;
      const change = stepAlert(s, m.breach, rule.forSeconds, now);
      if (change !== undefined) await this.#emit(rule, change, m, now);
    }
  }

  async #emit(rule: AlertRule, state: 'fired' | 'resolved', m: Measure, now: number) {
    const delivery = deliveryFor(rule, now);
    const res = await this.#pool.query(
      `INSERT INTO peak.telemetry_alert_events (rule, state, value, qps, delivery, details)
       VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, at`,
      [rule.name, state, m.value, m.qps, delivery, JSON.stringify(m.details)],
    );
    this.#logger.info({ rule: rule.name, state, value: m.value, qps: m.qps }, 'alert');
    if (delivery !== 'pending' || rule.webhook === undefined) return;
    const id = Number(res.rows[0]?.id);
    const body = {
      rule: rule.name,
      state,
      kind: rule.kind,
      service: rule.service ?? null,
      endpoint: rule.endpoint ?? null,
      ...(rule.kind === 'mq-backlog' ? { group: rule.group, topic: rule.topic } : {}),
      ...(rule.kind === 'burn-rate' ? { objective: rule.objective } : {}),
      threshold: rule.threshold,
      minQps: rule.minQps,
      value: m.value,
      qps: m.qps,
      details: m.details,
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
