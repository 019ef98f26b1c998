#!/usr/bin/env node
/** The `peak` executable. */
import { rootCommand } from './commands/index.js';
import { runCli } from './run-cli.js';

// A reader that goes away (`peak top | head`, `peak mq consume | head -1`) closes the pipe:
// that ends the output, not the process with an EPIPE stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

const code = await runCli(rootCommand, process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
});
process.exitCode = code;
