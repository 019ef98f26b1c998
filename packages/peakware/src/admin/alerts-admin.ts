/**
 * SLA alerts (`/api/v1/telemetry/alerts`): rules (create or replace, delete, list with
 * their state), silences, fired/resolved events, and which node evaluates them.
 */

import type {
  AlertEvent,
  AlertKind,
  AlertRule,
  AlertRuleInput,
} from '../telemetry/server/telemetry-alert-rules.js';
import type { AdminTransport } from './admin-transport.js';

export type { AlertEvent, AlertKind, AlertRule, AlertRuleInput };

/** A rule as the list shows it: the rule, whether it fires, and its last measure. */
export type AlertRuleState = AlertRule & { firing: boolean; value?: number; qps?: number };

/** What creating or replacing a rule takes (the name goes in the path). */
export type AlertRuleBody = Omit<AlertRuleInput, 'name'>;

const BASE = '/api/v1/telemetry/alerts';
const seg = encodeURIComponent;

/** The alert calls. */
export class AlertsAdmin {
  readonly #http: AdminTransport;

  constructor(http: AdminTransport) {
    this.#http = http;
  }

  /** Every rule and whether it fires. */
  async rules(): Promise<AlertRuleState[]> {
    return (await this.#http.get<{ rules: AlertRuleState[] }>(`${BASE}/rules`)).rules;
  }

  /** Creates or replaces the rule `name`; answers it with its defaults filled in. */
  async putRule(name: string, rule: AlertRuleBody): Promise<AlertRule> {
    return (await this.#http.put<{ rule: AlertRule }>(`${BASE}/rules/${seg(name)}`, rule)).rule;
  }

  /** Deletes a rule (PEAK_NOT_FOUND when there is none). */
  deleteRule(name: string): Promise<{ deleted: string }> {
    return this.#http.delete(`${BASE}/rules/${seg(name)}`);
  }

  /** Records a rule's events without calling its webhook for `minutes` (0 lifts a silence). */
  silence(name: string, minutes: number): Promise<{ rule: string; silencedUntil: string }> {
    return this.#http.post(`${BASE}/rules/${seg(name)}/silence`, { minutes }, { idempotent: true });
  }

  /** Fired and resolved events, newest first. */
  async events(options: { rule?: string; limit?: number } = {}): Promise<AlertEvent[]> {
    const r = await this.#http.get<{ events: AlertEvent[] }>(`${BASE}/events`, {
      query: { rule: options.rule, limit: options.limit },
    });
    return r.events;
  }

  /** Whether the node answering is the one evaluating the rules. */
  evaluator(): Promise<{ node: string; evaluating: boolean }> {
    return this.#http.get(`${BASE}/evaluator`);
  }
}
