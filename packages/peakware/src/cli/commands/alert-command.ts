/**
 * `peak alert`: SLA alert rules and their events. `list` shows every rule and whether it
 * fires; `set <name>` creates or replaces one (p99, error-rate, mq-backlog, burn-rate);
 * `delete <name>`; `silence <name> --minutes M`; `events [--rule R]`.
 */
import type { AlertRule, AlertRuleBody } from '../../admin/alerts-admin.js';
import { UsageError } from '../../core/errors.js';
import type { Command } from '../command.js';
import { ADMIN_OPTIONS, adminClient, SERVER_OPTIONS } from '../control-client.js';
import { numberOption } from '../parse.js';

function oneName(positionals: string[], what: string): string {
  const name = positionals[0];
  if (name === undefined || positionals.length > 1) {
    throw new UsageError(
      `peak alert ${what} takes one rule name, e.g. peak alert ${what} order-p99`,
    );
  }
  return name;
}

function target(r: AlertRule): string {
  if (r.kind === 'mq-backlog') return `${r.group ?? '?'} on ${r.topic ?? '?'}`;
  const part = r.resource ?? r.endpoint;
  return part === undefined ? (r.service ?? '?') : `${r.service}/${part}`;
}

function condition(r: AlertRule): string {
  switch (r.kind) {
    case 'p99':
      return `p99 > ${r.threshold} ms over ${r.windowSeconds}s`;
    case 'error-rate':
      return `errors > ${(r.threshold * 100).toFixed(2)}% over ${r.windowSeconds}s`;
    case 'mq-backlog':
      return `backlog > ${r.threshold}`;
    default:
      return `SLO ${((r.objective ?? 0) * 100).toFixed(3)}%: burn > ${r.threshold}x over ${r.windowSeconds}s and ${r.shortWindowSeconds}s`;
  }
}

const list: Command = {
  name: 'list',
  watch: true,
  summary: 'every rule and whether it fires',
  options: SERVER_OPTIONS,
  async run({ values, out }) {
    const rules = await (await adminClient(values)).alerts.rules();
    out.json({ rules });
    out.line(
      `${'RULE'.padEnd(20)} ${'KIND'.padEnd(11)} ${'TARGET'.padEnd(28)} ${'STATE'.padEnd(8)} CONDITION`,
    );
    for (const r of rules) {
      const state = r.firing ? 'FIRING' : 'ok';
      const silenced =
        r.silencedUntil !== undefined && Date.parse(r.silencedUntil) > Date.now()
          ? ` (silenced until ${r.silencedUntil})`
          : '';
      out.line(
        `${r.name.padEnd(20)} ${r.kind.padEnd(11)} ${target(r).padEnd(28)} ${state.padEnd(8)} ${condition(r)}${r.forSeconds > 0 ? ` for ${r.forSeconds}s` : ''}${silenced}`,
      );
    }
    if (rules.length === 0) out.line('(no rules; add one with peak alert set)');
    return 0;
  },
};

