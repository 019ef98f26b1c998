/**
 * `--watch` for commands whose list changes (`peak rpc ls`, `peak mq topics list`, ...):
 * the command runs again every `--interval` seconds, on a cleared screen on a terminal (a
 * pipe gets plain frames, each under a header line; `--json` one document per frame),
 * until Ctrl-C or SIGTERM, which end the watch with exit code 0.
 */
import type { OptionSpec, Output } from './command.js';

/** The options a command marked `watch` accepts. */
export const WATCH_OPTIONS: Record<string, OptionSpec> = {
  watch: {
    type: 'boolean',
    short: 'w',
    description: 'redraw every --interval seconds until Ctrl-C (which exits 0)',
  },
  interval: {
    type: 'string',
    valueName: 'S',
    description: 'seconds between redraws with --watch',
    default: '2',
    number: { min: 0.5, max: 3600 },
  },
};

/**
 * Runs `once` every `intervalMs` until `stop` aborts; resolves to 0, or to the first
 * non-zero exit code a run returns (a run that throws ends the watch with its error).
 */
export async function watchCommand(
  once: () => Promise<number | undefined> | number | undefined,
  opts: { out: Output; json: boolean; title: string; intervalMs: number; stop: AbortSignal },
): Promise<number> {
  const tty = (opts.out.stdout as { isTTY?: boolean }).isTTY === true;
  while (!opts.stop.aborted) {
    if (!opts.json) {
      if (tty) opts.out.stdout.write('\x1b[2J\x1b[H');
      opts.out.line(
        `Every ${opts.intervalMs / 1000} s: ${opts.title}   ${new Date().toISOString()}`,
      );
      opts.out.line();
    }
    const code = (await once()) ?? 0;
    if (code !== 0) return code;
    if (!tty && !opts.json) opts.out.line();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, opts.intervalMs);
      opts.stop.addEventListener(
        'abort',
        () => {
          clearTimeout(timer);
          resolve();
        },
        { once: true },
      );
    });
  }
  return 0;
}

/**
 * An AbortSignal that aborts on the first SIGINT or SIGTERM (a second one exits at once);
 * `release` removes the handlers.
 */
export function stopOnSignals(): { signal: AbortSignal; release: () => void } {
  const ac = new AbortController();
  const onSignal = () => {
    if (ac.signal.aborted) process.exit(0);
    ac.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: ac.signal,
    release: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
