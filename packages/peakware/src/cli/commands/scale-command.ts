/**
 * `peak scale`: what the supervisors run and why. `status --app APP` (supervisors,
 * services, instances with CPU), `set <service> <count> --app APP` (a count by hand),
 * `policy <service> --app APP [--file F | --set JSON]` (show or store a scaling policy),
 * `history --app APP [--service S]` (every decision with the figures behind it),
 * `hpa <service> --app APP` (the policy as a Kubernetes HPA manifest), `kubernetes` (the
 * actuator for a service that runs as a Deployment).
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { UsageError } from '../../core/errors.js';
import { createLogger } from '../../core/logger.js';
import { hpaManifest } from '../../scale/hpa-manifest.js';
import { KubernetesActuator } from '../../scale/kubernetes-actuator.js';
import type { ScalePolicy } from '../../scale/scale-policy.js';
import type { ScaleDecision } from '../../scale/server/index.js';
import type { Command } from '../command.js';
import { ADMIN_OPTIONS, adminClient, findCredential, SERVER_OPTIONS } from '../control-client.js';
import { parseNumber } from '../parse.js';

/** `--app APP`: the app a supervisor runs (as its app file names it); `peak release` too. */
export const APP = {
  app: { type: 'string', valueName: 'APP', description: 'the app (as its app file names it)' },
} as const;

/** The `--app` given, or a UsageError saying to give it. */
export function needApp(values: Record<string, unknown>): string {
  if (typeof values.app !== 'string' || values.app === '')
    throw new UsageError('give the app: --app APP');
  return values.app;
}

/** One line of `peak scale history`. */
export function decisionLine(d: ScaleDecision): string {
  const figure =
    d.metric === null ? '' : `  ${d.metric} ${d.value ?? '-'} (target ${d.target ?? '-'})`;
  return `${d.at}  ${d.service}  ${d.action.toUpperCase()}  ${d.current} -> ${d.desired}${figure}  ${d.reason}`;
}

const status: Command = {
  name: 'status',
  summary: "an app's supervisors, services and instances",
  options: { ...SERVER_OPTIONS, ...APP },
  examples: ['peak scale status --app shop'],
  async run({ values, out }) {
    const s = await (await adminClient(values)).scale.status(needApp(values));
    out.json(s);
    for (const sup of s.supervisors)
      out.line(
        `supervisor ${sup.supervisorId} on ${sup.host} (pid ${sup.pid})  ${sup.live ? `reported ${Math.round(sup.ageMs / 1000)}s ago` : `SILENT ${Math.round(sup.ageMs / 1000)}s`}`,
      );
    for (const svc of s.services) {
      out.line(
        `${svc.service}  desired ${svc.desired ?? '(app file)'}  primary ${svc.primaryVersion ?? '(app file)'}  ${svc.instances.length} instance(s)`,
      );
      for (const i of svc.instances)
        out.line(
          `  ${i.id}  ${i.state}  pid ${i.pid}  cpu ${i.cpuPercent ?? '-'}%  restarts ${i.restarts}${i.adopted ? '  adopted' : ''}`,
        );
    }
    return 0;
  },
};

const set: Command = {
  name: 'set',
  summary: "set a supervised service's instance count by hand (a policy may change it again)",
  args: '<service> <count>',
  options: { ...ADMIN_OPTIONS, ...APP },
  examples: ['peak scale set shop.order 4 --app shop'],
  async run({ values, positionals, out }) {
    const [service, raw] = positionals;
    if (service === undefined || raw === undefined)
      throw new UsageError(
        'give the service and a count: peak scale set <service> <count> --app APP',
      );
    const count = parseNumber(raw, '<count>', { min: 0, integer: true });
    const admin = await adminClient(values, { admin: true });
    const d = await admin.scale.setInstances(needApp(values), service, count, 'peak scale set');
    out.json(d);
    out.line(decisionLine(d));
    return 0;
  },
};

const history: Command = {
  name: 'history',
  summary: 'scaling decisions with the figures behind them, newest first',
  options: {
    ...SERVER_OPTIONS,
    ...APP,
    service: { type: 'string', valueName: 'SERVICE', description: 'one service only' },
    limit: { type: 'string', valueName: 'N', description: 'most decisions', default: '50' },
  },
  examples: ['peak scale history --app shop --service shop.order'],
  async run({ values, out }) {
    const limit = parseNumber(values.limit, '--limit', { min: 1, max: 1000, integer: true });
    const decisions = await (await adminClient(values)).scale.history(needApp(values), {
      ...(typeof values.service === 'string' ? { service: values.service } : {}),
      limit,
    });
    out.json({ decisions });
    if (decisions.length === 0) out.line('no decisions yet');
    for (const d of decisions) out.line(decisionLine(d));
    return 0;
  },
};

