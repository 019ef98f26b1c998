/**
 * The settings of a control-plane node's subsystems, in one table: each setting's default,
 * the range it takes, and the `PEAK_*` variable `peak server` reads it from. A program
 * passes them to `PeakServer.start` (every field optional); only the CLI's `server` command
 * reads the environment ({@link serverSettingsFromEnv}) and passes what it found. Route
 * modules get the resolved settings through `ApiContext.settings` and never read
 * `process.env`. A value out of range stops the start with one line naming the option (or
 * the variable), what it takes and what it got: a typo must not silently become the
 * default.
 */
import { UsageError } from '../core/errors.js';
import { urlPrefixes } from '../core/url-allow-list.js';

/** A node's subsystem settings as {@link PeakServer.start} resolves them (every default applied). */
export interface ServerSettings {
  /** Connections in the node's PostgreSQL pool. */
  postgresPoolMax: number;
  mq: {
    /** How long messages are kept for replay, ms. */
    retentionMs: number;
    /** How long a silent consumer keeps its queues, ms. */
    sessionMs: number;
    /** How long an unresolved half message waits before its producer is checked back, ms. */
    halfCheckAfterMs: number;
    /** Time between check-backs of one half message, ms. */
    halfCheckIntervalMs: number;
    /** The MQTT bridge's listen address, or undefined when the bridge is off. */
    mqtt: { port: number; host: string; wsPort?: number } | undefined;
    /**
     * More PostgreSQL databases topics may be placed on, by name (`main`, the node's own,
     * is always there): the broker tier grows by adding databases (src/mq/README.md).
     */
    databases: Record<string, string>;
  };
  /**
   * The RPC port's listen address (on by default: the SDK's hot calls, control-plane-rpc.ts),
   * or undefined when it is off.
   */
  rpc: { port: number; host: string } | undefined;
  telemetry: {
    /** How long spans are kept, ms. */
    spanRetentionMs: number;
    /** How long pushed per-second metrics are kept, ms. */
    metricsRetentionMs: number;
    /** Time between alert evaluations, ms. */
    alertIntervalMs: number;
    /** Whether this node takes part in evaluating alerts (one node evaluates at a time). */
    alertEvaluator: boolean;
  };
  guard: {
    /** Whether this node takes part in leading the cluster token server. */
    tokenServer: boolean;
  };
  txn: {
    /** How long a node owns a global transaction it drives without renewing, ms. */
    leaseMs: number;
    /** Time between the coordinator's recovery rounds, ms. */
    recoveryIntervalMs: number;
    /** Recovery rounds after which a failing global transaction is parked for an operator. */
    maxRecoveries: number;
    /** How long finished global transactions are kept, counted from their start, ms. */
    retentionMs: number;
    /** URL prefixes HTTP branches may be under (none: HTTP branches are refused). */
    httpBranches: string[];
  };
  scale: {
    /** Time between scaling evaluations (and release steps' checks), ms. */
    intervalMs: number;
    /** Whether this node takes part in evaluating scaling policies and releases (one node at a time). */
    evaluator: boolean;
  };
}

/**
 * The settings as `PeakServerOptions` takes them: any subset; what is left out takes its
 * default from {@link SERVER_SETTINGS}. The MQTT bridge is off unless `mq.mqtt` is given.
 */
