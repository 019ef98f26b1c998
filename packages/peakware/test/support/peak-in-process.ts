/**
 * `peak <argv>` run in the test's own process (the CLI's `runCli` with captured output): for
 * tests that need the CLI's answer without the cost of a process. `spawnPeak` / `runPeak`
 * (peak-process.ts) run the real binary instead.
 */
import { PassThrough } from 'node:stream';
import { rootCommand } from '../../src/cli/commands/index.js';
import { runCli } from '../../src/cli/run-cli.js';

/** Runs one `peak` invocation in this process; its exit code and what it printed. */
export async function peakInProcess(
  argv: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (b) => {
    out += b;
  });
  stderr.on('data', (b) => {
    err += b;
  });
  const code = await runCli(rootCommand, argv, { stdout, stderr, env });
  return { code, stdout: out, stderr: err };
}
