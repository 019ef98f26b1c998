/**
 * `peak capacity probe <service>` raises one instance's weight through the registry step by
 * step while traffic flows (real, or a stress run beside it) until the service's p99 or
 * error rate breaks the SLA, and keeps that instance's max QPS in the control plane.
 * `peak capacity plan --target "buy=10000/s"` pushes the targets through the call graph's
 * fan-out ratios (telemetry, real traffic) and prints the instances each service needs with
 * the buffer, from the measured capacities.
 */
import type { AdminClient } from '../../admin/admin-client.js';
import { UsageError } from '../../core/errors.js';
import { type CallEdge, parseTargets, planCapacity } from '../../stress/capacity-plan.js';
import { probeCapacity } from '../../stress/capacity-probe.js';
import type { Command } from '../command.js';
import { ADMIN_OPTIONS, adminClient } from '../control-client.js';
import { parseNumber } from '../parse.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * One instance's QPS, p99 and error rate at its weight, from the service's pushed live
 * metrics: the service's QPS × this instance's share of the weights (weighted balancing),
 * the highest p99 of any one instance over the window (the probed one carries the most),
 * errors over calls.
 */
async function measureInstance(
  admin: AdminClient,
  service: string,
  instanceId: string,
  windowS: number,
): Promise<{ qps: number; p99Ms: number; errorRate: number }> {
  const instances = (await admin.registry.instances()).filter(
    (i) => i.service === service && i.status === 'up',
  );
  const total = instances.reduce((s, i) => s + i.weight, 0);
  const mine = instances.find((i) => i.instanceId === instanceId)?.weight ?? 0;
  const live = await admin.telemetry.liveMetrics({ service, seconds: windowS });
  let qps = 0;
  let errors = 0;
  let p99 = 0;
  for (const r of live.resources) {
    qps += r.qps;
    errors += r.errorQps;
    p99 = Math.max(p99, r.rtP99HighestInstanceMs ?? r.rtP99Ms ?? r.rtAvgMs);
  }
  const share = total > 0 ? mine / total : 0;
  return {
    qps: Math.round(qps * share * 100) / 100,
    p99Ms: p99,
    errorRate: qps > 0 ? errors / qps : 0,
  };
}

const probe: Command = {
  name: 'probe',
  summary: "raise one instance's weight until the SLA breaks; keep its max QPS",
  args: '<service>',
  description:
    'Every step sets the weight, waits --settle-s for traffic to move, and reads the last ' +
    "--window-s of the service's pushed metrics. The instance's QPS is the service's QPS × " +
    'its share of the weights; the step passes while p99 <= --p99-ms and the error rate <= ' +
    '--error-rate. The weight goes back to what it was at the end, pass or fail.',
  options: {
    ...ADMIN_OPTIONS,
    instance: {
      type: 'string',
      valueName: 'ID',
      description: 'the instance to probe (default: the first up)',
    },
    weights: {
      type: 'string',
      valueName: 'W,W,...',
      description: 'weights to try, rising',
      default: '100,200,400,800,1600,3200',
    },
    'p99-ms': { type: 'string', valueName: 'MS', description: 'SLA: most p99', default: '100' },
    'error-rate': {
      type: 'string',
      valueName: 'R',
      description: 'SLA: most error share',
      default: '0.001',
    },
    'settle-s': {
      type: 'string',
      valueName: 'S',
      description: 'wait after each change',
      default: '5',
    },
    'window-s': {
      type: 'string',
      valueName: 'S',
      description: 'seconds measured a step',
      default: '10',
    },
  },
  examples: ['peak capacity probe order --instance order-1 --weights 100,200,400,800 --p99-ms 50'],
  async run({ positionals, values, out }) {
    const service = positionals[0];
    if (service === undefined)
      throw new UsageError('give the service: peak capacity probe <service>');
    const weights = String(values.weights)
      .split(',')
      .map((w) => Number(w.trim()));
    if (weights.some((w) => !Number.isInteger(w) || w < 0))
      throw new UsageError(`--weights must be integers >= 0, got ${values.weights}`);
    const sla = {
      p99Ms: parseNumber(values['p99-ms'], '--p99-ms', { min: 0 }),
      errorRate: parseNumber(values['error-rate'], '--error-rate', { min: 0 }),
    };
    const settleS = parseNumber(values['settle-s'], '--settle-s', { min: 0 });
    const windowS = Math.round(parseNumber(values['window-s'], '--window-s', { min: 1 }));
    const admin = await adminClient(values, { admin: true });
    const up = (await admin.registry.instances()).filter(
      (i) => i.service === service && i.status === 'up',
    );
    const instanceId = typeof values.instance === 'string' ? values.instance : up[0]?.instanceId;
    const instance = up.find((i) => i.instanceId === instanceId);
    if (instance === undefined)
      throw new UsageError(
        `no up instance ${instanceId ?? ''} of service ${service}; up: ${up.map((i) => i.instanceId).join(', ') || 'none'}`,
      );
    const result = await probeCapacity(
      {
        currentWeight: async () => instance.weight,
        setWeight: async (w) => {
          await admin.registry.weight(instance.instanceId, w);
        },
        measure: async () => {
          await sleep(settleS * 1000);
          return measureInstance(admin, service, instance.instanceId, windowS);
        },
      },
      {
        sla,
        weights,
        onStep: (s) =>
          out.line(
            `  weight ${String(s.weight).padStart(6)}: ${s.qps} QPS, p99 ${s.p99Ms} ms, errors ${(s.errorRate * 100).toFixed(2)} % ${s.passed ? 'pass' : 'FAIL'}`,
          ),
      },
    );
    const figure = {
      service,
      instance: instance.instanceId,
      maxQps: result.maxQps,
      ...(result.p99Ms === undefined ? {} : { p99Ms: result.p99Ms }),
      sla,
      steps: result.steps,
    };
    await admin.stress.putCapacity(figure);
    out.json({ ...figure, stoppedBy: result.stoppedBy });
    out.line(
      `${service}: one instance (${instance.instanceId}) holds ${result.maxQps} QPS within p99 ${sla.p99Ms} ms / errors ${sla.errorRate} (${result.stoppedBy === 'sla' ? 'SLA broke at the next step' : 'every weight passed: try higher ones'})`,
    );
    return 0;
  },
};

