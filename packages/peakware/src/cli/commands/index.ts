/**
 * The root of the `peak` command tree. A subsystem adds its group (`peak rpc`, `peak mq`)
 * by exporting a Command with subcommands and listing it here as a lazy command, so each
 * invocation loads only the module it runs (`peak --version` loads none of them).
 */
import { PEAKWARE_VERSION } from '../../core/version.js';
import { type Command, helpText, lazyCommand, withSubcommandsLoaded } from '../command.js';

export const rootCommand: Command = {
  name: 'peak',
  summary: `peak ${PEAKWARE_VERSION}: the Peakware control plane and tools`,
  options: {
    version: { type: 'boolean', short: 'V', description: 'print the version' },
  },
  subcommands: [
    lazyCommand('server', async () => (await import('./server-command.js')).serverCommand),
    lazyCommand('rpc', async () => (await import('./rpc-command.js')).rpcCommand),
    lazyCommand('status', async () => (await import('./status-command.js')).statusCommand),
    lazyCommand('token', async () => (await import('./token-command.js')).tokenCommand),
    lazyCommand('app', async () => (await import('./app-command.js')).appCommand),
    lazyCommand('guard', async () => (await import('./guard-command.js')).guardCommand),
    lazyCommand('data', async () => (await import('./data-command.js')).dataCommand),
    lazyCommand('config', async () => (await import('./config-command.js')).configCommand),
    lazyCommand('mq', async () => (await import('./mq-command.js')).mqCommand),
    lazyCommand('trace', async () => (await import('./trace-command.js')).traceCommand),
    lazyCommand('top', async () => (await import('./top-command.js')).topCommand),
    lazyCommand('alert', async () => (await import('./alert-command.js')).alertCommand),
    lazyCommand('tls', async () => (await import('./tls-command.js')).tlsCommand),
    lazyCommand('cache', async () => (await import('./cache-command.js')).cacheCommand),
    lazyCommand('gateway', async () => (await import('./gateway-command.js')).gatewayCommand),
    lazyCommand('drill', async () => (await import('./drill-command.js')).drillCommand),
    lazyCommand('plan', async () => (await import('./plan-command.js')).planCommand),
    lazyCommand('stress', async () => (await import('./stress-command.js')).stressCommand),
    lazyCommand('capacity', async () => (await import('./capacity-command.js')).capacityCommand),
    lazyCommand('txn', async () => (await import('./txn-command.js')).txnCommand),
    lazyCommand('context', async () => (await import('./context-command.js')).contextCommand),
    lazyCommand(
      'completion',
      async () => (await import('./completion-command.js')).completionCommand,
    ),
    lazyCommand('supervise', async () => (await import('./supervise-command.js')).superviseCommand),
    lazyCommand('scale', async () => (await import('./scale-command.js')).scaleCommand),
    lazyCommand('release', async () => (await import('./release-command.js')).releaseCommand),
  ],
  async run({ values, out }) {
    if (values.version === true) {
      out.json({ version: PEAKWARE_VERSION });
      out.line(PEAKWARE_VERSION);
      return 0;
    }
    out.stdout.write(helpText(['peak'], await withSubcommandsLoaded(rootCommand)));
    return 0;
  },
};
