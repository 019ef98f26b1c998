/**
 * The root of the `peak` command tree. A subsystem adds its group (`peak rpc`, `peak mq`)
 * by exporting a Command with subcommands and listing it here.
 */
import { PEAKWARE_VERSION } from '../../core/version.js';
import { type Command, helpText } from '../command.js';
import { alertCommand } from './alert-command.js';
import { configCommand } from './config-command.js';
import { dataCommand } from './data-command.js';
import { guardCommand } from './guard-command.js';
import { mqCommand } from './mq-command.js';
import { rpcCommand } from './rpc-command.js';
import { serverCommand } from './server-command.js';
import { statusCommand } from './status-command.js';
import { tlsCommand } from './tls-command.js';
import { tokenCommand } from './token-command.js';
import { topCommand } from './top-command.js';
import { traceCommand } from './trace-command.js';

export const rootCommand: Command = {
  name: 'peak',
  summary: `peak ${PEAKWARE_VERSION}: the Peakware control plane and tools`,
  options: {
    version: { type: 'boolean', short: 'V', description: 'print the version' },
  },
  subcommands: [
    serverCommand,
    rpcCommand,
    statusCommand,
    tokenCommand,
    guardCommand,
    dataCommand,
    configCommand,
    mqCommand,
    traceCommand,
    topCommand,
    alertCommand,
    tlsCommand,
  ],
  run({ values, out }) {
    if (values.version === true) {
      out.json({ version: PEAKWARE_VERSION });
      out.line(PEAKWARE_VERSION);
      return 0;
    }
    out.stdout.write(helpText(['peak'], rootCommand));
    return 0;
  },
};
