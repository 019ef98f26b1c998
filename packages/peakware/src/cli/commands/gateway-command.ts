/**
 * `peak gateway`: runs the open API gateway (its own process; any number behind a load
 * balancer, all state from the control plane), and `peak gateway routes|apps|keys|
 * subscriptions|quota` manage what it serves, through the typed admin client.
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { UsageError } from '../../core/errors.js';
import { createLogger } from '../../core/logger.js';
import type { GatewayRouteSpec } from '../../gateway/gateway-objects.js';
import { DEFAULT_DATA_DIR } from '../../server/defaults.js';
import type { Command, OptionSpec } from '../command.js';
import {
  ADMIN_OPTIONS,
  adminClient,
  findAdminToken,
  SERVER_OPTIONS,
  serverList,
} from '../control-client.js';
import { onParentGone } from '../parent-watch.js';
import { parseNumber, parsePort } from '../parse.js';

function need(positionals: string[], i: number, what: string, usage: string): string {
  const v = positionals[i];
  if (v === undefined || v === '') throw new UsageError(`give ${what}: ${usage}`);
  return v;
}

function optionalInt(values: Record<string, unknown>, name: string): number | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  return parsePort(v, `--${name}`, Number.MAX_SAFE_INTEGER);
}

function list(v: unknown): string[] | undefined {
  return typeof v === 'string' && v !== '' ? v.split(',').map((s) => s.trim()) : undefined;
}

const when = (ms: number | null) => (ms === null ? '-' : new Date(ms).toISOString());

// ------------------------------------------------------------------ routes

async function readRoutes(arg: string): Promise<GatewayRouteSpec[]> {
  const text =
    arg.trimStart().startsWith('{') || arg.trimStart().startsWith('[')
      ? arg
      : await readFile(arg, 'utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`the route is not JSON: ${(err as Error).message}`);
  }
  return (Array.isArray(parsed) ? parsed : [parsed]) as GatewayRouteSpec[];
}

function targetText(r: GatewayRouteSpec): string {
  const t = r.target;
  if (t.kind === 'rpc') return `rpc ${t.service}.${t.method}`;
  if (t.kind === 'mq') return `mq ${t.topic}`;
  return `http ${t.service ?? (t.urls ?? []).join(',')}`;
}

const routes: Command = {
  name: 'routes',
  summary: 'list, show, put and delete gateway routes',
  subcommands: [
    {
      name: 'ls',
      summary: 'every route, or those matching a word',
      options: {
        ...SERVER_OPTIONS,
        match: {
          type: 'string',
          valueName: 'WORD',
          description: 'only routes whose name, API, method, host, path or target hold it',
        },
        limit: { type: 'string', valueName: 'N', description: 'at most N routes' },
      },
      async run({ values, out }) {
        const limit =
          values.limit === undefined
            ? undefined
            : parseNumber(values.limit, '--limit', { min: 1, max: 100_000, integer: true });
        const match = values.match as string | undefined;
        const page = await (await adminClient(values)).gateway.routePage({
          ...(match === undefined ? {} : { match }),
          ...(limit === undefined ? {} : { limit }),
        });
        const all = page.routes;
        out.json(page);
        if (page.matching === 0)
          out.line(match === undefined ? 'no routes' : `no route matches '${match}'`);
        else if (page.matching > all.length || match !== undefined)
          out.line(`${page.matching} of ${page.total} routes match; ${all.length} shown`);
        for (const r of all)
          out.line(
            `${r.name}  ${r.method} ${r.host ?? '*'}${r.path}  -> ${targetText(r)}  auth=${r.auth ?? 'signature'} api=${r.api ?? r.name}`,
          );
        return 0;
      },
    },
    {
      name: 'get',
      summary: 'one route, as JSON',
      args: '<name>',
      options: SERVER_OPTIONS,
      async run({ values, positionals, out }) {
        const r = await (await adminClient(values)).gateway.route(
          need(positionals, 0, 'the route name', 'peak gateway routes get <name>'),
        );
        out.json(r);
        out.line(JSON.stringify(r, null, 2));
        return 0;
      },
    },
    {
      name: 'put',
      summary: 'create or replace routes from JSON (a route, or an array) or a file of it',
      args: '<json|file>',
      options: ADMIN_OPTIONS,
      examples: [
        `peak gateway routes put '{"name":"orders.get","method":"GET","path":"/orders/:id","target":{"kind":"rpc","service":"shop.order","method":"get"}}'`,
      ],
      async run({ values, positionals, out }) {
        const rs = await readRoutes(
          need(positionals, 0, 'a route as JSON or a file', 'peak gateway routes put <json|file>'),
        );
        const admin = await adminClient(values, { admin: true });
        const { rev } =
          rs.length === 1
            ? await admin.gateway.putRoute(rs[0]!)
            : await admin.gateway.putRoutes(rs);
        out.json({ put: rs.map((r) => r.name), rev });
        out.line(`put ${rs.length} route(s) (rev ${rev}): ${rs.map((r) => r.name).join(', ')}`);
        return 0;
      },
    },
    {
      name: 'rm',
      aliases: ['delete'],
      summary: 'delete a route',
      args: '<name>',
      options: ADMIN_OPTIONS,
      async run({ values, positionals, out }) {
        const name = need(positionals, 0, 'the route name', 'peak gateway routes rm <name>');
        await (await adminClient(values, { admin: true })).gateway.deleteRoute(name);
        out.json({ deleted: name });
        out.line(`deleted route ${name}`);
        return 0;
      },
    },
  ],
};

// ------------------------------------------------------------------ apps and keys

const apps: Command = {
  name: 'apps',
  summary: 'list, add and delete apps (the gateway’s consumers)',
  subcommands: [
    {
      name: 'ls',
      summary: 'every app',
      options: SERVER_OPTIONS,
      async run({ values, out }) {
        const all = await (await adminClient(values)).gateway.apps();
        out.json({ apps: all });
        if (all.length === 0) out.line('no apps');
        for (const a of all)
          out.line(
            `${a.name}${a.disabled === true ? '  (disabled)' : ''}${a.description === undefined ? '' : `  ${a.description}`}`,
          );
        return 0;
      },
    },
    {
      name: 'add',
      summary: 'create or replace an app',
      args: '<name>',
      options: {
        ...ADMIN_OPTIONS,
        description: { type: 'string', valueName: 'TEXT', description: 'what the app is' },
        'ip-allow': {
          type: 'string',
          valueName: 'CIDR[,CIDR]',
          description: 'addresses it may call from',
        },
        'ip-deny': {
          type: 'string',
          valueName: 'CIDR[,CIDR]',
          description: 'addresses it may not call from',
        },
        disabled: {
          type: 'boolean',
          description: 'refuse its calls (keys and subscriptions stay)',
        },
      },
      async run({ values, positionals, out }) {
        const name = need(positionals, 0, 'the app name', 'peak gateway apps add <name>');
        const allow = list(values['ip-allow']);
        const deny = list(values['ip-deny']);
        const app = await (await adminClient(values, { admin: true })).gateway.putApp({
          name,
          ...(typeof values.description === 'string' ? { description: values.description } : {}),
          ...(allow === undefined ? {} : { ipAllow: allow }),
          ...(deny === undefined ? {} : { ipDeny: deny }),
          ...(values.disabled === true ? { disabled: true } : {}),
        });
        out.json(app);
        out.line(`app ${name} saved; issue it a key with 'peak gateway keys create ${name}'`);
        return 0;
      },
    },
    {
      name: 'rm',
      aliases: ['delete'],
      summary: 'delete an app with its keys and subscriptions',
      args: '<name>',
      options: ADMIN_OPTIONS,
      async run({ values, positionals, out }) {
        const name = need(positionals, 0, 'the app name', 'peak gateway apps rm <name>');
        await (await adminClient(values, { admin: true })).gateway.deleteApp(name);
        out.json({ deleted: name });
        out.line(`deleted app ${name}, its keys and its subscriptions`);
        return 0;
      },
    },
  ],
};

const keys: Command = {
  name: 'keys',
  summary: "an app's keys: list, create, rotate with overlap, revoke",
  subcommands: [
    {
      name: 'ls',
      summary: "an app's keys (never their secrets)",
      args: '<app>',
      options: SERVER_OPTIONS,
      async run({ values, positionals, out }) {
        const app = need(positionals, 0, 'the app', 'peak gateway keys ls <app>');
        const all = await (await adminClient(values)).gateway.keys(app);
        out.json({ keys: all });
        if (all.length === 0) out.line(`app ${app} has no keys`);
        for (const k of all)
          out.line(
            `${k.id}  created ${when(k.createdAt)}  expires ${when(k.expiresAt)}${k.revoked ? '  REVOKED' : ''}`,
          );
        return 0;
      },
    },
    {
      name: 'create',
      summary: 'issue a key (the secret is shown once)',
      args: '<app>',
      options: ADMIN_OPTIONS,
      async run({ values, positionals, out }) {
        const app = need(positionals, 0, 'the app', 'peak gateway keys create <app>');
        const key = await (await adminClient(values, { admin: true })).gateway.createKey(app);
        out.json(key);
        out.line(`key ${key.id} for app ${app}; secret (shown once): ${key.secret}`);
        out.line(`API key header: x-peak-api-key: ${key.id}.${key.secret}`);
        return 0;
      },
    },
    {
      name: 'rotate',
      summary: 'issue a new key; the old ones keep working for the overlap, then expire',
      args: '<app>',
      options: {
        ...ADMIN_OPTIONS,
        overlap: {
          type: 'string',
          valueName: 'SECONDS',
          description: 'how long the old keys still work',
          default: '86400',
        },
      },
      async run({ values, positionals, out }) {
        const app = need(positionals, 0, 'the app', 'peak gateway keys rotate <app>');
        const overlap = parsePort(values.overlap, '--overlap', 90 * 86_400);
        const key = await (await adminClient(values, { admin: true })).gateway.rotateKey(
          app,
          overlap,
        );
        out.json(key);
        out.line(`new key ${key.id} for app ${app}; secret (shown once): ${key.secret}`);
        out.line(`the app's other keys expire in ${overlap} s`);
        return 0;
      },
    },
    {
      name: 'revoke',
      summary: 'revoke a key at once',
      args: '<key id>',
      options: ADMIN_OPTIONS,
      async run({ values, positionals, out }) {
        const id = need(positionals, 0, 'the key id', 'peak gateway keys revoke <gk_...>');
        const key = await (await adminClient(values, { admin: true })).gateway.revokeKey(id);
        out.json(key);
        out.line(`revoked key ${id} of app ${key.app}`);
        return 0;
      },
    },
  ],
};

// ------------------------------------------------------------------ subscriptions and quota

const quotaOptions: Record<string, OptionSpec> = {
  'per-day': { type: 'string', valueName: 'N', description: 'calls per UTC day' },
  'per-month': { type: 'string', valueName: 'N', description: 'calls per UTC month' },
};

function quotaOf(
  values: Record<string, unknown>,
): { perDay?: number; perMonth?: number } | undefined {
  const perDay = optionalInt(values, 'per-day');
  const perMonth = optionalInt(values, 'per-month');
  if (perDay === undefined && perMonth === undefined) return undefined;
  return {
    ...(perDay === undefined ? {} : { perDay }),
    ...(perMonth === undefined ? {} : { perMonth }),
  };
}

function decide(verb: 'approve' | 'reject' | 'revoke'): Command {
  return {
    name: verb,
    summary: `${verb} an app's subscription to an API${verb === 'approve' ? ' (optionally with its quota)' : ''}`,
    args: '<app> <api>',
    options: {
      ...ADMIN_OPTIONS,
      note: { type: 'string', valueName: 'TEXT', description: 'why' },
      ...(verb === 'approve' ? quotaOptions : {}),
    },
    async run({ values, positionals, out }) {
      const usage = `peak gateway subscriptions ${verb} <app> <api>`;
      const app = need(positionals, 0, 'the app', usage);
      const api = need(positionals, 1, 'the API', usage);
      const g = (await adminClient(values, { admin: true })).gateway;
      const note = typeof values.note === 'string' ? values.note : undefined;
      const quota = quotaOf(values);
      const sub =
        verb === 'approve'
          ? await g.approve(app, api, {
              ...(quota === undefined ? {} : { quota }),
              ...(note === undefined ? {} : { note }),
            })
          : verb === 'reject'
            ? await g.reject(app, api, note)
            : await g.revoke(app, api, note);
      out.json(sub);
      out.line(`subscription ${app} -> ${api}: ${sub.status}`);
      return 0;
    },
  };
}

const subscriptions: Command = {
  name: 'subscriptions',
  summary: 'who may call which API: list, request, approve, reject, revoke',
  subcommands: [
    {
      name: 'ls',
      summary: 'subscriptions, optionally of one app, API or status',
      options: {
        ...SERVER_OPTIONS,
        app: { type: 'string', valueName: 'APP', description: 'only this app' },
        api: { type: 'string', valueName: 'API', description: 'only this API' },
        status: {
          type: 'string',
          valueName: 'STATUS',
          description: 'pending, approved, rejected or revoked',
        },
      },
      async run({ values, out }) {
        const status = values.status;
        if (
          status !== undefined &&
          !['pending', 'approved', 'rejected', 'revoked'].includes(String(status))
        )
          throw new UsageError(
            `--status must be pending, approved, rejected or revoked, got '${String(status)}'`,
          );
        const all = await (await adminClient(values)).gateway.subscriptions({
          ...(typeof values.app === 'string' ? { app: values.app } : {}),
          ...(typeof values.api === 'string' ? { api: values.api } : {}),
          ...(typeof status === 'string' ? { status: status as 'pending' } : {}),
        });
        out.json({ subscriptions: all });
        if (all.length === 0) out.line('no subscriptions');
        for (const s of all)
          out.line(
            `${s.app} -> ${s.api}  ${s.status}  quota day=${s.quota.perDay ?? '-'} month=${s.quota.perMonth ?? '-'}  requested ${when(s.requestedAt)}`,
          );
        return 0;
      },
    },
    {
      name: 'request',
      summary: 'an app asks for an API (pending until approved)',
      args: '<app> <api>',
      options: {
        ...ADMIN_OPTIONS,
        note: { type: 'string', valueName: 'TEXT', description: 'why' },
      },
      async run({ values, positionals, out }) {
        const usage = 'peak gateway subscriptions request <app> <api>';
        const sub = await (await adminClient(values, { admin: true })).gateway.requestSubscription(
          need(positionals, 0, 'the app', usage),
          need(positionals, 1, 'the API', usage),
          typeof values.note === 'string' ? values.note : undefined,
        );
        out.json(sub);
        out.line(`subscription ${sub.app} -> ${sub.api}: ${sub.status}`);
        return 0;
      },
    },
    decide('approve'),
    decide('reject'),
    decide('revoke'),
  ],
};

const quota: Command = {
  name: 'quota',
  summary: 'quota usage this UTC day and month, and setting a quota',
  subcommands: [
    {
      name: 'ls',
      summary: 'usage per app and API',
      options: {
        ...SERVER_OPTIONS,
        app: { type: 'string', valueName: 'APP', description: 'only this app' },
        api: { type: 'string', valueName: 'API', description: 'only this API' },
      },
      async run({ values, out }) {
        const rows = await (await adminClient(values)).gateway.quota({
          ...(typeof values.app === 'string' ? { app: values.app } : {}),
          ...(typeof values.api === 'string' ? { api: values.api } : {}),
        });
        out.json({ usage: rows });
        if (rows.length === 0) out.line('no subscriptions');
        for (const r of rows)
          out.line(
            `${r.app} -> ${r.api}  ${r.status}  today ${r.usedToday}/${r.perDay ?? '∞'}  this month ${r.usedThisMonth}/${r.perMonth ?? '∞'}`,
          );
        return 0;
      },
    },
    {
      name: 'set',
      summary: "set a subscription's quota (both limits absent: unlimited)",
      args: '<app> <api>',
      options: { ...ADMIN_OPTIONS, ...quotaOptions },
      async run({ values, positionals, out }) {
        const usage = 'peak gateway quota set <app> <api> --per-day N --per-month N';
        const sub = await (await adminClient(values, { admin: true })).gateway.setQuota(
          need(positionals, 0, 'the app', usage),
          need(positionals, 1, 'the API', usage),
          quotaOf(values) ?? {},
        );
        out.json(sub);
        out.line(
          `quota of ${sub.app} -> ${sub.api}: day=${sub.quota.perDay ?? '∞'} month=${sub.quota.perMonth ?? '∞'}`,
        );
        return 0;
      },
    },
  ],
};

// ------------------------------------------------------------------ the process

/** `peak gateway`: run the gateway, or manage it. */
export const gatewayCommand: Command = {
  name: 'gateway',
  summary: 'run the open API gateway, or manage its routes, apps, keys, subscriptions and quotas',
  description:
    'With no command, runs a gateway process until SIGINT/SIGTERM: routes, apps, keys and subscriptions come from the control plane (the change stream needs the admin token) and are kept in a snapshot file, so it keeps serving while the control plane is down. Guard rules: config item governance/guard-rules of --config-app.',
  options: {
    ...ADMIN_OPTIONS,
    port: {
      type: 'string',
      valueName: 'PORT',
      description: 'HTTP port (0 picks a free one)',
      default: '8080',
      env: 'PEAK_GATEWAY_PORT',
    },
    host: {
      type: 'string',
      valueName: 'HOST',
      description: 'bind address',
      default: '127.0.0.1',
      env: 'PEAK_GATEWAY_HOST',
    },
    'tls-cert': {
      type: 'string',
      valueName: 'FILE',
      description:
        "serve HTTPS with this certificate (PEM; watched, reloaded on change; 'peak tls init' makes one)",
      env: 'PEAK_GATEWAY_TLS_CERT',
    },
    'tls-key': {
      type: 'string',
      valueName: 'FILE',
      description: 'the private key of --tls-cert (PEM)',
      env: 'PEAK_GATEWAY_TLS_KEY',
    },
    redis: {
      type: 'string',
      valueName: 'URL',
      description: 'Redis for signature nonces (default: the control plane)',
      env: 'PEAK_GATEWAY_REDIS_URL',
    },
    'config-app': {
      type: 'string',
      valueName: 'APP',
      description: 'config app of the guard rules item',
      default: 'gateway',
      env: 'PEAK_GATEWAY_CONFIG_APP',
    },
    snapshot: {
      type: 'string',
      valueName: 'FILE',
      description: 'state snapshot file (default: <data>/gateway-<port>.json)',
      env: 'PEAK_GATEWAY_SNAPSHOT',
    },
    'clock-skew': {
      type: 'string',
      valueName: 'MS',
      description: 'how far a signed timestamp may be off',
      default: '300000',
      env: 'PEAK_GATEWAY_CLOCK_SKEW_MS',
    },
    'nonce-window': {
      type: 'string',
      valueName: 'MS',
      description: 'how long nonces are remembered (at least twice --clock-skew)',
      default: '900000',
      env: 'PEAK_GATEWAY_NONCE_WINDOW_MS',
    },
    timeout: {
      type: 'string',
      valueName: 'MS',
      description: 'deadline of a call when its route sets none',
      default: '3000',
      env: 'PEAK_GATEWAY_TIMEOUT_MS',
    },
    'max-body': {
      type: 'string',
      valueName: 'BYTES',
      description: 'largest body when its route sets none',
      default: '1048576',
      env: 'PEAK_GATEWAY_MAX_BODY_BYTES',
    },
    service: {
      type: 'string',
      valueName: 'NAME',
      description: 'the service name in traces and metrics',
      default: 'peak.gateway',
      env: 'PEAK_GATEWAY_SERVICE',
    },
    sample: {
      type: 'string',
      valueName: 'RATIO',
      description: 'fraction of traces kept, 0-1',
      default: '1',
      env: 'PEAK_GATEWAY_SAMPLE_RATIO',
    },
    'no-telemetry': { type: 'boolean', description: 'export no spans and push no metrics' },
    'no-drill': {
      type: 'boolean',
      description:
        "take no fault drills (without it, http faults for the gateway's config app hit its routes and rpc-client faults its calls to RPC targets)",
    },
    'node-http': {
      type: 'boolean',
      description:
        "serve every request with node:http (without it, small plain requests are read and answered by the gateway's own HTTP/1.1 front, over TLS too)",
      env: 'PEAK_GATEWAY_NODE_HTTP',
    },
    'log-level': {
      type: 'string',
      valueName: 'LEVEL',
      description: 'trace, debug, info, warn, error or silent',
      default: 'info',
    },
  },
  examples: [
    'peak gateway --port 8080',
    'peak gateway --server http://10.0.0.5:7420,http://10.0.0.6:7420 --token $PEAK_TOKEN --redis redis://10.0.0.9:6379',
    'peak gateway --host 0.0.0.0 --tls-cert .peak/tls/server.pem --tls-key .peak/tls/server.key',
    'peak gateway routes ls',
  ],
  subcommands: [routes, apps, keys, subscriptions, quota],
  async run({ values, out, json }) {
    const port = parsePort(values.port, '--port');
    const sample = Number(values.sample);
    if (!(sample >= 0 && sample <= 1))
      throw new UsageError(`--sample must be a number from 0 to 1, got '${String(values.sample)}'`);
    const certFile = values['tls-cert'];
    const keyFile = values['tls-key'];
    if ((certFile === undefined) !== (keyFile === undefined)) {
      throw new UsageError('--tls-cert and --tls-key go together: give both, or neither');
    }
    const token = await findAdminToken(values);
    const logger = createLogger({
      level: String(values['log-level']),
      format: process.stderr.isTTY ? 'pretty' : 'json',
      name: 'peak-gateway',
    });
    const { Gateway } = await import('../../gateway/gateway.js');
    const { DrillAgent, httpFault, rpcFaultFilter } = await import('../../drill/index.js');
    // Fault drills reach the gateway: its routes (`http` faults) and its calls to RPC targets
    // (`rpc-client`), injected for the gateway's config app like any app's.
    let agent: InstanceType<typeof DrillAgent> | undefined;
    let rpcFaults: ReturnType<typeof rpcFaultFilter> | undefined;
    const faults = values['no-drill'] !== true;
    const gateway = new Gateway({
      ...(faults
        ? {
            requestHook: (method: string, p: string) =>
              agent === undefined ? undefined : httpFault(agent, method, p),
            rpcFilters: [(inv, next) => (rpcFaults === undefined ? next() : rpcFaults(inv, next))],
          }
        : {}),
      servers: serverList(values),
      token,
      port,
      host: String(values.host),
      ...(certFile === undefined || keyFile === undefined
        ? {}
        : { tls: { certFile: String(certFile), keyFile: String(keyFile) } }),
      ...(typeof values.redis === 'string' && values.redis !== ''
        ? { redisUrl: values.redis }
        : {}),
      configApp: String(values['config-app']),
      snapshotFile:
        typeof values.snapshot === 'string'
          ? values.snapshot
          : path.resolve(String(values.data ?? DEFAULT_DATA_DIR), `gateway-${port}.json`),
      clockSkewMs: parsePort(values['clock-skew'], '--clock-skew', 86_400_000),
      nonceWindowMs: parsePort(values['nonce-window'], '--nonce-window', 7 * 86_400_000),
      timeoutMs: parsePort(values.timeout, '--timeout', 300_000),
      maxBodyBytes: parsePort(values['max-body'], '--max-body', 64 * 1024 * 1024),
      sampleRatio: sample,
      service: String(values.service),
      telemetry: values['no-telemetry'] !== true,
      httpFront: values['node-http'] !== true,
      logger,
    });
    const started = await gateway.start();
    if (faults) {
      agent = new DrillAgent({
        config: gateway.config,
        app: String(values['config-app']),
        instanceId: `gateway-${os.hostname()}-${process.pid}`,
        service: String(values.service),
        tags: ['gateway'],
        servers: serverList(values),
        token,
        logger,
      }).start();
      rpcFaults = rpcFaultFilter(agent, 'consumer');
    }
    out.json({
      event: 'ready',
      url: started.url,
      origin: started.origin,
      routes: gateway.state.routes.size,
      rev: gateway.state.rev,
      pid: process.pid,
    });
    out.line(
      `peak gateway is ready on ${started.url} (${gateway.state.routes.size} routes, state from ${started.origin})`,
    );
    out.line('Stop with Ctrl-C (SIGINT) or SIGTERM.');
    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGINT', () => resolve('SIGINT'));
      process.once('SIGTERM', () => resolve('SIGTERM'));
      // Under `npx peak gateway`, npm going away stops it too (parent-watch.ts).
      onParentGone(() => resolve('SIGTERM'));
    });
    logger.info({ signal }, 'signal received; stopping gracefully (send it again to force)');
    const force = () => process.exit(1);
    process.once('SIGINT', force);
    process.once('SIGTERM', force);
    await agent?.close();
    await gateway.close();
    out.json({ event: 'stopped' });
    if (!json) out.line('peak gateway stopped');
    return 0;
  },
};
