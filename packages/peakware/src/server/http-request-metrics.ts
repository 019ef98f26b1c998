/**
 * HTTP request latency of a control-plane node by route, for `/metrics` (telemetry writes
 * it as the histogram `peak_http_request_duration_seconds`): counts per latency bucket
 * keyed by the method, the matched route's template (never the raw URL, so the series stay
 * bounded) and the status class. A host primitive: the HTTP core records, modules read.
 */

/** Upper bounds of the latency buckets, seconds. */
export const HTTP_LATENCY_BUCKETS = [
  0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
] as const;

/** Most distinct method + route + status-class series kept; later ones go to `(other)`. */
const MAX_SERIES = 2000;

/** One series of {@link HttpRequestMetrics.snapshot}. */
export interface HttpLatencySeries {
  labels: Record<string, string>;
  /** Requests at or under each bound of {@link HTTP_LATENCY_BUCKETS}, then all of them. */
  cumulative: number[];
  sum: number;
  count: number;
}

interface Series {
  labels: Record<string, string>;
  /** Count per bucket (not cumulative), one more for +Inf. */
  buckets: number[];
  sum: number;
  count: number;
}

/** Request latencies by route, recorded by the HTTP core and read by `/metrics`. */
export class HttpRequestMetrics {
  readonly #series = new Map<string, Series>();

  /**
   * Records one answered request: `route` is the matched route's template (`undefined`
   * for no match), `seconds` its time from the first byte to the response's end.
   */
  record(method: string, route: string | undefined, status: number, seconds: number): void {
    const labels = {
      method,
      route: route ?? '(unmatched)',
      status: `${Math.floor(status / 100)}xx`,
    };
    let key = `${labels.method} ${labels.route} ${labels.status}`;
    let series = this.#series.get(key);
    if (series === undefined) {
      if (this.#series.size >= MAX_SERIES) {
        labels.route = '(other)';
        key = `${labels.method} (other) ${labels.status}`;
        series = this.#series.get(key);
      }
      if (series === undefined) {
        series = {
          labels,
          buckets: new Array(HTTP_LATENCY_BUCKETS.length + 1).fill(0),
          sum: 0,
          count: 0,
        };
        this.#series.set(key, series);
      }
    }
    const index = HTTP_LATENCY_BUCKETS.findIndex((b) => seconds <= b);
    series.buckets[index === -1 ? HTTP_LATENCY_BUCKETS.length : index]!++;
    series.sum += seconds;
    series.count++;
  }

  /** Every series with cumulative bucket counts (one per {@link HTTP_LATENCY_BUCKETS}, then +Inf). */
  snapshot(): HttpLatencySeries[] {
    return [...this.#series.values()].map((s) => {
      let cumulative = 0;
      return {
        labels: { ...s.labels },
        cumulative: s.buckets.map((n) => {
          cumulative += n;
          return cumulative;
        }),
        sum: s.sum,
        count: s.count,
      };
    });
  }
}