const policy: Command = {
  name: 'policy',
  summary: "show a service's scaling policy, or store one (--file or --set JSON; checked whole)",
  args: '<service>',
  options: {
    ...ADMIN_OPTIONS,
    ...APP,
    file: { type: 'string', valueName: 'FILE', description: 'the policy as a JSON file' },
    set: { type: 'string', valueName: 'JSON', description: 'the policy as JSON' },
  },
  examples: [
    'peak scale policy shop.order --app shop',
    `peak scale policy shop.order --app shop --set '{"metric":"cpu","target":60,"min":2,"max":8}'`,
  ],
  async run({ values, positionals, out }) {
    const service = positionals[0];
    if (service === undefined)
      throw new UsageError('give the service: peak scale policy <service>');
    const app = needApp(values);
    let text: string | undefined;
    if (typeof values.file === 'string') text = await readFile(values.file, 'utf8');
    else if (typeof values.set === 'string') text = values.set;
    if (text === undefined) {
      const p = await (await adminClient(values)).scale.policy(app, service);
      out.json(p);
      out.line(`${service} (scale/${service} v${p.version}): ${JSON.stringify(p.policy)}`);
      return 0;
    }
    let parsed: ScalePolicy;
    try {
      parsed = JSON.parse(text) as ScalePolicy;
    } catch (err) {
      throw new UsageError(`the policy is not JSON: ${(err as Error).message}`);
    }
    const admin = await adminClient(values, { admin: true });
    const r = await admin.scale.setPolicy(app, service, parsed, 'peak scale policy');
    out.json(r);
    out.line(`stored scale/${service} v${r.version}`);
    return 0;
  },
};

const hpa: Command = {
  name: 'hpa',
  summary:
    "print a Kubernetes HorizontalPodAutoscaler (autoscaling/v2) for a service's stored policy",
  args: '<service>',
  options: {
    ...SERVER_OPTIONS,
    ...APP,
    deployment: {
      type: 'string',
      valueName: 'NAME',
      description: 'the Deployment (default: the service)',
    },
    namespace: { type: 'string', valueName: 'NS', description: 'its namespace (default: default)' },
  },
  examples: [
    'peak scale hpa shop.order --app shop --deployment order --namespace shop > order-hpa.yaml',
  ],
  async run({ values, positionals, out }) {
    const service = positionals[0];
    if (service === undefined) throw new UsageError('give the service: peak scale hpa <service>');
    const p = await (await adminClient(values)).scale.policy(needApp(values), service);
    const manifest = hpaManifest(p.policy, {
      deployment:
        typeof values.deployment === 'string' ? values.deployment : service.replaceAll('.', '-'),
      ...(typeof values.namespace === 'string' ? { namespace: values.namespace } : {}),
    });
    out.json({ service, manifest });
    out.stdout.write(manifest);
    return 0;
  },
};

const IN_CLUSTER_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

const kubernetes: Command = {
  name: 'kubernetes',
  summary:
    "run the Kubernetes actuator: report a Deployment and patch its replicas to the control plane's count",
  description: `Runs until SIGINT/SIGTERM. Reports with an app credential holding a scale grant (--token/PEAK_TOKEN, else PEAK_CREDENTIAL). In a pod, the defaults reach the API server with the pod's service account; set NODE_EXTRA_CA_CERTS=/var/run/secrets/kubernetes.io/serviceaccount/ca.crt so its certificate is trusted. The service account needs get and patch on deployments/scale.`,
  options: {
    ...SERVER_OPTIONS,
    ...APP,
    service: {
      type: 'string',
      valueName: 'SERVICE',
      description: 'the service (as its policy names it)',
    },
    deployment: { type: 'string', valueName: 'NAME', description: 'the Deployment' },
    namespace: {
      type: 'string',
      valueName: 'NS',
      description: 'its namespace',
      default: 'default',
    },
    api: {
      type: 'string',
      valueName: 'URL',
      description: 'the API server',
      default: 'https://kubernetes.default.svc',
    },
    'api-token-file': {
      type: 'string',
      valueName: 'FILE',
      description: 'a bearer token for the API server, read at every call',
      default: IN_CLUSTER_TOKEN,
    },
  },
  examples: [
    'peak scale kubernetes --app shop --service shop.order --deployment order --namespace shop',
  ],
  async run({ values, out }) {
    const need = (name: string) => {
      const v = values[name];
      if (typeof v !== 'string' || v === '') throw new UsageError(`give --${name}`);
      return v;
    };
    const tokenFile = String(values['api-token-file']);
    const token = await findCredential(values, 'app');
    const actuator = new KubernetesActuator({
      app: needApp(values),
      service: need('service'),
      deployment: need('deployment'),
      namespace: String(values.namespace),
      apiServer: String(values.api),
      apiToken: () => readFileSync(tokenFile, 'utf8').trim(),
      servers: String(values.server),
      ...(token === undefined ? {} : { token }),
      logger: createLogger({
        level: 'info',
        format: process.stderr.isTTY ? 'pretty' : 'json',
        name: 'peak-scale-kubernetes',
      }),
    });
    await actuator.replicas();
    actuator.start();
    out.json({ event: 'ready' });
    out.line(
      `following deployment ${String(values.namespace)}/${need('deployment')}; stop with Ctrl-C`,
    );
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    await actuator.stop();
    return 0;
  },
};

/** `peak scale ...` */
export const scaleCommand: Command = {
  name: 'scale',
  summary:
    'elastic scaling: supervisors and instances, counts by hand, policies, decision history, HPA manifests',
  subcommands: [status, set, policy, history, hpa, kubernetes],
};
