/**
 * The `peak` command tree. A command is data: a name, a one-line summary, its options, and
 * either a `run` function or subcommands. Later subsystems add a group (`peak rpc ...`,
 * `peak mq ...`) by exporting a {@link Command} with subcommands and listing it in
 * `commands/index.ts`; parsing, `--help`, `--json`, `--verbose` and error output come free.
 */
import { parseArgs } from 'node:util';
import { MissingDependencyError, UsageError } from '../core/errors.js';
import { numberProblem } from './parse.js';
import { WATCH_OPTIONS } from './watch.js';

/** One option of a command. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  /** One line for `--help`. */
  description: string;
  /** A one-letter alias. */
  short?: string;
  /** The placeholder shown in `--help` for a string value, e.g. `URL`. */
  valueName?: string;
  /** The value when the option is absent (and no `env` variable is set). */
  default?: string | boolean;
  /** An environment variable that supplies the value when the option is absent. */
  env?: string;
  /** A string option that may be given more than once; the values arrive joined by commas. */
  multiple?: boolean;
  /**
   * The value must be a whole number in `min..max` (both inclusive; default 0 and
   * `Number.MAX_SAFE_INTEGER`): checked before `run`, so `--max abc` is a usage error.
   */
  integer?: { min?: number; max?: number };
  /**
   * The value must be a number (decimals allowed) in `min..max` (both inclusive): checked
   * before `run`, like {@link OptionSpec.integer}.
   */
  number?: { min?: number; max?: number };
}

/** What a command's `run` receives. */
export interface CommandContext {
  /** Option values by name (defaults and env applied). */
  values: Record<string, string | boolean | undefined>;
  /** Positional arguments after the command name. */
  positionals: string[];
  /** True with `--json` or `-o json`: print one JSON document on stdout and nothing else there. */
  json: boolean;
  /** True with `-o wide`: tables print every column in full (no truncated names or bodies). */
  wide: boolean;
  /** True with `--verbose`. */
  verbose: boolean;
  /** Output helpers bound to this run's streams. */
  out: Output;
}

/** Where a command writes; results go to stdout, diagnostics to stderr. */
export interface Output {
  /** Writes a line of human output (suppressed under `--json`). */
  line(text?: string): void;
  /** Writes the JSON result (only under `--json`). */
  json(value: unknown): void;
  /** Writes a diagnostic line to stderr. */
  note(text: string): void;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** A node of the command tree. */
export interface Command {
  name: string;
  summary: string;
  /** Other names the command answers to (`rm` for `delete`); shown in its parent's help. */
  aliases?: string[];
  /** Positional synopsis for `--help`, e.g. `<service>.<method> <json>`. */
  args?: string;
  /** More text for `--help`. */
  description?: string;
  options?: Record<string, OptionSpec>;
  /** Example invocations for `--help`. */
  examples?: string[];
  subcommands?: Command[];
  /**
   * For a lazily loaded command: loads its full definition (see {@link lazyCommand}), so
   * `peak --version` or `peak mq ...` load only the modules they need.
   */
  load?: () => Promise<Command>;
  /**
   * A list that changes: the command takes `--watch` and `--interval` (see watch.ts) and
   * the CLI reruns it until Ctrl-C.
   */
  watch?: boolean;
  /** Runs the command; resolves to an exit code (default 0). */
  run?: (ctx: CommandContext) => Promise<number | undefined> | number | undefined;
}

/** Options every command accepts. */
export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  json: { type: 'boolean', description: 'print machine-readable JSON on stdout' },
  output: {
    type: 'string',
    short: 'o',
    valueName: 'FORMAT',
    description:
      'text (default), json (the same as --json), yaml (the same document as YAML) or wide (nothing truncated)',
  },
  verbose: { type: 'boolean', description: 'print stack traces and debug detail on errors' },
  help: { type: 'boolean', short: 'h', description: 'show help for this command' },
};

/** The result of resolving argv against the tree. */
export interface Resolved {
  /** The path of command names from the root, e.g. `['peak', 'server']`. */
  path: string[];
  command: Command;
  ctx: Omit<CommandContext, 'out'>;
  help: boolean;
}

function optionName(name: string): string {
  return `--${name}`;
}

/**
 * A command whose module loads only when it is chosen (or listed in a parent's help): the
 * stub carries the name; its summary, options and subcommands come with the module.
 */
