/**
 * Sends span batches to the control plane's collector (`POST /api/v1/telemetry/spans`).
 * Each export is bounded by a timeout; failures reject so the processor counts the drop.
 */

import { ErrorCodes, PeakError } from '../core/errors.js';
import { httpRequest } from '../core/http-client.js';
import type { SpanExporter } from './span-exporter.js';
import type { SpanRecord } from './span-types.js';

/** Options for {@link ControlPlaneSpanExporter}. */
export interface ControlPlaneSpanExporterOptions {
  /** The control plane's base URL, e.g. `http://127.0.0.1:7420`. */
  server: string;
  /** Longest one export may take, ms. Default 5000. */
  timeoutMs?: number;
}

/** A {@link SpanExporter} to peak server's collector. */
export class ControlPlaneSpanExporter implements SpanExporter {
  readonly #url: string;
  readonly #timeoutMs: number;

  constructor(options: ControlPlaneSpanExporterOptions) {
    this.#url = `${options.server.replace(/\/+$/, '')}/api/v1/telemetry/spans`;
    this.#timeoutMs = options.timeoutMs ?? 5000;
  }

  async export(spans: readonly SpanRecord[]): Promise<void> {
    const res = await httpRequest(this.#url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ spans }),
      timeoutMs: this.#timeoutMs,
    });
    if (!res.ok) {
      throw new PeakError(
        ErrorCodes.TELEMETRY_EXPORT_FAILED,
        `the collector at ${this.#url} answered ${res.status}: ${res.text.slice(0, 300)}`,
      );
    }
  }
}
