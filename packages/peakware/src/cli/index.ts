/** `peakware/cli`: the `peak` command tree, for tools that embed or extend it. */
export type { Command, CommandContext, OptionSpec, Output } from './command.js';
export { helpText, resolve } from './command.js';
export { rootCommand } from './commands/index.js';
export { type CliIo, runCli } from './run-cli.js';
