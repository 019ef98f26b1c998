/**
 * The SLA alert evaluator: every interval it measures each rule (telemetry-alert-measures.ts),
 * steps its for-duration (telemetry-alert-logic.ts) and records what changed
 * (telemetry-alert-store.ts). A breach that lasts `forSeconds` fires (one event, webhook
 * POST); the first evaluation without a breach resolves it (event, webhook). A silenced rule
 * still records events but sends no webhook. A rule's firing state is its last event, so it
 * survives restarts and is the same on every node. With several control-plane nodes only the
 * one holding the evaluator lock ({@link AdvisoryLeader}) evaluates. The rules' kinds and
 * fields are in telemetry-alert-rules.ts.
 */
import type pg from 'pg';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { AdvisoryLeader } from '../../server/advisory-leader.js';
import type { MqBacklogSource } from './mq-backlog-source.js';
import { deliveryFor, type Measure, stepAlert } from './telemetry-alert-logic.js';
import { AlertMeasures } from './telemetry-alert-measures.js';
import {
  type AlertEvent,
  type AlertRule,
  type AlertRuleInput,
  validateRule,
} from './telemetry-alert-rules.js';
import { AlertStore } from './telemetry-alert-store.js';
import { postWebhook, webhookBody } from './telemetry-alert-webhook.js';

interface RuleState {
  breachSince?: number;
  firing: boolean;
  lastValue?: number;
  lastQps?: number;
}

/** Rules, events and the periodic evaluator. */
export class AlertEvaluator {
  readonly #store: AlertStore;
  readonly #measures: AlertMeasures;
  readonly #logger: Logger;
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
    this.#store = new AlertStore(pool);
    this.#measures = new AlertMeasures(pool, mq);
    this.#logger = logger;
    this.#leader = leader;
  }

  /** Whether this node evaluates (holds the evaluator lock, or runs without one). */
  get evaluating(): boolean {
    return this.#leader === undefined ? this.#timer !== undefined : this.#leader.leader;
  }

  /** Creates or replaces a rule (its firing state is kept); returns it with defaults. */
  async putRule(input: AlertRuleInput): Promise<AlertRule> {
    const rule = validateRule(input);
    await this.#store.putRule(rule);
    return rule;
  }

  /** Deletes a rule; false when there was none. */
  async deleteRule(name: string): Promise<boolean> {
    const deleted = await this.#store.deleteRule(name);
    this.#state.delete(name);
    return deleted;
  }

  /** Silences a rule's webhooks until `until` (events are still recorded); false if unknown. */
  silence(name: string, until: Date): Promise<boolean> {
    return this.#store.silence(name, until);
  }

  /**
   * Every rule with its state: `firing` from its last event (the same on every node);
   * `value`/`qps`, the last measurement, only on the evaluating node.
   */
  async rules(): Promise<(AlertRule & { firing: boolean; value?: number; qps?: number })[]> {
    return (await this.#store.rulesWithState()).map(({ rule, firing }) => {
      const s = this.#state.get(rule.name);
      return {
        ...rule,
        firing,
        ...(s?.lastValue === undefined ? {} : { value: s.lastValue }),
        ...(s?.lastQps === undefined ? {} : { qps: s.lastQps }),
      };
    });
  }

  /** Events, newest first. */
  events(rule: string | undefined, limit: number): Promise<AlertEvent[]> {
    return this.#store.events(rule, limit);
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
    for (const [rule, firing] of await this.#store.firingByRule()) {
      this.#state.set(rule, { firing });
    }
    this.#loaded = true;
  }

  /** One evaluation of every rule (the timer calls it; tests may too). */
  async evaluate(now = Date.now()): Promise<void> {
    if (!this.#loaded) await this.#load();
    for (const rule of await this.#store.rules()) {
      let m: Measure;
      try {
        m = await this.#measures.measure(rule, now);
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
    const event = await this.#store.addEvent(rule.name, state, m, delivery);
    this.#logger.info({ rule: rule.name, state, value: m.value, qps: m.qps }, 'alert');
    if (delivery !== 'pending' || rule.webhook === undefined) return;
    const body = webhookBody(rule, state, m, new Date(event.at ?? now));
    // Delivery never holds up evaluation; its outcome is recorded on the event.
    void postWebhook(rule.webhook, body)
      .then((outcome) => this.#store.setDelivery(event.id, outcome))
      .catch(() => undefined);
  }
}
