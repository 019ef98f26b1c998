/**
 * Per-resource metrics of one service, in Prometheus form: counters and per-second gauges
 * fed by guard's per-second `metrics` events (a {@link MetricSink}) and gauges read live
 * from core `SlidingWindow`s. {@link serveMetrics} exposes them on `/metrics` over node:http.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SlidingWindow } from '../core/sliding-window.js';
import {
  formatPrometheus,
  type MetricFamily,
  PROMETHEUS_CONTENT_TYPE,
  processMetrics,
} from './prometheus-format.js';

/** One resource's stats for one second (the shape guard's `metrics` event emits). */
export interface SecondMetric {
  resource: string;
  /** Start of the second, epoch ms. */
  second: number;
  pass: number;
  block: number;
  success: number;
  error: number;
  /** Mean RT, ms. */
  rtAvg: number;
  /** Calls in flight. */
  concurrency: number;
  /**
   * RT histogram of the calls completed in that second, as core's sparse
   * `[bucket index, count, …]` pairs; the control plane adds them over instances and
   * seconds for true percentiles.
   */
  rtHist?: readonly number[];
}

/** Where per-second metrics go (this registry, the control plane, a test). */
export interface MetricSink {
  /** Accepts one batch of per-second metrics; must not block. */
  record(metrics: readonly SecondMetric[]): void;
}

interface ResourceTotals {
  pass: number;
  block: number;
  success: number;
  error: number;
  last: SecondMetric;
}

/** Keeps totals and the latest second per resource; renders Prometheus families. */
export class ServiceMetrics implements MetricSink {
  readonly #service: string;
  readonly #resources = new Map<string, ResourceTotals>();
  readonly #windows = new Map<string, SlidingWindow>();
  readonly #maxResources: number;

  /** `service` labels every sample; at most `maxResources` resources are kept (default 2000). */
  constructor(options: { service: string; maxResources?: number }) {
    this.#service = options.service;
    this.#maxResources = options.maxResources ?? 2000;
  }

  record(metrics: readonly SecondMetric[]): void {
    for (const m of metrics) {
      let t = this.#resources.get(m.resource);
      if (t === undefined) {
        if (this.#resources.size >= this.#maxResources) continue;
        t = { pass: 0, block: 0, success: 0, error: 0, last: m };
        this.#resources.set(m.resource, t);
      }
      t.pass += m.pass;
      t.block += m.block;
      t.success += m.success;
      t.error += m.error;
      t.last = m;
    }
  }

  /** Reads `window` live at every scrape (QPS, RT avg/p50/p99, errors) under `resource`. */
  watchWindow(resource: string, window: SlidingWindow): this {
    this.#windows.set(resource, window);
    return this;
  }

  /** The families to expose (without process figures). */
  families(): MetricFamily[] {
    const s = this.#service;
    const counter = (name: string, help: string, pick: (t: ResourceTotals) => number) => ({
      name,
      help,
      type: 'counter' as const,
      samples: [...this.#resources].map(([resource, t]) => ({
        labels: { service: s, resource },
        value: pick(t),
      })),
    });
    const gauge = (name: string, help: string, pick: (t: ResourceTotals) => number) => ({
      name,
      help,
      type: 'gauge' as const,
      samples: [...this.#resources].map(([resource, t]) => ({
        labels: { service: s, resource },
        value: pick(t),
      })),
    });
    const out: MetricFamily[] = [];
    if (this.#resources.size > 0) {
      out.push(
        counter('peak_resource_pass_total', 'Calls let through, per resource.', (t) => t.pass),
        counter('peak_resource_block_total', 'Calls blocked by guard rules.', (t) => t.block),
        counter('peak_resource_success_total', 'Calls completed without error.', (t) => t.success),
        counter('peak_resource_error_total', 'Calls that failed.', (t) => t.error),
        gauge(
          'peak_resource_rt_avg_seconds',
          'Mean RT in the last reported second, seconds.',
          (t) => t.last.rtAvg / 1000,
        ),
        gauge(
          'peak_resource_concurrency',
          'Calls in flight at the last report.',
          (t) => t.last.concurrency,
        ),
      );
    }
    if (this.#windows.size > 0) {
      const live = (name: string, help: string, pick: (w: SlidingWindow) => number) => ({
        name,
        help,
        type: 'gauge' as const,
        samples: [...this.#windows].map(([resource, w]) => ({
          labels: { service: s, resource },
          value: pick(w),
        })),
      });
      out.push(
        live(
          'peak_window_qps',
          'Completed calls per second over the sliding window.',
          (w) => w.rate('success') + w.rate('error'),
        ),
        live('peak_window_error_qps', 'Failed calls per second over the sliding window.', (w) =>
          w.rate('error'),
        ),
        // Prometheus base units: seconds (promtool refuses abbreviated units such as _ms).
        live(
          'peak_window_rt_avg_seconds',
          'Mean RT over the sliding window, seconds.',
          (w) => w.rtAvg() / 1000,
        ),
        live(
          'peak_window_rt_p50_seconds',
          'RT p50 over the sliding window, seconds.',
          (w) => w.percentile(0.5) / 1000,
        ),
        live(
          'peak_window_rt_p99_seconds',
          'RT p99 over the sliding window, seconds.',
          (w) => w.percentile(0.99) / 1000,
        ),
      );
    }
    return out;
  }

  /** The whole exposition: process figures plus {@link families}. */
  render(): string {
    return formatPrometheus([...processMetrics(), ...this.families()]);
  }
}

/** A running /metrics endpoint. */
export interface MetricsEndpoint {
  /** `http://host:port/metrics`. */
  readonly url: string;
  /** Stops listening. */
  close(): Promise<void>;
}

/** Serves `metrics.render()` at `GET /metrics` on `port` (0 = any free port), loopback by default. */
export async function serveMetrics(
  metrics: Pick<ServiceMetrics, 'render'>,
  options: { port?: number; host?: string } = {},
): Promise<MetricsEndpoint> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics here\n');
      return;
    }
    let body: string;
    try {
      body = metrics.render();
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${String(err)}\n`);
      return;
    }
    res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE }).end(body);
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
