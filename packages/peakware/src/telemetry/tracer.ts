/**
 * The tracer: starts spans as child contexts of the current call context, records their
 * name, kind, attributes, status and timing, decides whether to keep them (ratio sampling
 * by trace id, always keeping errors and slow calls) and hands kept spans to a
 * {@link SpanSink} (usually a {@link BatchSpanProcessor}) without ever waiting on it.
 */
import {
  type CallContext,
  childContext,
  createContext,
  currentContext,
  newTraceId,
  runWithContext,
} from '../core/context.js';
import { errorMessage, InvalidArgumentError, isPeakError } from '../core/errors.js';
import type { AttributeValue, SpanKind, SpanRecord } from './span-types.js';

/** Where finished, kept spans go. `add` must never block or throw. */
export interface SpanSink {
  /** Accepts one finished span (queue it; never await here). */
  add(span: SpanRecord): void;
}

/** Options for {@link Tracer}. */
export interface TracerOptions {
  /** The service (application) name every span carries. */
  service: string;
  /** Where kept spans go. */
  sink: SpanSink;
  /** Fraction of traces kept, 0..1, decided by trace id so every hop agrees. Default 1. */
  sampleRatio?: number;
  /** Spans at least this long are kept even when their trace is not sampled. Default 500 ms. */
  slowMs?: number;
  /**
   * At most this many spans a second are kept only for being failed or slow (their trace
   * not head-sampled); the rest are counted in {@link Tracer.tailDropped}. An overloaded
   * service makes every span slow, and keeping them all would add telemetry work exactly
   * when there is no room for it. Default 100; `Infinity` keeps them all.
   */
  tailSpansPerSecond?: number;
  /** Set false to turn tracing off (spans become no-ops). Default true. */
  enabled?: boolean;
}

/** What {@link Tracer.startSpan} accepts. */
export interface StartSpanOptions {
  /** Default `internal`. */
  kind?: SpanKind;
  /** The parent context; default the current one (a new trace when there is none). */
  parent?: CallContext;
  /** Use this context as the span's own (ids already assigned, e.g. by RPC). */
  context?: CallContext;
  /** Initial attributes. */
  attributes?: Record<string, AttributeValue>;
  /** The service called, for client/producer spans. */
  peerService?: string;
}

/** What {@link Tracer.recordSpan} takes: a span that has already finished. */
export interface FinishedSpanInit {
  kind?: SpanKind;
  /** Start, epoch µs. */
  startUs: number;
  durationUs: number;
  /** The failure message, when it failed. */
  error?: string;
  /** Its attributes, or a function building them (called only when the span is kept). */
  attributes?: Record<string, AttributeValue> | (() => Record<string, AttributeValue>);
  peerService?: string;
  /** The parent; default the current context. */
  parent?: CallContext;
}

/** One span being recorded. End it exactly once. */
export interface Span {
  /** The span's own context: run child work in it so its spans link to this one. */
  readonly context: CallContext;
  /** Sets one attribute. */
  setAttribute(key: string, value: AttributeValue): this;
  /** Marks the span failed with `err` (its code and message are recorded). */
  recordError(err: unknown): this;
  /** Finishes the span; later calls are ignored. */
  end(): void;
}

const NOOP_ATTRS: Record<string, AttributeValue> = {};

/** Maps a trace id to [0, 1) from its last 8 hex digits (OpenTelemetry's ratio sampler idea). */
export function traceIdRatio(traceId: string): number {
  const tail = Number.parseInt(traceId.slice(-8), 16);
  return Number.isFinite(tail) ? tail / 0x1_0000_0000 : 0;
}

/** `performance.timeOrigin` read once (its getter is not free on the hot path). */
export const TIME_ORIGIN_MS = performance.timeOrigin;

/** A failure as recorded on a span: `CODE: message` for PeakErrors, at most 500 characters. */
export function describeError(err: unknown): string {
  if (isPeakError(err)) return `${err.code}: ${err.message}`.slice(0, 500);
  return errorMessage(err).slice(0, 500);
}

