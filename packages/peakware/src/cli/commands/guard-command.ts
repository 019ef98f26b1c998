/**
 * `peak guard rules` and `peak guard stats <resource>`: the guard rules each service
 * instance has in force, and a resource's per-second pass/block/success/error/RT, as the
 * instances reported them to the control plane (services report with `GuardReporter`).
 * `peak guard cluster`: which node leads the token server, and the budgets it counts.
 */

import { UsageError } from '../../core/errors.js';
import type { Command } from '../command.js';
import { adminClient, SERVER_OPTIONS } from '../control-client.js';

const APP_OPTION = {
  app: { type: 'string', valueName: 'APP', description: 'only this service (app)' },
} as const;

const rules: Command = {
  name: 'rules',
  summary: 'show the guard rules each service instance has in force',
  options: { ...SERVER_OPTIONS, ...APP_OPTION },
  examples: ['peak guard rules', 'peak guard rules --app order-service --json'],
  async run({ values, out }) {
    const instances = await (await adminClient(values)).guard.rules(
      typeof values.app === 'string' ? { app: values.app } : {},
    );
    out.json({ instances });
    if (instances.length === 0) {
      out.line('no service has reported guard rules (services report with GuardReporter)');
      return 0;
    }
    for (const inst of instances) {
      const age = Math.round((Date.now() - inst.lastSeen) / 1000);
      out.line(`${inst.app}  ${inst.instance}  (reported ${age}s ago)`);
      let any = false;
      for (const [kind, list] of Object.entries(inst.rules)) {
        for (const rule of (list as unknown[] | undefined) ?? []) {
          any = true;
          out.line(`  ${kind.padEnd(9)} ${JSON.stringify(rule)}`);
        }
      }
      if (!any) out.line('  (no rules)');
    }
    return 0;
  },
};

const stats: Command = {
  name: 'stats',
  summary: "show a resource's per-second pass, block, success, error, RT and concurrency",
  args: '<resource>',
  options: {
    ...SERVER_OPTIONS,
    ...APP_OPTION,
    seconds: {
      type: 'string',
      valueName: 'N',
      description: 'how many seconds back (1-300)',
      default: '30',
      integer: { min: 1, max: 300 },
    },
  },
  examples: [
    "peak guard stats 'GET /orders'",
    'peak guard stats OrderService.create --seconds 60 --json',
  ],
  async run({ values, positionals, out }) {
    const resource = positionals[0];
    if (resource === undefined || positionals.length > 1) {
      throw new UsageError(
        "peak guard stats takes one resource, e.g. peak guard stats 'GET /orders'",
      );
    }
    const answer = await (await adminClient(values)).guard.stats(resource, {
      seconds: Number(values.seconds),
      ...(typeof values.app === 'string' ? { app: values.app } : {}),
    });
    out.json(answer);
    if (answer.rows.length === 0) {
      out.line(`no metrics for '${resource}' in the last ${values.seconds}s`);
      return 0;
    }
    out.line(
      ['time', 'pass', 'block', 'success', 'error', 'rt ms', 'conc', 'inst']
        .map((h) => h.padStart(8))
        .join(' '),
    );
    for (const r of answer.rows) {
      const time = new Date(r.second).toISOString().slice(11, 19);
      out.line(
        [time, r.pass, r.block, r.success, r.error, r.rtAvg.toFixed(1), r.concurrency, r.instances]
          .map((v) => String(v).padStart(8))
          .join(' '),
      );
    }
    return 0;
  },
};

const cluster: Command = {
  name: 'cluster',
  summary:
    'show which control-plane node counts the cluster budgets, and (on that node) the budgets: tokens granted this second',
  options: { ...SERVER_OPTIONS },
  examples: ['peak guard cluster', 'peak guard cluster --json'],
  async run({ values, out }) {
    const answer = await (await adminClient(values)).guard.cluster();
    out.json(answer);
    out.line(
      answer.leading
        ? `node ${answer.nodeId} leads: it counts every cluster budget`
        : `node ${answer.nodeId} forwards token requests to the leader, node ${answer.leaderNodeId ?? '(none right now)'}; ask that node for its budgets`,
    );
    if (answer.budgets.length === 0) {
      out.line('no cluster flow budgets in use in the last minute on this node');
      return 0;
    }
    out.line(['namespace', 'flowId', 'used now', 'clients'].map((h) => h.padEnd(16)).join(' '));
    for (const b of answer.budgets) {
      out.line(
        [b.namespace, b.flowId, String(b.used), String(b.clients)]
          .map((v) => v.padEnd(16))
          .join(' '),
      );
    }
    return 0;
  },
};

/** `peak guard`: rules, stats and cluster budgets as services reported them. */
export const guardCommand: Command = {
  name: 'guard',
  summary: 'flow-control rules and per-second stats reported by services',
  subcommands: [rules, stats, cluster],
};
