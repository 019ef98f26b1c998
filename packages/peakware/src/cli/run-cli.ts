/**
 * Runs one `peak` invocation: resolve argv against the command tree, print help or run the
 * command, and turn any error into one clear line on stderr and a non-zero exit code (2 for
 * usage errors, 1 otherwise). Stack traces only with `--verbose`.
 */
import { ErrorCodes, errorMessage, PeakError } from '../core/errors.js';
import { type Command, helpText, type Output, resolve, withSubcommandsLoaded } from './command.js';
import { withContext } from './contexts.js';
import { noteContext, refusedTokenHint } from './credential-note.js';
import { stopOnSignals, watchCommand } from './watch.js';
import { toYaml } from './yaml-output.js';

/** Streams and environment of one run (tests pass their own). */
export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
}

function makeOutput(io: CliIo, json: boolean, yaml: boolean): Output {
  let documents = 0;
  return {
    stdout: io.stdout,
    stderr: io.stderr,
    line: (text = '') => {
      if (!json) io.stdout.write(`${text}\n`);
    },
    json: (value) => {
      if (!json) return;
      // YAML: one document per value, separated by `---` after the first (watch frames).
      if (yaml) io.stdout.write(`${documents++ > 0 ? '---\n' : ''}${toYaml(value)}`);
      else io.stdout.write(`${JSON.stringify(value)}\n`);
    },
    note: (text) => {
      io.stderr.write(`${text}\n`);
    },
  };
}

function describeError(err: unknown, verbose: boolean): string {
  const code = err instanceof PeakError ? err.code : ErrorCodes.INTERNAL;
  let text = `peak: error: ${errorMessage(err)} [${code}]`;
  if (verbose) {
    let cause: unknown = err;
    const stacks: string[] = [];
    while (cause instanceof Error) {
      stacks.push(cause.stack ?? String(cause));
      cause = cause.cause;
    }
    text += `\n${stacks.join('\ncaused by: ')}`;
  }
  return text;
}

/** Runs the CLI and resolves to the process exit code. */
export async function runCli(root: Command, argv: string[], io: CliIo): Promise<number> {
  const wantsYaml =
    argv.includes('--output=yaml') ||
    argv.includes('-o=yaml') ||
    argv.some((a, i) => (a === '-o' || a === '--output') && argv[i + 1] === 'yaml');
  const wantsJson =
    argv.includes('--json') ||
    argv.includes('--output=json') ||
    argv.includes('-o=json') ||
    argv.some((a, i) => (a === '-o' || a === '--output') && argv[i + 1] === 'json') ||
    wantsYaml;
  const verbose = argv.includes('--verbose');
  try {
    // A context supplies PEAK_SERVER and PEAK_TOKEN_FILE where they are not set.
    const context = await withContext(argv, io.env);
    noteContext(context.name);
    const resolved = await resolve(root, argv, context.env);
    if (resolved.help || resolved.command.run === undefined) {
      io.stdout.write(helpText(resolved.path, await withSubcommandsLoaded(resolved.command)));
      return 0;
    }
    const out = makeOutput(io, resolved.ctx.json, resolved.ctx.values.output === 'yaml');
    const run = resolved.command.run;
    const ctx = { ...resolved.ctx, out };
    if (resolved.command.watch !== true || ctx.values.watch !== true) return (await run(ctx)) ?? 0;
    const stop = stopOnSignals();
    try {
      return await watchCommand(() => run(ctx), {
        out,
        json: ctx.json,
        title: resolved.path.join(' '),
        intervalMs: Number(ctx.values.interval) * 1000,
        stop: stop.signal,
      });
    } finally {
      stop.release();
    }
  } catch (err) {
    io.stderr.write(`${describeError(err, verbose)}\n`);
    // A usage error is followed by the command's usage line (from the parser).
    if (err instanceof PeakError && typeof err.details.usage === 'string')
      io.stderr.write(`${err.details.usage}\n`);
    const hint =
      err instanceof PeakError &&
      (err.code === ErrorCodes.UNAUTHENTICATED || err.code === ErrorCodes.FORBIDDEN)
        ? refusedTokenHint()
        : undefined;
    if (hint !== undefined) io.stderr.write(`${hint}\n`);
    if (wantsJson) {
      const body =
        err instanceof PeakError
          ? err.toJSON()
          : { code: ErrorCodes.INTERNAL, message: errorMessage(err), details: {} };
      io.stdout.write(wantsYaml ? toYaml({ error: body }) : `${JSON.stringify({ error: body })}\n`);
    }
    return err instanceof PeakError && err.code === ErrorCodes.USAGE ? 2 : 1;
  }
}
