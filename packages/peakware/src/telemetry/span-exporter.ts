/**
 * Span export: the {@link SpanExporter} seam (where batches go) and the
 * {@link BatchSpanProcessor} that sits between the tracer and an exporter with bounded
 * memory. The application thread only ever pushes into a fixed-size ring; a full ring
 * drops the span and counts it. Batches leave by size or time, one export at a time, and
 * an export that fails or hangs costs the application nothing but dropped spans.
 */
import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { SpanRecord } from './span-types.js';
import type { SpanSink } from './tracer.js';

/** Sends a batch of spans somewhere (the control plane, an OTLP endpoint, a test array). */
export interface SpanExporter {
  /** Sends one batch; rejects when it could not be delivered. */
  export(spans: readonly SpanRecord[]): Promise<void>;
  /** Releases resources. */
  shutdown?(): Promise<void>;
}

/** Options for {@link BatchSpanProcessor}. */
export interface BatchSpanProcessorOptions {
  /** Where batches go. */
  exporter: SpanExporter;
  /** Most spans held in memory; more are dropped and counted. Default 8192. */
  maxQueueSize?: number;
  /** Spans per export. Default 512. */
  maxBatchSize?: number;
  /** Longest a span waits before its batch is sent, ms. Default 1000. */
  flushIntervalMs?: number;
  /** Logger for failed exports (one line per failure streak). */
  logger?: Logger;
}

/** Counters of a {@link BatchSpanProcessor}. */
export interface SpanProcessorStats {
  /** Spans accepted into the queue. */
  queued: number;
  /** Spans dropped because the queue was full. */
  droppedFull: number;
  /** Spans lost because their export failed. */
  droppedExport: number;
  /** Spans delivered. */
  exported: number;
  /** Spans waiting now. */
  pending: number;
}

/**
 * A bounded ring of spans drained in batches by a timer. `add` is O(1), allocation-free
 * and never waits; when the ring is full the new span is dropped and counted.
 */
export class BatchSpanProcessor implements SpanSink {
  readonly #exporter: SpanExporter;
  readonly #ring: (SpanRecord | undefined)[];
  readonly #capacity: number;
  readonly #batch: number;
  readonly #interval: number;
  readonly #logger: Logger | undefined;
  #head = 0;
  #size = 0;
  #timer: NodeJS.Timeout | undefined;
  #exporting: Promise<void> | undefined;
  #closed = false;
  #failing = false;
  #drainScheduled = false;
  readonly #stats = { queued: 0, droppedFull: 0, droppedExport: 0, exported: 0 };

  constructor(options: BatchSpanProcessorOptions) {
    this.#exporter = options.exporter;
    this.#capacity = Math.max(1, options.maxQueueSize ?? 8192);
    this.#batch = Math.max(1, Math.min(options.maxBatchSize ?? 512, this.#capacity));
    this.#interval = Math.max(1, options.flushIntervalMs ?? 1000);
    this.#logger = options.logger;
    this.#ring = new Array(this.#capacity);
  }

  /** Counters: queued, dropped (full / failed export), exported, pending. */
  stats(): SpanProcessorStats {
    return { ...this.#stats, pending: this.#size };
  }

  add(span: SpanRecord): void {
    if (this.#closed || this.#size >= this.#capacity) {
      this.#stats.droppedFull++;
      return;
    }
    this.#ring[(this.#head + this.#size) % this.#capacity] = span;
    this.#size++;
    this.#stats.queued++;
    if (this.#size >= this.#batch && this.#exporting === undefined) {
      // A full batch goes out on the next tick, never on the caller's stack (once per tick).
      if (!this.#drainScheduled) {
        this.#drainScheduled = true;
        setImmediate(() => {
          this.#drainScheduled = false;
          this.#drain();
        });
      }
    } else if (this.#timer === undefined) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#drain();
      }, this.#interval);
      this.#timer.unref();
    }
  }

  #take(): SpanRecord[] {
    const n = Math.min(this.#size, this.#batch);
    const out = new Array<SpanRecord>(n);
    for (let i = 0; i < n; i++) {
      const at = (this.#head + i) % this.#capacity;
      out[i] = this.#ring[at] as SpanRecord;
      this.#ring[at] = undefined;
    }
    this.#head = (this.#head + n) % this.#capacity;
    this.#size -= n;
    return out;
  }

  #drain(): void {
    if (this.#exporting !== undefined || this.#size === 0) return;
    const batch = this.#take();
    this.#exporting = this.#exporter.export(batch).then(
      () => {
        this.#stats.exported += batch.length;
        if (this.#failing) this.#logger?.info('span export recovered');
        this.#failing = false;
      },
      (err: unknown) => {
        this.#stats.droppedExport += batch.length;
        if (!this.#failing) {
          this.#logger?.warn(
            { err: errorMessage(err), spans: batch.length },
            'span export failed; spans are dropped and counted until it recovers',
          );
        }
        this.#failing = true;
      },
    );
    void this.#exporting.finally(() => {
      this.#exporting = undefined;
      if (this.#size >= this.#batch) setImmediate(() => this.#drain());
      else if (this.#size > 0 && this.#timer === undefined && !this.#closed) {
        this.#timer = setTimeout(() => {
          this.#timer = undefined;
          this.#drain();
        }, this.#interval);
        this.#timer.unref();
      }
    });
  }

  /** Sends everything queued now (for shutdown and tests); resolves when done or failed. */
  async flush(): Promise<void> {
    for (;;) {
      if (this.#exporting !== undefined) await this.#exporting;
      if (this.#size === 0) return;
      this.#drain();
    }
  }

  /** Flushes, stops the timer and shuts the exporter down; later spans are dropped. */
  async shutdown(): Promise<void> {
    await this.flush();
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#exporter.shutdown?.();
  }
}
