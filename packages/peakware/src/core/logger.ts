/**
 * Structured logging for library code: pino, JSON lines by default, or a compact
 * human-readable line per record for terminals. Library code takes a `Logger` in its
 * options and never writes to the console.
 *
 * pino is an optional dependency, loaded on first use: a service that logs nothing (the
 * default) runs without it, so `npm install peakware --omit=optional` stays light.
 */
import { createRequire } from 'node:module';
import { Writable } from 'node:stream';
import type * as Pino from 'pino';
import { InvalidArgumentError, MissingDependencyError } from './errors.js';

/** One log method, in pino's two call forms: fields then a message, or a message alone. */
export interface LogFn {
  (fields: object, message?: string, ...args: unknown[]): void;
  (message: string, ...args: unknown[]): void;
}

/**
 * The logger library code takes. A pino logger is one (pass your app's); so is any object
 * with these methods. Peakware's own type, so the SDK's types do not need pino installed.
 */
export interface Logger {
  /** The minimum level written: trace, debug, info, warn, error, fatal or silent. */
  level: string;
  /** Writes at level fatal. */
  fatal: LogFn;
  /** Writes at level error. */
  error: LogFn;
  /** Writes at level warn. */
  warn: LogFn;
  /** Writes at level info. */
  info: LogFn;
  /** Writes at level debug. */
  debug: LogFn;
  /** Writes at level trace. */
  trace: LogFn;
  /** A logger that adds `bindings` to every line. */
  child(bindings: Record<string, unknown>): Logger;
}

type PinoModule = typeof Pino;

let pinoModule: PinoModule | undefined;

/** pino, required on first use (it is CommonJS, so synchronously), or a clear error. */
function loadPino(): PinoModule {
  if (pinoModule !== undefined) return pinoModule;
  try {
    pinoModule = createRequire(import.meta.url)('pino') as PinoModule;
  } catch (err) {
    throw new MissingDependencyError(
      "logging needs the package 'pino', an optional dependency of peakware that is not installed: run 'npm install pino'",
      { cause: err, details: { package: 'pino' } },
    );
  }
  return pinoModule;
}

const discard: LogFn = () => {};

/** A logger that writes nothing and needs no package. */
function noopLogger(): Logger {
  const logger: Logger = {
    level: 'silent',
    fatal: discard,
    error: discard,
    warn: discard,
    info: discard,
    debug: discard,
    trace: discard,
    child: () => logger,
  };
  return logger;
}

/** Options for {@link createLogger}. */
export interface CreateLoggerOptions {
  /** Minimum level: trace, debug, info, warn, error, fatal or silent. Default `info`. */
  level?: string;
  /** `json` (one JSON object a line) or `pretty` (one readable line). Default `json`. */
  format?: 'json' | 'pretty';
  /** The logger's name, shown on every line. */
  name?: string;
  /** Where lines go. Default standard error (standard output is for command results). */
  destination?: NodeJS.WritableStream;
}

const LEVEL_NAMES: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO ',
  40: 'WARN ',
  50: 'ERROR',
  60: 'FATAL',
};

const OMIT = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'name']);

/** Turns one pino JSON line into `HH:MM:SS.mmm LEVEL name: message key=value ...`. */
export function formatPrettyLine(line: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const time = new Date(typeof record.time === 'number' ? record.time : Date.now());
  const clock = time.toISOString().slice(11, 23);
  const level = LEVEL_NAMES[record.level as number] ?? String(record.level);
  const name = typeof record.name === 'string' ? `${record.name}: ` : '';
  const extras: string[] = [];
  for (const [key, value] of Object.entries(record)) {
    if (OMIT.has(key)) continue;
    if (key === 'err' && value !== null && typeof value === 'object') {
      const err = value as { message?: string; code?: string };
      extras.push(`err=${JSON.stringify(err.code ? `${err.code}: ${err.message}` : err.message)}`);
      continue;
    }
    extras.push(`${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
  }
  return `${clock} ${level} ${name}${String(record.msg ?? '')}${extras.length > 0 ? `  ${extras.join(' ')}` : ''}\n`;
}

/** A pino logger writing JSON or pretty lines to `destination` (default stderr); needs `pino`. */
export function createLogger(options: CreateLoggerOptions = {}): Logger {
  const { pino } = loadPino();
  const destination = options.destination ?? process.stderr;
  const pinoOptions: Pino.LoggerOptions = {
    level: options.level ?? 'info',
    base: { pid: process.pid },
    // Secrets never reach a log line, whatever a caller passes in.
    redact: {
      paths: [
        'password',
        'token',
        'adminToken',
        '*.password',
        '*.token',
        'req.headers.authorization',
        'headers.authorization',
      ],
      censor: '[redacted]',
    },
    ...(options.name === undefined ? {} : { name: options.name }),
  };
  if (options.format === 'pretty') {
    const pretty = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        destination.write(formatPrettyLine(chunk.toString('utf8')));
        callback();
      },
    });
    return pino(pinoOptions, pretty);
  }
  return pino(pinoOptions, destination as Pino.DestinationStream);
}

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/** The logger PEAK_LOG_LEVEL asked for, made once per process and level. */
let fromEnv: { level: string; logger: Logger } | undefined;

/**
 * The default for library code given no logger: it discards everything, unless the
 * environment variable `PEAK_LOG_LEVEL` (trace, debug, info, warn, error, fatal or silent)
 * turns SDK logging on: then one logger per process named `peakware`, JSON lines on
 * standard error (readable lines when standard error is a terminal). A logger passed in
 * the options always wins. Silent, it needs no package; logging on needs `pino`.
 */
export function silentLogger(env: NodeJS.ProcessEnv = process.env): Logger {
  const level = env.PEAK_LOG_LEVEL?.trim().toLowerCase();
  if (level === undefined || level === '' || level === 'silent') return noopLogger();
  if (!LEVELS.includes(level)) {
    throw new InvalidArgumentError(
      `PEAK_LOG_LEVEL must be one of ${LEVELS.join(', ')}; got '${env.PEAK_LOG_LEVEL}'`,
      { details: { input: 'PEAK_LOG_LEVEL' } },
    );
  }
  if (fromEnv?.level !== level) {
    fromEnv = {
      level,
      logger: createLogger({
        level,
        name: 'peakware',
        format: process.stderr.isTTY ? 'pretty' : 'json',
      }),
    };
  }
  return fromEnv.logger;
}