export interface ServerSettingsOptions {
  /** Connections in the node's PostgreSQL pool, 8-500. Default 25. */
  postgresPoolMax?: number;
  mq?: {
    /** ms > 0. Default 72 h. */
    retentionMs?: number;
    /** ms ≥ 1000. Default 20 000. */
    sessionMs?: number;
    /** ms ≥ 0. Default 6000. */
    halfCheckAfterMs?: number;
    /** ms ≥ 100. Default 30 000. */
    halfCheckIntervalMs?: number;
    /** Start the MQTT bridge on this port (0 picks a free one); host default 127.0.0.1. */
    mqtt?: { port: number; host?: string; wsPort?: number };
    /**
     * More PostgreSQL databases for topics, by name (`[a-z][a-z0-9_-]*`, not `main`) →
     * `postgres://` URL. Every node of a control plane must name the same ones. Default none.
     */
    databases?: Record<string, string>;
  };
  /**
   * The RPC port for the SDK's hot calls (mq send/receive/ack/nack, txn submits): on by
   * default on a free port of 127.0.0.1; `false` turns it off (the SDK then uses HTTP).
   */
  rpc?: { port: number; host?: string } | false;
  telemetry?: {
    /** ms > 0. Default 72 h. */
    spanRetentionMs?: number;
    /** ms > 0. Default 60 min. */
    metricsRetentionMs?: number;
    /** ms ≥ 50. Default 10 000. */
    alertIntervalMs?: number;
    /** Default true. */
    alertEvaluator?: boolean;
  };
  guard?: {
    /** Default true. */
    tokenServer?: boolean;
  };
  txn?: {
    /** ms ≥ 100. Default 10 000. */
    leaseMs?: number;
    /** ms ≥ 20. Default 1000. */
    recoveryIntervalMs?: number;
    /** 1-1000. Default 20. */
    maxRecoveries?: number;
    /** ms > 0 (the variable: hours). Default 168 h. */
    retentionMs?: number;
    /**
     * URL prefixes (`http(s)://host:port/path/`) the coordinator may call as HTTP branches;
     * default none: a saga or TCC naming a URL is refused (server-side request forgery).
     */
    httpBranches?: string[];
  };
  scale?: {
    /** ms ≥ 50. Default 5000. */
    intervalMs?: number;
    /** Default true. */
    evaluator?: boolean;
  };
}

/** A numeric setting: where it sits, its variable, its unit there, its default and range. */
interface NumberSetting {
  kind: 'number';
  /** `section.name` in {@link ServerSettingsOptions}, or a top-level name. */
  option: string;
  env: string;
  /** The variable's unit and how many option units (ms, or none) one of it is. */
  envUnit: { name: string; scale: number };
  /** Default, in option units. */
  fallback: number;
  /** Lowest value, in option units; `minExclusive` makes it a bound the value must exceed. */
  min: number;
  minExclusive?: boolean;
  max?: number;
  integer?: boolean;
  /** A note on what it takes, after the range. */
  note?: string;
  summary: string;
}

/** An on/off setting (`on`/`off` in the environment, a boolean in the options). */
interface SwitchSetting {
  kind: 'switch';
  option: string;
  env: string;
  fallback: boolean;
  summary: string;
}

/** One row of {@link SERVER_SETTINGS}. */
export type ServerSetting = NumberSetting | SwitchSetting;

const HOUR = 3_600_000;
const MINUTE = 60_000;
const MS = { name: 'ms', scale: 1 };