export function lazyCommand(name: string, load: () => Promise<Command>): Command {
  let loaded: Promise<Command> | undefined;
  return {
    name,
    summary: '',
    load: () => {
      loaded ??= load().then(
        (c) => {
          if (c.name !== name) throw new Error(`lazy command '${name}' loaded '${c.name}'`);
          return c;
        },
        (err: unknown) => {
          throw missingDependency(name, err) ?? err;
        },
      );
      return loaded;
    },
  };
}

/**
 * The error for a command whose module needs an optional dependency that is not installed
 * (`npm install peakware --omit=optional` leaves out the control plane's packages), naming
 * the package; undefined for any other load failure.
 */
function missingDependency(name: string, err: unknown): MissingDependencyError | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const pkg =
    err instanceof Error ? /Cannot find package '([^']+)'/.exec(err.message)?.[1] : undefined;
  if (code !== 'ERR_MODULE_NOT_FOUND' || pkg === undefined) return undefined;
  return new MissingDependencyError(
    `'peak ${name}' needs the package '${pkg}', an optional dependency of peakware that is not installed: run 'npm install ${pkg}' (or install peakware without --omit=optional)`,
    { cause: err, details: { package: pkg, command: name } },
  );
}

/** The full definition of `command` (loads a lazy one). */
export async function loaded(command: Command): Promise<Command> {
  return command.load === undefined ? command : command.load();
}

/** `command` with every lazy subcommand loaded (for help text that lists their summaries). */
export async function withSubcommandsLoaded(command: Command): Promise<Command> {
  if (command.subcommands === undefined) return command;
  const subcommands = await Promise.all(
    command.subcommands.map((c) =>
      loaded(c).catch((err: unknown) => {
        // Help still lists a command whose optional dependency is missing, and says so.
        if (!(err instanceof MissingDependencyError)) throw err;
        return { name: c.name, summary: `(needs the package '${err.details.package}')` };
      }),
    ),
  );
  return { ...command, subcommands };
}

/** Walks argv down the tree and parses the rest with the chosen command's options. */
export async function resolve(
  root: Command,
  argv: string[],
  env: NodeJS.ProcessEnv,
): Promise<Resolved> {
  const path = [root.name];
  let command = root;
  let i = 0;
  while (command.subcommands !== undefined && i < argv.length) {
    const word = argv[i]!;
    if (word.startsWith('-')) break;
    const found = command.subcommands.find((c) => c.name === word || c.aliases?.includes(word));
    if (found === undefined) {
      const names = command.subcommands.map((c) => c.name).join(', ');
      throw new UsageError(
        `unknown command '${[...path, word].join(' ')}'; '${path.join(' ')}' has: ${names}. See '${path.join(' ')} --help'`,
        { details: { usage: usageLine(path, command) } },
      );
    }
    command = await loaded(found);
    path.push(found.name);
    i++;
  }
  const specs = optionSpecs(command);
  const parseOptions: Record<
    string,
    { type: 'string' | 'boolean'; short?: string; multiple?: boolean }
  > = {};
  for (const [name, spec] of Object.entries(specs)) {
    parseOptions[name] = {
      type: spec.type,
      ...(spec.short ? { short: spec.short } : {}),
      ...(spec.multiple === true ? { multiple: true } : {}),
    };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv.slice(i),
      options: parseOptions,
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    const message = (err as Error).message.replace(/\. To specify a positional.*$/s, '');
    throw new UsageError(`${message} (for '${path.join(' ')}'); see '${path.join(' ')} --help'`, {
      cause: err,
      details: { usage: usageLine(path, command) },
    });
  }
  const values: Record<string, string | boolean | undefined> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const given = parsed.values[name];
    if (given !== undefined) {
      values[name] = Array.isArray(given) ? given.join(',') : (given as string | boolean);
      continue;
    }
    const fromEnv = spec.env === undefined ? undefined : env[spec.env];
    if (fromEnv !== undefined && fromEnv !== '') {
      values[name] = spec.type === 'boolean' ? fromEnv !== '0' && fromEnv !== 'false' : fromEnv;
      continue;
    }
    values[name] = spec.default;
  }
  const help = values.help === true;
  if (!help) checkNumbers(specs, values, path, command);
  if (
    !help &&
    values.output !== undefined &&
    !['text', 'json', 'yaml', 'wide'].includes(String(values.output))
  ) {
    throw new UsageError(
      `-o/--output must be text, json, yaml or wide, got '${String(values.output)}' (for '${path.join(' ')}')`,
      { details: { input: '--output', usage: usageLine(path, command) } },
    );
  }
  if (!help && command.run === undefined && command.subcommands !== undefined) {
    if (parsed.positionals.length === 0) {
      return {
        path,
        command,
        help: true,
        ctx: { values, positionals: [], json: false, wide: false, verbose: false },
      };
    }
  }
  return {
    path,
    command,
    help,
    ctx: {
      values,
      positionals: parsed.positionals,
      json: values.json === true || values.output === 'json' || values.output === 'yaml',
      wide: values.output === 'wide',
      verbose: values.verbose === true,
    },
  };
}

