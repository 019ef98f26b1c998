/**
 * Pushes a service's per-second resource metrics to the control plane
 * (`POST /api/v1/telemetry/metrics`), where `peak top` reads them live. Two sources:
 *
 * - {@link MetricsPusher.record} (a {@link MetricSink}): guard's per-second `metrics`
 *   events, `guard.on('metrics', (s) => pusher.record(s))`;
 * - {@link MetricsPusher.watchWindow}: a core `SlidingWindow` the service feeds itself;
 *   its completed buckets are read every 200 ms (so none is missed) with the window's RT
 *   p50/p99 attached to the newest one.
 *
 * Each second carries its RT histogram (`rtHist`, sparse pairs) when the source keeps one:
 * the control plane adds them over instances and seconds, so the p50/p99 it answers are
 * percentiles of every call, not the highest instance's.
 *
 * Nothing here waits on the network from the caller's side: `record` appends to a bounded
 * buffer (`maxBuffered`; past it the oldest are dropped and counted), one push at a time
 * leaves every `intervalMs` with at most `maxPerPush` records, and a failed push (the
 * control plane down or slow past `timeoutMs`) drops its records and counts them.
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
import type { SlidingWindow } from '../core/sliding-window.js';
import type { MetricSink, SecondMetric } from './service-metrics.js';

const METRICS_ROUTE = '/api/v1/telemetry/metrics';

/** One pushed record: a {@link SecondMetric} (a second, or one bucket of a window) plus RT percentiles. */
export interface PushedMetric extends SecondMetric {
  /** RT p50 over the window when read, ms. */
  rtP50?: number;
  /** RT p99 over the window when read, ms. */
  rtP99?: number;
}

/** Options for {@link MetricsPusher}. */
export interface MetricsPusherOptions extends ControlPlaneOptions {
  /** The service (application) name. */
  service: string;
  /** This instance's id. Default `<hostname>-<pid>`. */
  instance?: string;
  /** How often a batch leaves, ms. Default 1000. */
  intervalMs?: number;
  /** Most records waiting to be sent; older ones are dropped past it. Default 10 000. */
  maxBuffered?: number;
  /** Most records in one push. Default 2000. */
  maxPerPush?: number;
  /** Longest one push may take, ms. Default 2000. */
  timeoutMs?: number;
  logger?: Logger;
}

/** Counters of a {@link MetricsPusher}. */
export interface MetricsPusherStats {
  /** Records the control plane accepted. */
  sent: number;
  /** Records dropped because the buffer was full. */
  droppedFull: number;
  /** Records dropped because their push failed. */
  droppedPush: number;
  /** Pushes that failed. */
  failedPushes: number;
  /** Records waiting now. */
  buffered: number;
}

interface Watched {
  window: SlidingWindow;
  concurrency: (() => number) | undefined;
  shipped: number;
}

/** Batches per-second metrics to the control plane; never blocks the application. */
export class MetricsPusher implements MetricSink {
  readonly #http: ControlPlaneClient;
  readonly #service: string;
  readonly #instance: string;
  readonly #maxBuffered: number;
  readonly #maxPerPush: number;
  readonly #logger: Logger;
  readonly #watched = new Map<string, Watched>();
  #buffer: PushedMetric[] = [];
  #pushing: Promise<void> | undefined;
  readonly #pushTimer: NodeJS.Timeout;
  readonly #sampleTimer: NodeJS.Timeout;
  #closed = false;
  #warned = false;
  readonly #stats = { sent: 0, droppedFull: 0, droppedPush: 0, failedPushes: 0 };

