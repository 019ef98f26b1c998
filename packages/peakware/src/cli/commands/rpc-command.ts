/**
 * `peak rpc`: look at and steer the service framework through the control plane.
 *
 *   peak rpc ls                               services, instances, weights, tags, state
 *   peak rpc call <service>.<method> '<json>' one call through the full consumer path
 *   peak rpc offline|online <instance>        take an instance out of / back into traffic
 *   peak rpc weight <instance> <weight>       change its weight at runtime
 */
import type { InstanceChange } from '../../admin/registry-admin.js';
import { ErrorCodes, PeakError, UsageError } from '../../core/errors.js';
import { HttpRegistry } from '../../registry/http-registry.js';
import { InMemoryRegistry } from '../../registry/in-memory-registry.js';
import type { Registry } from '../../registry/registry.js';
import { DEFAULT_GROUP, DEFAULT_VERSION, serviceKey } from '../../registry/service-instance.js';
import { RpcClient } from '../../rpc/rpc-client.js';
import type { Command } from '../command.js';
import {
  ADMIN_OPTIONS,
  adminClient,
  findCredential,
  SERVER_OPTIONS,
  serverList,
} from '../control-client.js';
import { parseNumber } from '../parse.js';

const ls: Command = {
  name: 'ls',
  watch: true,
  summary: 'list services and their instances (weight, tags, state, address)',
  args: '[service]',
  options: SERVER_OPTIONS,
  examples: ['peak rpc ls', 'peak rpc ls shop.inventory --json'],
  async run({ values, positionals, out }) {
    const instances = await (await adminClient(values)).registry.instances();
    const filter = positionals[0];
    const shown = instances.filter((i) => filter === undefined || i.service === filter);
    out.json({ instances: shown });
    if (shown.length === 0) {
      out.line(filter === undefined ? 'no services registered' : `no instances of ${filter}`);
      return 0;
    }
    let currentKey = '';
    for (const i of shown) {
      const key = `${i.group}/${i.service}:${i.version}`;
      if (key !== currentKey) {
        currentKey = key;
        out.line(key);
      }
      const tags = i.tags.length === 0 ? '-' : i.tags.join(',');
      out.line(
        `  ${i.instanceId.padEnd(36)} ${`${i.host}:${i.port}`.padEnd(21)} ${i.status.padEnd(7)} w=${String(i.weight).padEnd(5)} tags=${tags}`,
      );
    }
    return 0;
  },
};

/** Splits `shop.inventory.deduct` into service and method. */
function splitTarget(target: string | undefined): { service: string; method: string } {
  const dot = target?.lastIndexOf('.') ?? -1;
  if (target === undefined || dot <= 0 || dot === target.length - 1) {
    throw new UsageError(
      `expected <service>.<method>, e.g. 'peak rpc call shop.inventory.deduct '{"sku":"a"}''; got ${target ?? 'nothing'}`,
    );
  }
  return { service: target.slice(0, dot), method: target.slice(dot + 1) };
}

/** The service key of the newest registered version of `service` (in `--group`, `--version`). */
async function discoverKey(
  service: string,
  values: Record<string, string | boolean | undefined>,
): Promise<string> {
  const services = await (await adminClient(values)).registry.services();
  const matches = services
    .filter((s) => s.service === service)
    .filter((s) => values.group === undefined || s.group === values.group)
    .filter((s) => values.version === undefined || s.version === values.version)
    .sort((a, b) => b.version.localeCompare(a.version, 'en', { numeric: true }));
  const groups = new Set(matches.map((m) => m.group));
  if (matches.length === 0) {
    throw new PeakError(
      ErrorCodes.RPC_NO_PROVIDER,
      `no registered instance of ${service}${values.group ? ` in group ${values.group}` : ''}${values.version ? ` version ${values.version}` : ''}; see 'peak rpc ls'`,
      { details: { service } },
    );
  }
  if (groups.size > 1) {
    throw new UsageError(
      `${service} is registered in several groups (${[...groups].join(', ')}); pass --group`,
    );
  }
  return matches[0]!.key;
}

