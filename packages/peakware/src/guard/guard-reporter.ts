/**
 * Pushes a guard's per-second metrics and its rules in force to the control plane
 * (`POST /api/v1/guard/report`), so `peak guard rules` and `peak guard stats` (and later the
 * console) can show them. Failures are logged and the metrics kept (bounded) for the next
 * push; a control-plane outage never touches the guarded calls.
 */

import os from 'node:os';
import {
  ControlPlaneClient,
  type ControlPlaneOptions,
  serversOf,
} from '../core/control-plane-client.js';
import { errorMessage } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { parseServers } from '../core/server-list.js';
import type { Guard, MetricSnapshot } from './guard.js';

const MAX_PER_PUSH = 2000;

/** Options for {@link GuardReporter}. */
export interface GuardReporterOptions extends ControlPlaneOptions {
  /** The service (app) name. */
  app: string;
  /** This instance's id. Default `<hostname>-<pid>`. */
  instance?: string;
  /** How often to push, ms. Default 1000. */
  intervalMs?: number;
  /** Request timeout, ms. Default 2000. */
  timeoutMs?: number;
  /** Most snapshots kept while the server is unreachable. Default 10 000. */
  maxBuffered?: number;
  /** Where warnings go. Default: none. */
  logger?: Logger;
}

/** Reports a guard's metrics and rules to the control plane. */
export class GuardReporter {
  readonly #guard: Guard;
  readonly #http: ControlPlaneClient;
  readonly #app: string;
  readonly #instance: string;
  readonly #intervalMs: number;
  readonly #maxBuffered: number;
  readonly #logger: Logger;
  #buffer: MetricSnapshot[] = [];
  #timer: NodeJS.Timeout | undefined;
  #pushing: Promise<void> | undefined;
  readonly #onMetrics = (snapshots: MetricSnapshot[]) => {
    this.#buffer.push(...snapshots);
    if (this.#buffer.length > this.#maxBuffered)
      this.#buffer.splice(0, this.#buffer.length - this.#maxBuffered);
  };

  constructor(guard: Guard, options: GuardReporterOptions) {
    this.#guard = guard;
    const servers = parseServers(serversOf(options, 'GuardReporter'));
    // One try per node: a failed push keeps its metrics for the next one.
    this.#http = new ControlPlaneClient({
      servers,
      ...(options.token === undefined ? {} : { token: options.token }),
      timeoutMs: options.timeoutMs ?? 2000,
      retries: servers.length - 1,
    });
    this.#app = options.app;
    this.#instance = options.instance ?? `${os.hostname()}-${process.pid}`;
    this.#intervalMs = options.intervalMs ?? 1000;
    this.#maxBuffered = options.maxBuffered ?? 10_000;
    this.#logger = options.logger ?? silentLogger();
  }

  /** Starts listening for metrics and pushing them. */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#guard.on('metrics', this.#onMetrics);
    this.#timer = setInterval(() => void this.flush(), this.#intervalMs);
    this.#timer.unref();
  }

  /** Pushes what is buffered now (and the rules); resolves when done, never rejects. */
  flush(): Promise<void> {
    this.#pushing ??= this.#push().finally(() => {
      this.#pushing = undefined;
    });
    return this.#pushing;
  }

  async #push(): Promise<void> {
    // At most MAX_PER_PUSH snapshots per request keeps bodies well under the server's 1 MiB
    // limit; the rest go with the next push.
    const metrics = this.#buffer.slice(0, MAX_PER_PUSH);
    this.#buffer = this.#buffer.slice(MAX_PER_PUSH);
    try {
      await this.#http.post('/api/v1/guard/report', {
        app: this.#app,
        instance: this.#instance,
        rules: this.#guard.rawRules(),
        metrics,
      });
    } catch (err) {
      this.#buffer = metrics.concat(this.#buffer).slice(-this.#maxBuffered);
      this.#logger.warn(
        { err: errorMessage(err) },
        'guard: could not report metrics to the control plane',
      );
    }
  }

  /** Stops pushing (after one last push). */
  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#guard.off('metrics', this.#onMetrics);
    await this.flush();
  }
}