  constructor(options: MetricsPusherOptions) {
    const servers = parseServers(serversOf(options, 'MetricsPusher'));
    // One try per node: a failed push drops (and counts) its records.
    this.#http = new ControlPlaneClient({
      servers,
      ...(options.token === undefined ? {} : { token: options.token }),
      timeoutMs: options.timeoutMs ?? 2000,
      retries: servers.length - 1,
    });
    this.#service = options.service;
    this.#instance = options.instance ?? `${os.hostname()}-${process.pid}`;
    this.#maxBuffered = Math.max(1, options.maxBuffered ?? 10_000);
    this.#maxPerPush = Math.max(1, options.maxPerPush ?? 2000);
    this.#logger = options.logger ?? silentLogger();
    this.#pushTimer = setInterval(() => {
      void this.flush();
    }, options.intervalMs ?? 1000);
    this.#pushTimer.unref();
    this.#sampleTimer = setInterval(() => this.#sample(), 200);
    this.#sampleTimer.unref();
  }

  /** Queues per-second metrics (guard's `metrics` event); O(n), never waits. */
  record(metrics: readonly PushedMetric[]): void {
    if (this.#closed) return;
    for (const m of metrics) this.#buffer.push(m);
    const over = this.#buffer.length - this.#maxBuffered;
    if (over > 0) {
      this.#buffer.splice(0, over);
      this.#stats.droppedFull += over;
    }
  }

  /**
   * Ships `window`'s completed buckets under `resource` (one record per bucket, stamped
   * with its start); `concurrency`, if given, is read at each sample.
   */
  watchWindow(resource: string, window: SlidingWindow, concurrency?: () => number): this {
    this.#watched.set(resource, { window, concurrency, shipped: Date.now() - 1 });
    return this;
  }

  #sample(): void {
    for (const [resource, w] of this.#watched) {
      const fresh = w.window.snapshots(true).filter((b) => b.start > w.shipped);
      if (fresh.length === 0) continue;
      w.shipped = fresh[fresh.length - 1]!.start;
      const p50 = w.window.percentile(0.5);
      const p99 = w.window.percentile(0.99);
      const concurrency = w.concurrency?.() ?? 0;
      this.record(
        fresh
          .filter((b) => b.pass + b.block + b.success + b.error > 0)
          .map((b, i, all) => {
            const done = b.success + b.error;
            const rtHist = done === 0 ? undefined : w.window.bucketHistogram(b.start);
            return {
              resource,
              second: b.start,
              pass: b.pass,
              block: b.block,
              success: b.success,
              error: b.error,
              rtAvg: done === 0 ? 0 : b.rtSum / done,
              concurrency,
              ...(rtHist === undefined || rtHist.length === 0 ? {} : { rtHist }),
              ...(i === all.length - 1 && Number.isFinite(p50) ? { rtP50: p50 } : {}),
              ...(i === all.length - 1 && Number.isFinite(p99) ? { rtP99: p99 } : {}),
            };
          }),
      );
    }
  }

  /** Sends what is buffered now (one push at a time); resolves when that push settled. */
  flush(): Promise<void> {
    if (this.#pushing !== undefined) return this.#pushing;
    if (this.#buffer.length === 0) return Promise.resolve();
    const batch = this.#buffer.splice(0, this.#maxPerPush);
    this.#pushing = this.#push(batch).finally(() => {
      this.#pushing = undefined;
    });
    return this.#pushing;
  }

  async #push(batch: PushedMetric[]): Promise<void> {
    try {
      await this.#http.post(METRICS_ROUTE, {
        service: this.#service,
        instance: this.#instance,
        metrics: batch,
      });
      this.#stats.sent += batch.length;
      this.#warned = false;
    } catch (err) {
      this.#stats.failedPushes++;
      this.#stats.droppedPush += batch.length;
      if (!this.#warned) {
        // One warning per outage, not one per second.
        this.#warned = true;
        this.#logger.warn(
          { url: this.#http.url(METRICS_ROUTE), err: errorMessage(err), dropped: batch.length },
          'pushing metrics to the control plane failed; dropping (and counting) until it answers',
        );
      }
    }
  }

  /** The pusher's counters. */
  stats(): MetricsPusherStats {
    return { ...this.#stats, buffered: this.#buffer.length };
  }

  /** Stops the timers after one last sample and push (bounded by `timeoutMs`). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#sample();
    this.#closed = true;
    clearInterval(this.#pushTimer);
    clearInterval(this.#sampleTimer);
    await this.#pushing;
    await this.flush();
  }
}
