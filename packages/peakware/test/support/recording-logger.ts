/**
 * Test support: a logger that keeps every line in memory, so a test that fails can say what
 * the SDK saw (a connection marked unresponsive, a held registry list) in its message.
 */
import type { Logger } from '../../src/core/logger.js';

/** A {@link Logger} keeping its lines (`level message {fields}`) in `lines`. */
export interface RecordingLogger extends Logger {
  readonly lines: string[];
}

/** A logger recording every level from debug up; `limit` bounds the lines kept (the latest). */
export function recordingLogger(limit = 500): RecordingLogger {
  const lines: string[] = [];
  const at =
    (level: string, bindings: Record<string, unknown>) =>
    (first: object | string, message?: unknown) => {
      const fields = typeof first === 'string' ? bindings : { ...bindings, ...first };
      const text = typeof first === 'string' ? first : String(message ?? '');
      lines.push(
        `${new Date().toISOString()} ${level} ${text} ${JSON.stringify(fields, (_k, v: unknown) => (v instanceof Error ? v.message : v))}`,
      );
      if (lines.length > limit) lines.shift();
    };
  const make = (bindings: Record<string, unknown>): Logger => ({
    level: 'debug',
    fatal: at('fatal', bindings),
    error: at('error', bindings),
    warn: at('warn', bindings),
    info: at('info', bindings),
    debug: at('debug', bindings),
    trace: () => undefined,
    child: (more) => make({ ...bindings, ...more }),
  });
  return Object.assign(make({}), { lines });
}
