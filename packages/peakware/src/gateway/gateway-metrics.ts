/**
 * Every call through the gateway counted per API and app: a sliding window per pair (calls,
 * refusals, errors, RT percentiles) pushed to the control plane's telemetry as resource
 * `gw <api> <app>` (so `peak top` shows it), and totals by outcome on the gateway's
 * `/metrics` as `peak_gateway_requests_total{api,app,status}`.
 */
import { SlidingWindow } from '../core/sliding-window.js';
import type { MetricFamily } from '../telemetry/prometheus-format.js';

interface Pair {
  api: string;
  app: string;
  window: SlidingWindow;
  /** Totals by HTTP status. */
  byStatus: Map<number, number>;
  rtSum: number;
  count: number;
}

/** Per-API, per-app figures of one gateway. */
export class GatewayMetrics {
  readonly #pairs = new Map<string, Pair>();
  readonly #maxPairs: number;
  readonly #onNew: (resource: string, window: SlidingWindow) => void;

  /** `onNew` is told of each new pair's window (to push it); at most `maxPairs` are kept. */
  constructor(onNew: (resource: string, window: SlidingWindow) => void, maxPairs = 5000) {
    this.#onNew = onNew;
    this.#maxPairs = maxPairs;
  }

  /** Records one answered call. */
  record(api: string, app: string, status: number, rtMs: number): void {
    const k = `${api}\n${app}`;
    let p = this.#pairs.get(k);
    if (p === undefined) {
      if (this.#pairs.size >= this.#maxPairs) return;
      p = {
        api,
        app,
        window: new SlidingWindow({ intervalMs: 1000, buckets: 2 }),
        byStatus: new Map(),
        rtSum: 0,
        count: 0,
      };
      this.#pairs.set(k, p);
      this.#onNew(`gw ${api} ${app || '-'}`, p.window);
    }
    if (status === 429) p.window.addBlock();
    else {
      p.window.addPass();
      p.window.addComplete(rtMs, status >= 500);
    }
    p.byStatus.set(status, (p.byStatus.get(status) ?? 0) + 1);
    p.rtSum += rtMs;
    p.count++;
  }

  /** Calls recorded for one pair (tests, the CLI). */
  count(api: string, app: string): number {
    return this.#pairs.get(`${api}\n${app}`)?.count ?? 0;
  }

  /** The Prometheus families. */
  families(): MetricFamily[] {
    const requests: MetricFamily = {
      name: 'peak_gateway_requests',
      help: 'Calls answered by the gateway, per API, app and HTTP status.',
      type: 'counter',
      samples: [],
    };
    const rt: MetricFamily = {
      name: 'peak_gateway_request_seconds',
      help: 'Time the gateway took to answer, per API and app (sum and count).',
      type: 'summary',
      samples: [],
    };
    for (const p of this.#pairs.values()) {
      for (const [status, n] of p.byStatus)
        requests.samples.push({
          suffix: '_total',
          labels: { api: p.api, app: p.app, status: String(status) },
          value: n,
        });
      rt.samples.push({
        suffix: '_sum',
        labels: { api: p.api, app: p.app },
        value: p.rtSum / 1000,
      });
      rt.samples.push({ suffix: '_count', labels: { api: p.api, app: p.app }, value: p.count });
    }
    return requests.samples.length === 0 ? [] : [requests, rt];
  }
}
