/**
 * Node.js runtime figures for `/metrics`, as prom-client's default collectors name them:
 * event-loop delay (from `monitorEventLoopDelay`), event-loop utilisation, garbage
 * collections by kind (from `gc` performance entries), heap and external memory, and
 * active handles. Start it once per process part that serves `/metrics`; stop it at close.
 */
import {
  type EventLoopUtilization,
  monitorEventLoopDelay,
  PerformanceObserver,
  performance,
} from 'node:perf_hooks';
import type { MetricFamily } from './prometheus-format.js';

/** A running collector of runtime figures. */
export interface RuntimeMetrics {
  /** The families as of now. */
  families(): MetricFamily[];
  /** Stops the event-loop monitor and the GC observer. */
  stop(): void;
}

const GC_KINDS: Record<number, string> = { 1: 'minor', 2: 'major', 4: 'incremental', 8: 'weakcb' };

/** Starts the event-loop monitor (10 ms resolution) and the GC observer. */
export function startRuntimeMetrics(): RuntimeMetrics {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const gc = new Map<string, { count: number; seconds: number }>();
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const detail = (entry as unknown as { detail?: { kind?: number } }).detail;
      const kind = GC_KINDS[detail?.kind ?? 0] ?? 'other';
      const g = gc.get(kind) ?? { count: 0, seconds: 0 };
      g.count++;
      g.seconds += entry.duration / 1000;
      gc.set(kind, g);
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  let lastElu: EventLoopUtilization = performance.eventLoopUtilization();

  const families = (): MetricFamily[] => {
    const elu = performance.eventLoopUtilization(lastElu);
    lastElu = performance.eventLoopUtilization();
    const mem = process.memoryUsage();
    const seconds = (ns: number) => (Number.isFinite(ns) ? ns / 1e9 : 0);
    const gauge = (name: string, help: string, value: number): MetricFamily => ({
      name,
      help,
      type: 'gauge',
      samples: [{ value }],
    });
    const handles = (process as unknown as { _getActiveHandles?: () => unknown[] })
      ._getActiveHandles;
    return [
      {
        name: 'nodejs_eventloop_lag_seconds',
        help: 'Event-loop delay since the process started (monitorEventLoopDelay), by quantile.',
        type: 'summary',
        samples: [
          { labels: { quantile: '0.5' }, value: seconds(delay.percentile(50)) },
          { labels: { quantile: '0.9' }, value: seconds(delay.percentile(90)) },
          { labels: { quantile: '0.99' }, value: seconds(delay.percentile(99)) },
          { suffix: '_sum', value: seconds(delay.mean) * delay.count },
          { suffix: '_count', value: delay.count },
        ],
      },
      gauge(
        'nodejs_eventloop_lag_max_seconds',
        'Largest event-loop delay seen.',
        seconds(delay.max),
      ),
      gauge(
        'nodejs_eventloop_utilization_ratio',
        'Share of time the event loop was busy since the previous scrape (0..1).',
        elu.utilization,
      ),
      {
        name: 'nodejs_gc_duration_seconds',
        help: 'Garbage collection pauses by kind: their number and total seconds.',
        type: 'summary',
        samples: [...gc].flatMap(([kind, g]) => [
          { suffix: '_sum', labels: { kind }, value: g.seconds },
          { suffix: '_count', labels: { kind }, value: g.count },
        ]),
      },
      gauge('nodejs_heap_size_total_bytes', 'V8 heap size in bytes.', mem.heapTotal),
      gauge(
        'nodejs_external_memory_bytes',
        'Memory of C++ objects bound to JavaScript, bytes.',
        mem.external,
      ),
      gauge(
        'nodejs_active_handles',
        'Handles (sockets, timers, servers) keeping the event loop alive.',
        handles === undefined ? 0 : handles.call(process).length,
      ),
    ];
  };
  return {
    families,
    stop: () => {
      delay.disable();
      observer.disconnect();
    },
  };
}
