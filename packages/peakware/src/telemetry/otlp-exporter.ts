/**
 * Sends Peakware spans onward to any OTLP/HTTP JSON endpoint (an OpenTelemetry
 * Collector, Jaeger, SkyWalking's OTLP receiver) when trace volume outgrows PostgreSQL.
 */
import { ErrorCodes, PeakError } from '../core/errors.js';
import { toOtlpJson } from './otlp-json.js';
import type { SpanExporter } from './span-exporter.js';
import type { SpanRecord } from './span-types.js';

/** Options for {@link OtlpHttpSpanExporter}. */
export interface OtlpHttpSpanExporterOptions {
  /** The traces URL, e.g. `http://127.0.0.1:4318/v1/traces`. */
  url: string;
  /** Extra headers (auth). */
  headers?: Record<string, string>;
  /** Longest one export may take, ms. Default 5000. */
  timeoutMs?: number;
}

/** A {@link SpanExporter} speaking OTLP/HTTP with JSON encoding. */
export class OtlpHttpSpanExporter implements SpanExporter {
  readonly #opts: OtlpHttpSpanExporterOptions;

  constructor(options: OtlpHttpSpanExporterOptions) {
    this.#opts = options;
  }

  async export(spans: readonly SpanRecord[]): Promise<void> {
    const res = await fetch(this.#opts.url, {
      method: 'POST',
      headers: { ...this.#opts.headers, 'content-type': 'application/json' },
      body: JSON.stringify(toOtlpJson(spans)),
      signal: AbortSignal.timeout(this.#opts.timeoutMs ?? 5000),
    });
    const text = await res.text().catch(() => '');
    if (!res.ok) {
      throw new PeakError(
        ErrorCodes.TELEMETRY_EXPORT_FAILED,
        `the OTLP endpoint ${this.#opts.url} answered ${res.status}: ${text.slice(0, 300)}`,
      );
    }
  }
}
