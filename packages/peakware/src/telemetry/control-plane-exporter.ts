/**
 * Sends span batches to the control plane's collector (`POST /api/v1/telemetry/spans`)
 * through the {@link ControlPlaneClient} (failover across nodes). Each export is bounded by
 * a timeout and tried once per node (a refused connection moves to the next node at
 * once); failures reject so the processor counts the drop.
 */

import {
  ControlPlaneClient,
  type ControlPlaneOptions,
  serversOf,
} from '../core/control-plane-client.js';
import { ErrorCodes, errorMessage, PeakError } from '../core/errors.js';
import { parseServers } from '../core/server-list.js';
import type { SpanExporter } from './span-exporter.js';
import type { SpanRecord } from './span-types.js';

const SPANS_ROUTE = '/api/v1/telemetry/spans';

/** Options for {@link ControlPlaneSpanExporter}. */
export interface ControlPlaneSpanExporterOptions extends ControlPlaneOptions {
  /** Longest one export may take, ms. Default 5000. */
  timeoutMs?: number;
}

/** A {@link SpanExporter} to peak server's collector. */
export class ControlPlaneSpanExporter implements SpanExporter {
  readonly #http: ControlPlaneClient;

  constructor(options: ControlPlaneSpanExporterOptions) {
    const servers = parseServers(serversOf(options, 'ControlPlaneSpanExporter'));
    this.#http = new ControlPlaneClient({
      servers,
      ...(options.token === undefined ? {} : { token: options.token }),
      timeoutMs: options.timeoutMs ?? 5000,
      retries: servers.length - 1,
      serverName: 'the collector',
    });
  }

  async export(spans: readonly SpanRecord[]): Promise<void> {
    try {
      await this.#http.post(SPANS_ROUTE, { spans });
    } catch (err) {
      throw new PeakError(
        ErrorCodes.TELEMETRY_EXPORT_FAILED,
        `the collector at ${this.#http.url(SPANS_ROUTE)} did not take ${spans.length} spans: ${errorMessage(err)}`,
        { cause: err },
      );
    }
  }
}
