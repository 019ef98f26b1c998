/**
 * The shop's command line: its flags parsed with `node:util`'s parseArgs, `--help`/`-h`
 * answered with the usage, and a bad flag answered with one line plus the usage on stderr
 * and exit code 2 (parseArgs alone throws ERR_PARSE_ARGS_UNKNOWN_OPTION with a stack trace).
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';

/** One flag: parseArgs' spec plus the line `--help` shows for it. */
export interface ShopFlag {
  type: 'string' | 'boolean';
  default?: string | boolean;
  /** The placeholder of a string value in `--help`, e.g. `N`. */
  valueName?: string;
  description: string;
}

/** The parsed values: a flag with a default always has one. */
export type ShopValues<F extends Record<string, ShopFlag>> = {
  [K in keyof F]: (F[K]['type'] extends 'boolean' ? boolean : string) | FlagAbsent<F[K]>;
};
type FlagAbsent<F extends ShopFlag> = F extends { default: string | boolean } ? never : undefined;

const USAGE = 'usage: npm start -- [flags]   (or: node examples/shop/dist/main.js [flags])';

/** The `--help` text for `flags`. */
export function shopHelp(flags: Record<string, ShopFlag>): string {
  const all: Record<string, ShopFlag> = {
    ...flags,
    help: { type: 'boolean', description: 'print this help and exit' },
  };
  const labels = Object.entries(all).map(
    ([name, f]) => `--${name}${f.type === 'string' ? ` ${f.valueName ?? 'VALUE'}` : ''}`,
  );
  const width = Math.max(...labels.map((l) => l.length));
  const lines = Object.values(all).map((f, i) => {
    const shown = f.type === 'string' && f.default !== undefined ? ` (default ${f.default})` : '';
    return `  ${labels[i]!.padEnd(width)}  ${f.description}${shown}`;
  });
  return [
    'Peakware shop: the buy chain under a flash sale (control plane, gateway, services, PostgreSQL, Redis).',
    '',
    USAGE,
    '',
    'Flags:',
    ...lines,
    '',
    'Without --exit or --smoke the chain stays up after the report until Ctrl-C.',
    '',
  ].join('\n');
}

/**
 * Parses `args` (default: the process's) against `flags`. `--help` prints the help and
 * exits 0; an unknown flag, a missing value or a stray argument prints one line and the
 * usage on stderr and exits 2.
 */
export function parseShopArgs<F extends Record<string, ShopFlag>>(
  flags: F,
  args: string[] = process.argv.slice(2),
): { values: ShopValues<F> } {
  const options: NonNullable<ParseArgsConfig['options']> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const [name, f] of Object.entries(flags)) {
    options[name] = { type: f.type, ...(f.default === undefined ? {} : { default: f.default }) };
  }
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    values = parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    const message = (err as Error).message.replace(/\. To specify a positional.*$/s, '');
    shopUsageError(message);
  }
  if (values.help === true) {
    process.stdout.write(shopHelp(flags));
    process.exit(0);
  }
  return { values: values as ShopValues<F> };
}

/** Prints `shop: <message>` and the usage on stderr and exits 2 (a usage error). */
export function shopUsageError(message: string): never {
  process.stderr.write(`shop: ${message}\n${USAGE}; see --help\n`);
  process.exit(2);
}

/** What a number flag accepts: bounds (inclusive) and whether it must be whole. */
export interface ShopNumberRange {
  min?: number;
  max?: number;
  integer?: boolean;
}

/**
 * The number flag `--name`: `fallback` when absent, else its text as a number in `range`;
 * anything else is a usage error naming the text it was given (`got 'x'`, never `got NaN`).
 */
export function shopNumber(
  text: string | undefined,
  name: string,
  fallback: number,
  range: ShopNumberRange,
): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  const shaped = range.integer === true ? /^-?\d+$/.test(text.trim()) : text.trim() !== '';
  const min = range.min ?? Number.NEGATIVE_INFINITY;
  const max = range.max ?? Number.POSITIVE_INFINITY;
  if (shaped && Number.isFinite(n) && n >= min && n <= max) return n;
  const kind = range.integer === true ? 'an integer' : 'a number';
  const bounds = range.max === undefined ? `>= ${range.min ?? 0}` : `from ${min} to ${max}`;
  return shopUsageError(`--${name} must be ${kind} ${bounds}, got '${text}'`);
}