/**
 * Fails with a UsageError naming the option and the text given when an `integer` or
 * `number` option holds anything else.
 */
function checkNumbers(
  specs: Record<string, OptionSpec>,
  values: Record<string, string | boolean | undefined>,
  path: string[],
  command: Command,
): void {
  for (const [name, spec] of Object.entries(specs)) {
    const value = values[name];
    if (typeof value !== 'string') continue;
    const range =
      spec.integer !== undefined
        ? { min: spec.integer.min ?? 0, max: spec.integer.max, integer: true }
        : spec.number;
    if (range === undefined) continue;
    const problem = numberProblem(value, range);
    if (problem !== undefined) {
      throw new UsageError(
        `${optionName(name)} ${problem}, got '${value}' (for '${path.join(' ')}')`,
        { details: { input: optionName(name), usage: usageLine(path, command) } },
      );
    }
  }
}

/** Every option `command` takes: its own, `--watch` ones when it is a watch, the global ones. */
export function optionSpecs(command: Command): Record<string, OptionSpec> {
  return {
    ...GLOBAL_OPTIONS,
    ...(command.watch === true ? WATCH_OPTIONS : {}),
    ...command.options,
  };
}

/** The `Usage: ...` line of a command (in its help, and after a usage error). */
export function usageLine(path: string[], command: Command): string {
  const usage = [path.join(' ')];
  if (command.subcommands !== undefined) usage.push('<command>');
  if (command.args !== undefined) usage.push(command.args);
  usage.push('[options]');
  return `Usage: ${usage.join(' ')}`;
}

/** The `--help` text of a command. */
export function helpText(path: string[], command: Command): string {
  const lines: string[] = [];
  lines.push(`${command.summary}`, '', usageLine(path, command));
  if (command.description !== undefined) lines.push('', command.description);
  if (command.subcommands !== undefined) {
    lines.push('', 'Commands:');
    const names = command.subcommands.map((c) =>
      c.aliases === undefined ? c.name : `${c.name} (${c.aliases.join(', ')})`,
    );
    const width = Math.max(...names.map((n) => n.length));
    command.subcommands.forEach((sub, i) => {
      lines.push(`  ${names[i]!.padEnd(width)}  ${sub.summary}`);
    });
  }
  const specs = Object.entries({
    ...command.options,
    ...(command.watch === true ? WATCH_OPTIONS : {}),
    ...GLOBAL_OPTIONS,
  });
  const labels = specs.map(([name, spec]) => {
    const short = spec.short ? `-${spec.short}, ` : '    ';
    const value = spec.type === 'string' ? ` <${spec.valueName ?? 'value'}>` : '';
    return `${short}${optionName(name)}${value}`;
  });
  const width = Math.max(...labels.map((l) => l.length));
  lines.push('', 'Options:');
  specs.forEach(([, spec], index) => {
    const extra: string[] = [];
    if (spec.default !== undefined && spec.default !== false)
      extra.push(`default: ${spec.default}`);
    if (spec.env !== undefined) extra.push(`env: ${spec.env}`);
    const suffix = extra.length > 0 ? ` (${extra.join('; ')})` : '';
    lines.push(`  ${labels[index]!.padEnd(width)}  ${spec.description}${suffix}`);
  });
  if (command.examples !== undefined && command.examples.length > 0) {
    lines.push('', 'Examples:', ...command.examples.map((e) => `  ${e}`));
  }
  if (command.subcommands !== undefined) {
    lines.push('', `Run '${path.join(' ')} <command> --help' for a command's options.`);
  }
  return `${lines.join('\n')}\n`;
}