/** Every setting, its default and range: the one table (docs/configuration.md shows it). */
export const SERVER_SETTINGS: readonly ServerSetting[] = [
  {
    kind: 'number',
    option: 'postgresPoolMax',
    env: 'PEAK_POSTGRES_POOL_MAX',
    envUnit: { name: '', scale: 1 },
    fallback: 25,
    min: 8,
    max: 500,
    integer: true,
    note: 'five sessions are held for listeners and leader locks',
    summary: "connections in the node's PostgreSQL pool",
  },
  {
    kind: 'number',
    option: 'mq.retentionMs',
    env: 'PEAK_MQ_RETENTION_HOURS',
    envUnit: { name: 'hours', scale: HOUR },
    fallback: 72 * HOUR,
    min: 0,
    minExclusive: true,
    summary: 'how long messages are kept for replay',
  },
  {
    kind: 'number',
    option: 'mq.sessionMs',
    env: 'PEAK_MQ_SESSION_MS',
    envUnit: MS,
    fallback: 20_000,
    min: 1000,
    summary: 'how long a silent consumer keeps its queues',
  },
  {
    kind: 'number',
    option: 'mq.halfCheckAfterMs',
    env: 'PEAK_MQ_HALF_CHECK_AFTER_MS',
    envUnit: MS,
    fallback: 6000,
    min: 0,
    summary: 'wait before an unresolved half message is checked back',
  },
  {
    kind: 'number',
    option: 'mq.halfCheckIntervalMs',
    env: 'PEAK_MQ_HALF_CHECK_INTERVAL_MS',
    envUnit: MS,
    fallback: 30_000,
    min: 100,
    summary: 'time between check-backs of one half message',
  },
  {
    kind: 'number',
    option: 'telemetry.spanRetentionMs',
    env: 'PEAK_TELEMETRY_RETENTION_HOURS',
    envUnit: { name: 'hours', scale: HOUR },
    fallback: 72 * HOUR,
    min: 0,
    minExclusive: true,
    summary: 'how long spans are kept',
  },
  {
    kind: 'number',
    option: 'telemetry.metricsRetentionMs',
    env: 'PEAK_TELEMETRY_METRICS_RETENTION_MINUTES',
    envUnit: { name: 'minutes', scale: MINUTE },
    fallback: 60 * MINUTE,
    min: 0,
    minExclusive: true,
    summary: 'how long pushed per-second metrics are kept',
  },
  {
    kind: 'number',
    option: 'telemetry.alertIntervalMs',
    env: 'PEAK_TELEMETRY_ALERT_INTERVAL_MS',
    envUnit: MS,
    fallback: 10_000,
    min: 50,
    summary: 'time between alert evaluations',
  },
  {
    kind: 'switch',
    option: 'telemetry.alertEvaluator',
    env: 'PEAK_TELEMETRY_ALERT_EVALUATOR',
    fallback: true,
    summary: 'take part in evaluating alerts (one node evaluates at a time)',
  },
  {
    kind: 'switch',
    option: 'guard.tokenServer',
    env: 'PEAK_GUARD_TOKEN_SERVER',
    fallback: true,
    summary: "take part in leading the guard's cluster token server",
  },
  {
    kind: 'number',
    option: 'txn.leaseMs',
    env: 'PEAK_TXN_LEASE_MS',
    envUnit: MS,
    fallback: 10_000,
    min: 100,
    summary:
      'how long a node owns a global transaction it drives without renewing (recovery takes it after)',
  },
  {
    kind: 'number',
    option: 'txn.recoveryIntervalMs',
    env: 'PEAK_TXN_RECOVERY_INTERVAL_MS',
    envUnit: MS,
    fallback: 1000,
    min: 20,
    summary: "time between the transaction coordinator's recovery rounds",
  },
  {
    kind: 'number',
    option: 'txn.maxRecoveries',
    env: 'PEAK_TXN_MAX_RECOVERIES',
    envUnit: { name: '', scale: 1 },
    fallback: 20,
    min: 1,
    max: 1000,
    integer: true,
    summary: 'recovery rounds after which a failing global transaction is parked (peak txn retry)',
  },
  {
    kind: 'number',
    option: 'txn.retentionMs',
    env: 'PEAK_TXN_RETENTION_HOURS',
    envUnit: { name: 'hours', scale: HOUR },
    fallback: 168 * HOUR,
    min: 0,
    minExclusive: true,
    summary:
      'how long finished global transactions are kept (from their start) for peak txn ls and show',
  },
  {
    kind: 'number',
    option: 'scale.intervalMs',
    env: 'PEAK_SCALE_INTERVAL_MS',
    envUnit: MS,
    fallback: 5000,
    min: 50,
    summary: 'time between evaluations of the scaling policies and of the releases in progress',
  },
  {
    kind: 'switch',
    option: 'scale.evaluator',
    env: 'PEAK_SCALE_EVALUATOR',
    fallback: true,
    summary: 'take part in evaluating scaling policies and releases (one node at a time)',
  },
];

/** The MQTT bridge's variables (off unless the port is set). */
export const MQTT_SETTINGS = {
  port: { env: 'PEAK_MQ_MQTT_PORT', option: 'mq.mqtt.port', takes: 'a TCP port from 0 to 65535' },
  host: { env: 'PEAK_MQ_MQTT_HOST', option: 'mq.mqtt.host', fallback: '127.0.0.1' },
  wsPort: {
    env: 'PEAK_MQ_MQTT_WS_PORT',
    option: 'mq.mqtt.wsPort',
    takes: 'a TCP port from 0 to 65535 (MQTT over WebSocket, for browsers; with the MQTT port)',
  },
} as const;