const call: Command = {
  name: 'call',
  summary:
    'call one method with a JSON argument (discovered through the control plane, or --address)',
  args: '<service>.<method> [json]',
  options: {
    ...SERVER_OPTIONS,
    group: {
      type: 'string',
      valueName: 'GROUP',
      description: 'the service group (default: the only one registered)',
    },
    version: {
      type: 'string',
      valueName: 'VERSION',
      description: 'the service version (default: the newest registered)',
    },
    timeout: {
      type: 'string',
      valueName: 'MS',
      description: 'call timeout in ms',
      default: '5000',
      integer: { min: 1 },
    },
    tag: { type: 'string', valueName: 'TAG', description: 'route tag for the call (e.g. canary)' },
    address: {
      type: 'string',
      valueName: 'HOST:PORT',
      description:
        'call this provider directly, without the control plane (works while it is down)',
    },
  },
  examples: [
    `peak rpc call shop.inventory.deduct '{"sku":"A1","qty":1}'`,
    `peak rpc call shop.product.get '{"id":7}' --tag canary --json`,
    `peak rpc call shop.inventory.stock '{"sku":"A1"}' --address 10.0.0.7:4100`,
  ],
  async run({ values, positionals, out }) {
    const { service, method } = splitTarget(positionals[0]);
    let input: unknown;
    try {
      input = positionals[1] === undefined ? {} : JSON.parse(positionals[1]);
    } catch (err) {
      throw new UsageError(`the argument is not JSON: ${(err as Error).message}`, {
        details: { input: positionals[1] },
      });
    }
    const timeoutMs = Number(values.timeout);
    let key: string;
    let registry: Registry;
    if (typeof values.address === 'string') {
      const m = /^(.+):(\d{1,5})$/.exec(values.address);
      const port = Number(m?.[2]);
      if (m === null || port < 1 || port > 65535) {
        throw new UsageError(`--address must be host:port, got ${values.address}`);
      }
      const group = typeof values.group === 'string' ? values.group : DEFAULT_GROUP;
      const version = typeof values.version === 'string' ? values.version : DEFAULT_VERSION;
      key = serviceKey(service, version, group);
      const direct = new InMemoryRegistry();
      await direct.register({
        instanceId: values.address,
        service,
        version,
        group,
        host: m[1]!,
        port,
        weight: 1,
        tags: [],
        metadata: {},
      });
      registry = direct;
    } else {
      key = await discoverKey(service, values);
      const token = await findCredential(values, 'app');
      registry = new HttpRegistry({
        servers: serverList(values),
        ...(token === undefined ? {} : { token }),
      });
    }
    const client = new RpcClient({ registry, app: 'peak-cli', warmupMs: 0, cluster: 'failfast' });
    try {
      const started = performance.now();
      const result = await client.call(key, method, input, {
        timeoutMs,
        ...(typeof values.tag === 'string' ? { tags: { route: values.tag } } : {}),
      });
      const ms = performance.now() - started;
      out.json({ service: key, method, result, ms: Math.round(ms * 10) / 10 });
      out.line(JSON.stringify(result, null, 2));
      out.note(`${key}.${method} answered in ${ms.toFixed(1)} ms`);
      return 0;
    } finally {
      await client.close();
      await registry.close();
    }
  },
};

function instanceArg(positionals: string[]): string {
  const id = positionals[0];
  if (id === undefined || id.length === 0)
    throw new UsageError("name the instance id (see 'peak rpc ls')");
  return id;
}

async function changeInstance(
  values: Record<string, string | boolean | undefined>,
  id: string,
  change: InstanceChange,
) {
  return (await adminClient(values, { admin: true })).registry.change(id, change);
}

function statusCommand(status: 'offline' | 'online'): Command {
  return {
    name: status,
    summary:
      status === 'offline'
        ? 'take an instance out of traffic (it stays registered; consumers drop it at once)'
        : 'put an offline instance back into traffic',
    args: '<instance>',
    options: ADMIN_OPTIONS,
    examples: [`peak rpc ${status} myhost-4242-a1b2c3`],
    async run({ values, positionals, out }) {
      const id = instanceArg(positionals);
      const r = await changeInstance(values, id, {
        status: status === 'offline' ? 'offline' : 'up',
      });
      out.json({
        instanceId: id,
        status: status === 'offline' ? 'offline' : 'up',
        changed: r.changed,
      });
      out.line(`${id}: ${status} (${r.changed} service registration${r.changed === 1 ? '' : 's'})`);
      return 0;
    },
  };
}

const weight: Command = {
  name: 'weight',
  summary: "change an instance's load-balancing weight at runtime",
  args: '<instance> <weight>',
  options: ADMIN_OPTIONS,
  examples: ['peak rpc weight myhost-4242-a1b2c3 50'],
  async run({ values, positionals, out }) {
    const id = instanceArg(positionals);
    const w = parseNumber(positionals[1], 'the weight (0: no traffic)', { min: 0, integer: true });
    const r = await changeInstance(values, id, { weight: w });
    out.json({ instanceId: id, weight: w, changed: r.changed });
    out.line(`${id}: weight ${w}`);
    return 0;
  },
};

const rm: Command = {
  name: 'rm',
  aliases: ['delete'],
  summary:
    "remove an instance's registration (one in traffic only with --force; a live process registers again at its next lease renewal)",
  args: '<instance>',
  options: {
    ...ADMIN_OPTIONS,
    key: {
      type: 'string',
      valueName: 'KEY',
      description: 'only this service key (group/name:version)',
    },
    force: { type: 'boolean', description: 'remove it even while it is up (in traffic)' },
  },
  examples: ['peak rpc offline myhost-4242-a1b2c3 && peak rpc rm myhost-4242-a1b2c3'],
  async run({ values, positionals, out }) {
    const id = instanceArg(positionals);
    const key = typeof values.key === 'string' ? values.key : undefined;
    const r = await (await adminClient(values, { admin: true })).registry.remove(id, {
      ...(key === undefined ? {} : { key }),
      force: values.force === true,
    });
    out.json({ instanceId: id, removed: r.removed });
    out.line(`${id}: removed (${r.removed} service registration${r.removed === 1 ? '' : 's'})`);
    return 0;
  },
};

/** `peak rpc`: ls, call, offline, online, weight, rm. */
export const rpcCommand: Command = {
  name: 'rpc',
  summary: 'services and instances: list, call, offline/online, weights, remove',
  subcommands: [ls, call, statusCommand('offline'), statusCommand('online'), weight, rm],
};
