#!/usr/bin/env node
/** The `peak` executable. */

// A reader that goes away (`peak top | head`, `peak mq consume | head -1`) closes the pipe:
// that ends the output, not the process with an EPIPE stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

const argv = process.argv.slice(2);
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
  // The fast path: no command tree, no parser, only the package's version.
  const { PEAKWARE_VERSION } = await import('../core/version.js');
  process.stdout.write(`${PEAKWARE_VERSION}\n`);
} else {
  const [{ rootCommand }, { runCli }] = await Promise.all([
    import('./commands/index.js'),
    import('./run-cli.js'),
  ]);
  process.exitCode = await runCli(rootCommand, argv, {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
  });
}