const set: Command = {
  name: 'set',
  summary: 'create or replace a rule',
  args: '<name>',
  options: {
    ...ADMIN_OPTIONS,
    kind: {
      type: 'string',
      valueName: 'KIND',
      description: 'p99 | error-rate | mq-backlog | burn-rate',
    },
    service: { type: 'string', valueName: 'NAME', description: 'the watched service' },
    endpoint: { type: 'string', valueName: 'NAME', description: 'one endpoint (server span name)' },
    resource: {
      type: 'string',
      valueName: 'NAME',
      description: "error-rate/burn-rate: count this resource's pushed metrics, not spans",
    },
    group: { type: 'string', valueName: 'GROUP', description: 'mq-backlog: the consumer group' },
    topic: { type: 'string', valueName: 'TOPIC', description: 'mq-backlog: the topic' },
    threshold: {
      type: 'string',
      valueName: 'N',
      description:
        'ms (p99), fraction (error-rate), messages (mq-backlog), factor (burn-rate, 14.4)',
    },
    'min-qps': { type: 'string', valueName: 'QPS', description: 'only while QPS is at least this' },
    window: {
      type: 'string',
      valueName: 'S',
      description: 'window seconds (burn-rate: the long one)',
    },
    'short-window': { type: 'string', valueName: 'S', description: 'burn-rate: the short window' },
    objective: { type: 'string', valueName: 'F', description: 'burn-rate: the SLO, e.g. 0.999' },
    'latency-ms': {
      type: 'string',
      valueName: 'MS',
      description: 'burn-rate: calls slower than this count against the SLO',
    },
    for: { type: 'string', valueName: 'S', description: 'seconds a breach must last to fire' },
    webhook: { type: 'string', valueName: 'URL', description: 'POSTed on fired and resolved' },
  },
  examples: [
    'peak alert set order-p99 --kind p99 --service order --threshold 30 --min-qps 8000 --window 60 --for 60',
    'peak alert set billing-lag --kind mq-backlog --group billing --topic order-created --threshold 1000 --for 60',
    'peak alert set pay-slo --kind burn-rate --service payment --objective 0.999 --window 3600 --short-window 300',
  ],
  async run({ values, positionals, out }) {
    const name = oneName(positionals, 'set');
    if (typeof values.kind !== 'string') {
      throw new UsageError('--kind is required: p99, error-rate, mq-backlog or burn-rate');
    }
    const body: Record<string, unknown> = { kind: values.kind };
    for (const o of ['service', 'endpoint', 'resource', 'group', 'topic', 'webhook']) {
      if (typeof values[o] === 'string') body[o] = values[o];
    }
    const numbers: [string, string][] = [
      ['threshold', 'threshold'],
      ['min-qps', 'minQps'],
      ['window', 'windowSeconds'],
      ['short-window', 'shortWindowSeconds'],
      ['objective', 'objective'],
      ['latency-ms', 'latencyMs'],
      ['for', 'forSeconds'],
    ];
    for (const [option, field] of numbers) {
      const n = numberOption(values, option);
      if (n !== undefined) body[field] = n;
    }
    const admin = await adminClient(values, { admin: true });
    // The server checks the kind and the fields (PEAK_INVALID_ARGUMENT names the bad one).
    const rule = await admin.alerts.putRule(name, body as unknown as AlertRuleBody);
    out.json({ rule });
    out.line(`rule ${name} set: ${target(rule)}, ${condition(rule)}`);
    return 0;
  },
};

const del: Command = {
  name: 'delete',
  aliases: ['rm'],
  summary: 'delete a rule',
  args: '<name>',
  options: ADMIN_OPTIONS,
  async run({ values, positionals, out }) {
    const name = oneName(positionals, 'delete');
    const admin = await adminClient(values, { admin: true });
    const result = await admin.alerts.deleteRule(name);
    out.json(result);
    out.line(`rule ${name} deleted`);
    return 0;
  },
};

const silence: Command = {
  name: 'silence',
  summary: "record a rule's events without calling its webhook for a while",
  args: '<name>',
  options: {
    ...ADMIN_OPTIONS,
    minutes: { type: 'string', valueName: 'M', description: 'how long (0 lifts a silence)' },
  },
  async run({ values, positionals, out }) {
    const name = oneName(positionals, 'silence');
    const minutes = numberOption(values, 'minutes');
    if (minutes === undefined) throw new UsageError('--minutes is required, e.g. --minutes 60');
    const admin = await adminClient(values, { admin: true });
    const result = await admin.alerts.silence(name, minutes);
    out.json(result);
    out.line(`rule ${name} silenced until ${result.silencedUntil}`);
    return 0;
  },
};

const events: Command = {
  name: 'events',
  summary: 'fired and resolved events, newest first',
  options: {
    ...SERVER_OPTIONS,
    rule: { type: 'string', valueName: 'NAME', description: 'only this rule' },
    limit: { type: 'string', valueName: 'N', description: 'at most N (default 50)' },
  },
  async run({ values, out }) {
    const events = await (await adminClient(values)).alerts.events({
      limit: numberOption(values, 'limit') ?? 50,
      ...(typeof values.rule === 'string' ? { rule: values.rule } : {}),
    });
    out.json({ events });
    for (const e of events) {
      out.line(
        `${e.at}  ${e.rule.padEnd(20)} ${e.state.padEnd(9)} value ${Number(e.value.toFixed(3))}  webhook: ${e.delivery}`,
      );
    }
    if (events.length === 0) out.line('(no events)');
    return 0;
  },
};

/** The `peak alert` command group. */
export const alertCommand: Command = {
  name: 'alert',
  summary: 'SLA alert rules (p99, error rate, MQ backlog, burn rate) and their events',
  subcommands: [list, set, del, silence, events],
};