/** The RPC port's variables (on by default, on a free port of 127.0.0.1). */
export const RPC_SETTINGS = {
  port: {
    env: 'PEAK_RPC_PORT',
    option: 'rpc.port',
    takes: "a TCP port from 0 to 65535, or 'off'",
    fallback: 0,
  },
  host: { env: 'PEAK_RPC_HOST', option: 'rpc.host', fallback: '127.0.0.1' },
} as const;

/** The message databases: `name=url` pairs, comma-separated, in the environment. */
export const MQ_DATABASES = {
  env: 'PEAK_MQ_DATABASES',
  option: 'mq.databases',
  takes:
    'comma-separated name=postgres://… pairs (a name is a lowercase letter, then letters, digits, - or _; not main)',
  summary:
    'more PostgreSQL databases topics may be placed on (peak mq topics create NAME --database DB)',
} as const;

const DATABASE_NAME = /^[a-z][a-z0-9_-]{0,39}$/;

/** `map` checked as message databases; throws a UsageError naming `where` and the bad entry. */
function checkMqDatabases(map: unknown, where: string): Record<string, string> {
  if (typeof map !== 'object' || map === null || Array.isArray(map))
    throw new UsageError(`${where} must be ${MQ_DATABASES.takes}, got ${JSON.stringify(map)}`);
  const out: Record<string, string> = {};
  for (const [name, url] of Object.entries(map)) {
    if (!DATABASE_NAME.test(name) || name === 'main')
      throw new UsageError(
        `${where}: '${name}' is not a database name (${MQ_DATABASES.takes}); main is the node's own`,
      );
    if (typeof url !== 'string' || !/^postgres(ql)?:\/\/./.test(url))
      throw new UsageError(
        `${where}: database '${name}' needs a postgres:// URL, got ${JSON.stringify(url)}`,
      );
    out[name] = url;
  }
  return out;
}

/** The HTTP branches' allow-list: a comma-separated list of URL prefixes in the environment. */
export const TXN_HTTP_BRANCHES = {
  env: 'PEAK_TXN_HTTP_BRANCHES',
  option: 'txn.httpBranches',
  takes: 'a comma-separated list of http:// or https:// URL prefixes (scheme, host, port, path)',
  summary: 'the URL prefixes the transaction coordinator may call as HTTP branches',
} as const;

/** `list` checked as HTTP branch prefixes; throws a UsageError naming `where` and the bad entry. */
function checkHttpBranches(list: unknown, where: string): string[] {
  if (!Array.isArray(list) || list.some((x) => typeof x !== 'string'))
    throw new UsageError(
      `${where} must be ${TXN_HTTP_BRANCHES.takes}, got ${JSON.stringify(list)}`,
    );
  try {
    return urlPrefixes(list as string[]).map((u) => u.href);
  } catch (err) {
    throw new UsageError(`${where} must be ${TXN_HTTP_BRANCHES.takes}: ${(err as Error).message}`);
  }
}

/** What a numeric setting takes, in the unit of the variable (`env`) or the option. */
function takes(s: NumberSetting, where: 'env' | 'option'): string {
  const scale = where === 'env' ? s.envUnit.scale : 1;
  const unit = where === 'env' ? s.envUnit.name : s.envUnit.name === '' ? '' : 'ms';
  const note = s.note === undefined ? '' : ` (${s.note})`;
  if (s.integer === true && s.max !== undefined)
    return `an integer from ${s.min / scale} to ${s.max / scale}${note}`;
  const bound = s.minExclusive === true ? `above ${s.min / scale}` : `of at least ${s.min / scale}`;
  return `a number${unit === '' ? '' : ` of ${unit}`} ${bound}${note}`;
}

function inRange(s: NumberSetting, n: number): boolean {
  return (
    Number.isFinite(n) &&
    (s.minExclusive === true ? n > s.min : n >= s.min) &&
    (s.max === undefined || n <= s.max) &&
    (s.integer !== true || Number.isInteger(n))
  );
}

function isPort(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 65535;
}

/** What a setting takes and its default, in the variable's terms (for `--help` and docs). */
export function describeSetting(s: ServerSetting): { takes: string; fallback: string } {
  if (s.kind === 'switch') return { takes: '`on` or `off`', fallback: s.fallback ? 'on' : 'off' };
  return { takes: takes(s, 'env'), fallback: String(s.fallback / s.envUnit.scale) };
}

