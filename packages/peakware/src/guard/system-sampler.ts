/**
 * Samples what system protection reads about the process and the machine: process CPU
 * usage (process.cpuUsage over the interval, as a share of the machine's cores), mean
 * event-loop delay (perf_hooks monitorEventLoopDelay, Node's closest analogue to load) and
 * the 1-minute OS load average. Runs on an unref'd timer only while system rules need it.
 */
import os from 'node:os';
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';

/** The latest samples. */
export interface SystemSample {
  /** Process CPU usage, 0..1 of all cores, over the last interval. */
  cpuUsage: number;
  /** Mean event-loop delay over the last interval, ms. */
  eventLoopLagMs: number;
  /** 1-minute OS load average. */
  load: number;
}

/** Samples CPU, event-loop lag and load every `intervalMs`. */
export class SystemSampler {
  /** The latest values (zero until the first sample). */
  readonly sample: SystemSample = { cpuUsage: 0, eventLoopLagMs: 0, load: 0 };
  #timer: NodeJS.Timeout | undefined;
  #histogram: IntervalHistogram | undefined;
  #lastCpu = process.cpuUsage();
  #lastAt = performance.now();
  readonly #cores = Math.max(1, os.availableParallelism?.() ?? os.cpus().length);

  constructor(readonly intervalMs = 1000) {}

  /** True while sampling. */
  get running(): boolean {
    return this.#timer !== undefined;
  }

  /** Starts sampling (idempotent). */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#histogram = monitorEventLoopDelay({ resolution: 10 });
    this.#histogram.enable();
    this.#lastCpu = process.cpuUsage();
    this.#lastAt = performance.now();
    this.#timer = setInterval(() => this.#take(), this.intervalMs);
    this.#timer.unref();
  }

  /** Stops sampling; the last values are kept. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#histogram?.disable();
    this.#histogram = undefined;
  }

  #take(): void {
    const now = performance.now();
    const cpu = process.cpuUsage(this.#lastCpu);
    const elapsedUs = (now - this.#lastAt) * 1000;
    this.#lastCpu = process.cpuUsage();
    this.#lastAt = now;
    if (elapsedUs > 0) {
      this.sample.cpuUsage = Math.min(1, (cpu.user + cpu.system) / elapsedUs / this.#cores);
    }
    const h = this.#histogram;
    // An interval in which the delay monitor recorded nothing measured nothing (its timer
    // never ran): keep the last value rather than report a lag of 0.
    if (h !== undefined && h.count > 0) {
      const mean = h.mean;
      if (Number.isFinite(mean)) this.sample.eventLoopLagMs = mean / 1e6;
      h.reset();
    }
    this.sample.load = os.loadavg()[0] ?? 0;
  }
}