class RecordingSpan implements Span {
  readonly context: CallContext;
  readonly #tracer: Tracer;
  readonly #name: string;
  readonly #kind: SpanKind;
  readonly #start: number;
  readonly #startUs: number;
  readonly #peer: string | undefined;
  #attrs: Record<string, AttributeValue>;
  #error: string | undefined;
  #ended = false;

  constructor(tracer: Tracer, name: string, ctx: CallContext, options: StartSpanOptions) {
    this.#tracer = tracer;
    this.#name = name;
    this.context = ctx;
    this.#kind = options.kind ?? 'internal';
    this.#attrs = options.attributes ?? NOOP_ATTRS;
    this.#peer = options.peerService;
    this.#start = performance.now();
    this.#startUs = Math.round((TIME_ORIGIN_MS + this.#start) * 1000);
  }

  setAttribute(key: string, value: AttributeValue): this {
    if (this.#attrs === NOOP_ATTRS) this.#attrs = {};
    this.#attrs[key] = value;
    return this;
  }

  recordError(err: unknown): this {
    this.#error = describeError(err);
    return this;
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    const durationUs = Math.max(0, Math.round((performance.now() - this.#start) * 1000));
    const ctx = this.context;
    const record: SpanRecord = {
      traceId: ctx.traceId,
      spanId: ctx.spanId,
      name: this.#name,
      kind: this.#kind,
      service: this.#tracer.service,
      startUs: this.#startUs,
      durationUs,
      error: this.#error !== undefined,
      stress: ctx.stress,
      attributes: this.#attrs,
    };
    if (ctx.parentSpanId !== undefined) record.parentSpanId = ctx.parentSpanId;
    if (this.#error !== undefined) record.errorMessage = this.#error;
    if (this.#peer !== undefined) record.peerService = this.#peer;
    this.#tracer.finish(record, ctx.sampled);
  }
}

class NoopSpan implements Span {
  constructor(readonly context: CallContext) {}
  setAttribute(): this {
    return this;
  }
  recordError(): this {
    return this;
  }
  end(): void {}
}

/** Starts spans and decides which to keep. One per service process. */
export class Tracer {
  /** The service name spans carry. */
  readonly service: string;
  readonly #sink: SpanSink;
  readonly #ratio: number;
  readonly #slowUs: number;
  readonly #enabled: boolean;
  readonly #tailBudget: number;
  #dropped = 0;
  #tailDropped = 0;
  #tailSecond = 0;
  #tailKept = 0;

  constructor(options: TracerOptions) {
    if (options.service.length === 0) {
      throw new InvalidArgumentError('Tracer: service must be a non-empty application name');
    }
    const ratio = options.sampleRatio ?? 1;
    if (!(ratio >= 0 && ratio <= 1)) {
      throw new InvalidArgumentError(`Tracer: sampleRatio must be between 0 and 1, got ${ratio}`);
    }
    this.service = options.service;
    this.#sink = options.sink;
    this.#ratio = ratio;
    this.#slowUs = (options.slowMs ?? 500) * 1000;
    this.#enabled = options.enabled ?? true;
    const budget = options.tailSpansPerSecond ?? 100;
    if (!(budget >= 0)) {
      throw new InvalidArgumentError(
        `Tracer: tailSpansPerSecond must be 0 or more, got ${options.tailSpansPerSecond}`,
      );
    }
    this.#tailBudget = budget;
  }

  /** Whether the tracer records spans at all. */
  get enabled(): boolean {
    return this.#enabled;
  }

  /** Spans finished but not kept by sampling (neither sampled, failed nor slow). */
  get unsampled(): number {
    return this.#dropped;
  }

  /** Failed or slow spans of unsampled traces not kept for being over `tailSpansPerSecond`. */
  get tailDropped(): number {
    return this.#tailDropped;
  }

  /** Whether a trace is head-sampled: its context says sampled and its id falls in the ratio. */
  isSampled(ctx: CallContext): boolean {
    return ctx.sampled && (this.#ratio >= 1 || traceIdRatio(ctx.traceId) < this.#ratio);
  }

  /**
   * Starts a span. Its context is a child of `options.parent` (default: the current one),
   * or `options.context` itself when the ids were already assigned.
   */
  startSpan(name: string, options: StartSpanOptions = {}): Span {
    const parent = options.parent ?? currentContext();
    const ctx = options.context ?? (parent === undefined ? createContext() : childContext(parent));
    if (!this.#enabled) return new NoopSpan(ctx);
    return new RecordingSpan(this, name, ctx, options);
  }

  /**
   * Records a span that already happened (start and duration known), as a child of the
   * current context: for seams that report after the fact, such as data's statement events.
   * `name` may be a function, called only when the span is kept (as `done.attributes`).
   */
  recordSpan(name: string | (() => string), done: FinishedSpanInit): void {
    if (!this.#enabled) return;
    const parent = done.parent ?? currentContext();
    const durationUs = Math.max(0, Math.round(done.durationUs));
    // Decided before the span's context is made (a child keeps its parent's trace id and
    // sampled flag): an unkept span (most, at a low sampling ratio) costs no span id,
    // context, name, attributes or record (a statement's span is recorded per statement).
    const traceId = parent === undefined ? newTraceId() : parent.traceId;
    const sampled = parent === undefined ? true : parent.sampled;
    if (!this.keeps(traceId, sampled, durationUs, done.error !== undefined)) return;
    const ctx = parent === undefined ? createContext({ traceId }) : childContext(parent);
    const attributes = done.attributes;
    const record: SpanRecord = {
      traceId: ctx.traceId,
      spanId: ctx.spanId,
      name: typeof name === 'string' ? name : name(),
      kind: done.kind ?? 'internal',
      service: this.service,
      startUs: Math.round(done.startUs),
      durationUs,
      error: done.error !== undefined,
      stress: ctx.stress,
      attributes: (typeof attributes === 'function' ? attributes() : attributes) ?? {},
    };
    if (ctx.parentSpanId !== undefined) record.parentSpanId = ctx.parentSpanId;
    if (done.error !== undefined) record.errorMessage = done.error.slice(0, 500);
    if (done.peerService !== undefined) record.peerService = done.peerService;
    this.emit(record);
  }

  /**
   * Runs `fn` inside a new span (current context = the span's), ending it when `fn`
   * settles and recording a thrown error.
   */
  async trace<R>(
    name: string,
    fn: (span: Span) => Promise<R> | R,
    options: StartSpanOptions = {},
  ): Promise<R> {
    const span = this.startSpan(name, options);
    try {
      return await runWithContext(span.context, () => fn(span));
    } catch (err) {
      span.recordError(err);
      throw err;
    } finally {
      span.end();
    }
  }

  /** Called by a span when it ends: keeps it when sampled, failed or slow. */
  finish(record: SpanRecord, sampled = true): void {
    if (this.keeps(record.traceId, sampled, record.durationUs, record.error))
      this.#sink.add(record);
  }

  /**
   * Whether a finished span is kept: head-sampled, or failed or slow within the tail budget
   * (`tailSpansPerSecond`). Instrumentation that
   * builds records itself (the RPC filter) asks first, so unkept spans cost no record.
   * A span not kept is counted in {@link unsampled}.
   */
  keeps(traceId: string, sampled: boolean, durationUs: number, failed: boolean): boolean {
    if (sampled && (this.#ratio >= 1 || traceIdRatio(traceId) < this.#ratio)) return true;
    if (failed || durationUs >= this.#slowUs) {
      const second = Math.floor(Date.now() / 1000);
      if (second !== this.#tailSecond) {
        this.#tailSecond = second;
        this.#tailKept = 0;
      }
      if (this.#tailKept < this.#tailBudget) {
        this.#tailKept++;
        return true;
      }
      this.#tailDropped++;
    }
    this.#dropped++;
    return false;
  }

  /** Hands a record that {@link keeps} accepted to the sink. */
  emit(record: SpanRecord): void {
    this.#sink.add(record);
  }
}