const plan: Command = {
  name: 'plan',
  summary: 'instances per service for a front-door target, from fan-out and measured capacity',
  options: {
    ...ADMIN_OPTIONS,
    target: {
      type: 'string',
      valueName: 'SVC=QPS/s,...',
      description: 'the forecast, e.g. "buy=10000/s"',
    },
    buffer: {
      type: 'string',
      valueName: 'R',
      description: 'headroom over the minimum (0.2 = 20 %)',
      default: '0.2',
    },
    since: {
      type: 'string',
      valueName: 'MIN',
      description: 'minutes of call graph to read the fan-out from',
      default: '15',
    },
  },
  examples: [
    'peak capacity plan --target "buy=10000/s"',
    'peak capacity plan --target "buy=10k/s,browse=50k/s" --buffer 0.3 --json',
  ],
  async run({ values, out }) {
    if (typeof values.target !== 'string')
      throw new UsageError('give the forecast: --target "buy=10000/s"');
    const targets = parseTargets(values.target);
    const buffer = parseNumber(values.buffer, '--buffer', { min: 0 });
    const sinceMinutes = parseNumber(values.since, '--since', { min: 1 });
    const admin = await adminClient(values);
    const [topology, endpoints, capacity] = await Promise.all([
      admin.telemetry.topology({ sinceMinutes }),
      admin.telemetry.endpoints({ sinceMinutes }),
      admin.stress.capacity(),
    ]);
    const edges: CallEdge[] = topology.edges
      .filter((e) => !e.stress)
      .map((e) => ({ caller: e.caller, callee: e.callee, calls: e.calls }));
    const inbound = new Map<string, number>();
    for (const e of endpoints)
      if (!e.stress) inbound.set(e.service, (inbound.get(e.service) ?? 0) + e.calls);
    const result = planCapacity({ targets, edges, inbound, capacity, buffer });
    out.json(result);
    out.line(
      `plan for ${targets.map((t) => `${t.service}=${t.qps}/s`).join(', ')}, buffer ${Math.round(buffer * 100)} %, fan-out of the last ${sinceMinutes} min`,
    );
    out.line(
      `  ${'service'.padEnd(20)} ${'QPS'.padStart(10)} ${'per inst.'.padStart(10)} ${'minimum'.padStart(8)} ${'instances'.padStart(9)}`,
    );
    for (const r of result.rows)
      out.line(
        `  ${r.service.padEnd(20)} ${String(r.qps).padStart(10)} ${String(r.perInstanceQps ?? '-').padStart(10)} ${String(r.minimum ?? '-').padStart(8)} ${String(r.instances ?? '?').padStart(9)}`,
      );
    if (result.unmeasured.length > 0)
      out.line(`  not probed yet (peak capacity probe <service>): ${result.unmeasured.join(', ')}`);
    return 0;
  },
};

/** `peak capacity`: probe one instance's capacity, plan instances for a forecast. */
export const capacityCommand: Command = {
  name: 'capacity',
  summary: 'capacity probe (one instance to its SLA) and plan (instances for a forecast)',
  subcommands: [probe, plan],
};
