/**
 * The Prometheus text exposition format (version 0.0.4): metric families to text, with
 * name checks and label-value escaping done once here so no caller can emit a line a
 * Prometheus server rejects.
 */
import { InvalidArgumentError } from '../core/errors.js';

/** The content type of the text format. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** One sample line. */
export interface MetricSample {
  /** Appended to the family name (`_total`, `_sum`, `_count`, ...); default none. */
  suffix?: string;
  /** Label pairs. */
  labels?: Record<string, string>;
  /** The value (NaN and ±Inf are written as Prometheus spells them). */
  value: number;
}

/** One metric family: `# HELP`, `# TYPE` and its samples. */
export interface MetricFamily {
  /** Metric name, `[a-zA-Z_:][a-zA-Z0-9_:]*`. */
  name: string;
  /** One line of help text. */
  help: string;
  /** The metric type. */
  type: 'counter' | 'gauge' | 'summary' | 'histogram' | 'untyped';
  /** Its samples. */
  samples: MetricSample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** Writes families in the text format. Throws on an invalid metric or label name. */
export function formatPrometheus(families: readonly MetricFamily[]): string {
  const lines: string[] = [];
  for (const f of families) {
    if (!METRIC_NAME.test(f.name)) {
      throw new InvalidArgumentError(`invalid Prometheus metric name '${f.name}'`);
    }
    lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      let labels = '';
      const entries = Object.entries(s.labels ?? {});
      if (entries.length > 0) {
        for (const [k] of entries) {
          if (!LABEL_NAME.test(k) || k.startsWith('__')) {
            throw new InvalidArgumentError(`invalid Prometheus label name '${k}' on ${f.name}`);
          }
        }
        labels = `{${entries.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}`;
      }
      lines.push(`${f.name}${s.suffix ?? ''}${labels} ${formatValue(s.value)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** Process figures every Peakware /metrics endpoint includes (memory, CPU, uptime, event loop). */
export function processMetrics(): MetricFamily[] {
  const mem = process.memoryUsage();
  const cpu = process.cpuUsage();
  return [
    {
      name: 'process_cpu_seconds_total',
      help: 'Total user and system CPU time spent in seconds.',
      type: 'counter',
      samples: [{ value: (cpu.user + cpu.system) / 1e6 }],
    },
    {
      name: 'process_resident_memory_bytes',
      help: 'Resident memory size in bytes.',
      type: 'gauge',
      samples: [{ value: mem.rss }],
    },
    {
      name: 'nodejs_heap_used_bytes',
      help: 'V8 heap used in bytes.',
      type: 'gauge',
      samples: [{ value: mem.heapUsed }],
    },
    {
      name: 'process_start_time_seconds',
      help: 'Start time of the process since unix epoch in seconds.',
      type: 'gauge',
      samples: [{ value: Math.round((Date.now() - process.uptime() * 1000) / 1000) }],
    },
  ];
}
