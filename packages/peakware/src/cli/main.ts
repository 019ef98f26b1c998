#!/usr/bin/env node
/** The `peak` executable. */
import { rootCommand } from './commands/index.js';
import { runCli } from './run-cli.js';

const code = await runCli(rootCommand, process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
});
process.exitCode = code;
