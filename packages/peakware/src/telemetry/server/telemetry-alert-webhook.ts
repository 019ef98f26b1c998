/**
 * An alert event's webhook: one JSON POST (5 s timeout) describing the rule and what it
 * measured. Delivery never holds up evaluation; its outcome (`sent`, `failed: ...`) is
 * handed back to be recorded on the event.
 */
import { errorMessage } from '../../core/errors.js';
import type { Measure } from './telemetry-alert-logic.js';
import type { AlertRule } from './telemetry-alert-rules.js';

/** The body a webhook receives. */
export function webhookBody(
  rule: AlertRule,
  state: 'fired' | 'resolved',
  m: Measure,
  at: Date,
): Record<string, unknown> {
  return {
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
    at: at.toISOString(),
  };
}

/** POSTs `body` to `url`; resolves (never rejects) with the outcome to record, at most 300 characters. */
export function postWebhook(url: string, body: Record<string, unknown>): Promise<string> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  })
    .then((r) => (r.ok ? 'sent' : `failed: HTTP ${r.status}`))
    .catch((err: unknown) => `failed: ${errorMessage(err)}`.slice(0, 300));
}
