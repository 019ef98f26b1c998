/**
 * `peak supervise <app.yaml>`: runs an app file's services as instances on this machine
 * (the scaling actuator): restarts crashed ones with backoff, stops them gracefully, and
 * reports them to the control plane, whose answer says how many of which version to run.
 * Killed outright, it leaves the instances running and adopts them when started again on
 * the same state folder; stopped with SIGINT/SIGTERM it stops them gracefully first
 * (`--leave-running` leaves them for the next run).
 */
import path from 'node:path';
import { UsageError } from '../../core/errors.js';
import { createLogger } from '../../core/logger.js';
import { loadAppSpec } from '../../scale/app-spec.js';
import { Supervisor } from '../../scale/supervisor.js';
import type { Command } from '../command.js';
import { findCredential, SERVER_OPTIONS } from '../control-client.js';

/** `peak supervise <app.yaml>` */
export const superviseCommand: Command = {
  name: 'supervise',
  summary:
    "run an app file's services as instances: restarts, graceful scale-in, orders from the control plane",
  args: '<app.yaml|app.json>',
  description:
    "Reports with an app credential holding a scale grant (scale, or scale:<service> for each service of the file): --token/PEAK_TOKEN, else PEAK_CREDENTIAL, else the local app's of the data folder. Instances inherit this process's environment plus the service's env in the app file: give each service its app's PEAK_CREDENTIAL there so it can register. Every instance gets PEAK_INSTANCE_ID (pass it to RpcServer instanceId and MetricsPusher instance), PEAK_APP, PEAK_SERVICE, PEAK_VERSION, PEAK_WEIGHT (0 for a gray instance) and PEAK_SUPERVISED=1, and its own log file in the state folder. Stop with Ctrl-C (SIGINT) or SIGTERM.",
  options: {
    ...SERVER_OPTIONS,
    state: {
      type: 'string',
      valueName: 'DIR',
      description:
        'pid files and instance logs (default: .peak/supervise/<app> beside the app file)',
    },
    id: {
      type: 'string',
      valueName: 'ID',
      description: 'the supervisor id the control plane knows it by (default <host>/<app>)',
    },
    'leave-running': {
      type: 'boolean',
      description: 'on SIGINT/SIGTERM, leave the instances running for the next run to adopt',
    },
    'log-level': { type: 'string', valueName: 'LEVEL', description: 'pino level', default: 'info' },
  },
  examples: ['peak supervise shop.yaml', 'peak supervise shop.yaml --server http://10.0.0.5:7420'],
  async run({ values, positionals, out }) {
    const file = positionals[0];
    if (file === undefined) throw new UsageError('give the app file: peak supervise <app.yaml>');
    const spec = await loadAppSpec(file).catch((err: Error & { code?: string }) => {
      if (err.code === 'ENOENT') throw new UsageError(`no app file ${file}`);
      throw err;
    });
    const stateDir =
      typeof values.state === 'string'
        ? values.state
        : path.join(path.dirname(path.resolve(file)), '.peak', 'supervise', spec.app);
    const logger = createLogger({
      level: String(values['log-level']),
      format: process.stderr.isTTY ? 'pretty' : 'json',
      name: 'peak-supervise',
    });
    const token = await findCredential(values, 'app');
    const supervisor = new Supervisor({
      spec,
      stateDir,
      servers: String(values.server),
      ...(token === undefined ? {} : { token }),
      logger,
      ...(typeof values.id === 'string' ? { supervisorId: values.id } : {}),
    });
    await supervisor.start();
    out.json({ event: 'ready', supervisorId: supervisor.id, stateDir, pid: process.pid });
    out.line(`supervising ${spec.services.length} service(s) of ${spec.app}; state in ${stateDir}`);
    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGINT', () => resolve('SIGINT'));
      process.once('SIGTERM', () => resolve('SIGTERM'));
    });
    const leave = values['leave-running'] === true;
    logger.info({ signal, leave }, 'signal received; stopping');
    await supervisor.stop({ instances: leave ? 'leave' : 'stop' });
    out.json({ event: 'stopped', leftRunning: leave });
    return 0;
  },
};