function lookup(options: ServerSettingsOptions, option: string): unknown {
  const [section, name] = option.split('.') as [string, string | undefined];
  const top = (options as Record<string, unknown>)[section];
  if (name === undefined) return top;
  return (top as Record<string, unknown> | undefined)?.[name];
}

/**
 * Applies the defaults to `options` and checks every value against its range; throws a
 * UsageError naming the first bad option (`telemetry.alertIntervalMs must be ...`).
 */
export function resolveServerSettings(options: ServerSettingsOptions = {}): ServerSettings {
  const value = new Map<string, number | boolean>();
  for (const s of SERVER_SETTINGS) {
    const given = lookup(options, s.option);
    if (given === undefined) {
      value.set(s.option, s.fallback);
      continue;
    }
    if (s.kind === 'switch') {
      if (typeof given !== 'boolean')
        throw new UsageError(`${s.option} must be true or false, got ${JSON.stringify(given)}`);
    } else if (typeof given !== 'number' || !inRange(s, given)) {
      throw new UsageError(
        `${s.option} must be ${takes(s, 'option')}, got ${JSON.stringify(given)}`,
      );
    }
    value.set(s.option, given);
  }
  const num = (option: string) => value.get(option) as number;
  const on = (option: string) => value.get(option) as boolean;
  const mqtt = options.mq?.mqtt;
  if (mqtt !== undefined && !isPort(mqtt.port)) {
    throw new UsageError(
      `${MQTT_SETTINGS.port.option} must be ${MQTT_SETTINGS.port.takes}, got ${JSON.stringify(mqtt.port)}`,
    );
  }
  if (mqtt?.wsPort !== undefined && !isPort(mqtt.wsPort)) {
    throw new UsageError(
      `${MQTT_SETTINGS.wsPort.option} must be ${MQTT_SETTINGS.wsPort.takes}, got ${JSON.stringify(mqtt.wsPort)}`,
    );
  }
  const rpc = options.rpc;
  if (rpc !== undefined && rpc !== false && !isPort(rpc.port)) {
    throw new UsageError(
      `${RPC_SETTINGS.port.option} must be ${RPC_SETTINGS.port.takes}, got ${JSON.stringify(rpc.port)}`,
    );
  }
  return {
    postgresPoolMax: num('postgresPoolMax'),
    mq: {
      retentionMs: num('mq.retentionMs'),
      sessionMs: num('mq.sessionMs'),
      halfCheckAfterMs: num('mq.halfCheckAfterMs'),
      halfCheckIntervalMs: num('mq.halfCheckIntervalMs'),
      mqtt:
        mqtt === undefined
          ? undefined
          : {
              port: mqtt.port,
              host: mqtt.host ?? MQTT_SETTINGS.host.fallback,
              ...(mqtt.wsPort === undefined ? {} : { wsPort: mqtt.wsPort }),
            },
      databases:
        options.mq?.databases === undefined
          ? {}
          : checkMqDatabases(options.mq.databases, MQ_DATABASES.option),
    },
    rpc:
      rpc === false
        ? undefined
        : {
            port: rpc?.port ?? RPC_SETTINGS.port.fallback,
            host: rpc?.host ?? RPC_SETTINGS.host.fallback,
          },
    telemetry: {
      spanRetentionMs: num('telemetry.spanRetentionMs'),
      metricsRetentionMs: num('telemetry.metricsRetentionMs'),
      alertIntervalMs: num('telemetry.alertIntervalMs'),
      alertEvaluator: on('telemetry.alertEvaluator'),
    },
    guard: { tokenServer: on('guard.tokenServer') },
    txn: {
      leaseMs: num('txn.leaseMs'),
      recoveryIntervalMs: num('txn.recoveryIntervalMs'),
      maxRecoveries: num('txn.maxRecoveries'),
      retentionMs: num('txn.retentionMs'),
      httpBranches:
        options.txn?.httpBranches === undefined
          ? []
          : checkHttpBranches(options.txn.httpBranches, TXN_HTTP_BRANCHES.option),
    },
    scale: { intervalMs: num('scale.intervalMs'), evaluator: on('scale.evaluator') },
  };
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * The settings the `PEAK_*` variables of `env` set, as options (unset variables are left
 * out, so the defaults apply). Checked against the same table: throws a UsageError naming
 * the first malformed variable, what it takes and what it got. For the CLI's `server`
 * command; a program passes options to `PeakServer.start` instead.
 */
export function serverSettingsFromEnv(env: Env): ServerSettingsOptions {
  const out: Record<string, Record<string, unknown> | number> = {};
  const put = (option: string, v: unknown) => {
    const [section, name] = option.split('.') as [string, string | undefined];
    if (name === undefined) out[section] = v as number;
    else out[section] = { ...((out[section] as Record<string, unknown>) ?? {}), [name]: v };
  };
  for (const s of SERVER_SETTINGS) {
    const raw = env[s.env];
    if (raw === undefined || raw === '') continue;
    if (s.kind === 'switch') {
      if (raw !== 'on' && raw !== 'off')
        throw new UsageError(`${s.env} must be 'on' or 'off', got '${raw}'`);
      put(s.option, raw === 'on');
      continue;
    }
    const n = raw.trim() === '' ? Number.NaN : Number(raw) * s.envUnit.scale;
    if (!inRange(s, n)) throw new UsageError(`${s.env} must be ${takes(s, 'env')}, got '${raw}'`);
    put(s.option, n);
  }
  const port = env[MQTT_SETTINGS.port.env];
  if (port !== undefined && port !== '') {
    const n = Number(port);
    if (!/^\d+$/.test(port) || !isPort(n))
      throw new UsageError(
        `${MQTT_SETTINGS.port.env} must be ${MQTT_SETTINGS.port.takes}, got '${port}'`,
      );
    const host = env[MQTT_SETTINGS.host.env];
    const ws = env[MQTT_SETTINGS.wsPort.env];
    if (ws !== undefined && ws !== '' && (!/^\d+$/.test(ws) || !isPort(Number(ws))))
      throw new UsageError(
        `${MQTT_SETTINGS.wsPort.env} must be ${MQTT_SETTINGS.wsPort.takes}, got '${ws}'`,
      );
    put('mq.mqtt', {
      port: n,
      ...(host ? { host } : {}),
      ...(ws !== undefined && ws !== '' ? { wsPort: Number(ws) } : {}),
    });
  }
  const rpcPort = env[RPC_SETTINGS.port.env];
  const rpcHost = env[RPC_SETTINGS.host.env];
  if (rpcPort === 'off') {
    put('rpc', false);
  } else if ((rpcPort !== undefined && rpcPort !== '') || rpcHost) {
    const n = rpcPort === undefined || rpcPort === '' ? 0 : Number(rpcPort);
    if (!/^\d*$/.test(rpcPort ?? '') || !isPort(n))
      throw new UsageError(
        `${RPC_SETTINGS.port.env} must be ${RPC_SETTINGS.port.takes}, got '${rpcPort}'`,
      );
    put('rpc', { port: n, ...(rpcHost ? { host: rpcHost } : {}) });
  }
  const databases = env[MQ_DATABASES.env];
  if (databases !== undefined && databases.trim() !== '') {
    const map: Record<string, string> = {};
    for (const pair of databases
      .split(',')
      .map((x) => x.trim())
      .filter((x) => x !== '')) {
      const eq = pair.indexOf('=');
      if (eq <= 0)
        throw new UsageError(`${MQ_DATABASES.env} must be ${MQ_DATABASES.takes}, got '${pair}'`);
      const name = pair.slice(0, eq).trim();
      if (name in map) throw new UsageError(`${MQ_DATABASES.env} names database '${name}' twice`);
      map[name] = pair.slice(eq + 1).trim();
    }
    put(MQ_DATABASES.option, checkMqDatabases(map, MQ_DATABASES.env));
  }
  const branches = env[TXN_HTTP_BRANCHES.env];
  if (branches !== undefined && branches.trim() !== '') {
    const list = branches
      .split(',')
      .map((x) => x.trim())
      .filter((x) => x !== '');
    put(TXN_HTTP_BRANCHES.option, checkHttpBranches(list, TXN_HTTP_BRANCHES.env));
  }
  return out as ServerSettingsOptions;
}
