/**
 * The call context: one immutable record per unit of work, carried by AsyncLocalStorage
 * through `await`, timers, event emitters and `Promise.all` fan-out, and across processes
 * as a header map (see `context-headers.ts`). Every subsystem reads it: guard (origin),
 * data/mq/cache (stress traffic), telemetry (trace and span ids), rpc (deadline, tags).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomFillSync } from 'node:crypto';
import { DeadlineExceededError } from './errors.js';

/** What one unit of work carries with it. Immutable: derive a new one to change it. */
export interface CallContext {
  /** W3C trace id: 32 lowercase hex characters, not all zero. */
  readonly traceId: string;
  /** The current span id: 16 lowercase hex characters, not all zero. */
  readonly spanId: string;
  /** The span this one is a child of, when known. */
  readonly parentSpanId?: string;
  /** The W3C `sampled` trace flag: whether tracing records this trace. */
  readonly sampled: boolean;
  /** Absolute deadline in epoch milliseconds; absent means no deadline. */
  readonly deadline?: number;
  /** The application that made the call (the "origin" guard rules limit by). */
  readonly callerApp?: string;
  /** True for full-link stress-test traffic: routed to shadow tables, topics and keys. */
  readonly stress: boolean;
  /** Route tags (gray release, A/B), e.g. `{ canary: 'true' }`; they stick through the chain. */
  readonly tags: Readonly<Record<string, string>>;
  /** User baggage (W3C `baggage`), passed along unchanged. */
  readonly baggage: Readonly<Record<string, string>>;
}

/** Fields a caller may set when creating or deriving a context. */
export interface ContextInit {
  traceId?: string;
  spanId?: string;
  parentSpanId?: string;
  sampled?: boolean;
  /** Absolute deadline in epoch ms. Use `timeoutMs` for a relative one. */
  deadline?: number;
  /** A relative timeout; becomes `deadline = now + timeoutMs` (the earlier deadline wins). */
  timeoutMs?: number;
  callerApp?: string;
  stress?: boolean;
  tags?: Record<string, string>;
  baggage?: Record<string, string>;
}

const storage = new AsyncLocalStorage<CallContext>();

const EMPTY: Readonly<Record<string, string>> = Object.freeze({});

// Random ids come from a pooled buffer: one randomFillSync per 256 ids instead of one per id.
const POOL_SIZE = 4096;
const pool = Buffer.allocUnsafe(POOL_SIZE);
let poolOffset = POOL_SIZE;

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function randomHex(bytes: number): string {
  for (;;) {
    if (poolOffset + bytes > POOL_SIZE) {
      randomFillSync(pool);
      poolOffset = 0;
    }
    let hex = '';
    let any = 0;
    for (let i = poolOffset, end = poolOffset + bytes; i < end; i++) {
      const b = pool[i]!;
      any |= b;
      hex += HEX[b];
    }
    poolOffset += bytes;
    // All-zero ids are invalid in W3C trace context; the chance is 2^-64, but be exact.
    if (any !== 0) return hex;
  }
}

/** A new random W3C trace id (32 hex characters). */
export function newTraceId(): string {
  return randomHex(16);
}

/** A new random W3C span id (16 hex characters). */
export function newSpanId(): string {
  return randomHex(8);
}

function freezeMap(map: Record<string, string> | undefined): Readonly<Record<string, string>> {
  if (map === undefined) return EMPTY;
  // Already frozen (decoded from headers, or another context's): share it, do not copy.
  if (Object.isFrozen(map)) return map;
  const keys = Object.keys(map);
  if (keys.length === 0) return EMPTY;
  return Object.freeze({ ...map });
}

function earlier(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.min(a, b);
}

function mergeMap(
  base: Readonly<Record<string, string>> | undefined,
  patch: Record<string, string> | undefined,
): Readonly<Record<string, string>> {
  if (patch === undefined) return base ?? EMPTY;
  if (base === undefined || base === EMPTY) return freezeMap(patch);
  return freezeMap(Object.assign({}, base, patch));
}

// Built by assignment, not object spreads: this runs once per call hop on the hot path.
function build(base: CallContext | undefined, init: ContextInit): CallContext {
  let deadline = earlier(base?.deadline, init.deadline);
  if (init.timeoutMs !== undefined) deadline = earlier(deadline, Date.now() + init.timeoutMs);
  const ctx: {
    traceId: string;
    spanId: string;
    parentSpanId?: string;
    sampled: boolean;
    deadline?: number;
    callerApp?: string;
    stress: boolean;
    tags: Readonly<Record<string, string>>;
    baggage: Readonly<Record<string, string>>;
  } = {
    traceId: init.traceId ?? base?.traceId ?? newTraceId(),
    spanId: init.spanId ?? base?.spanId ?? newSpanId(),
    sampled: init.sampled ?? base?.sampled ?? true,
    stress: init.stress ?? base?.stress ?? false,
    tags: mergeMap(base?.tags, init.tags),
    baggage: mergeMap(base?.baggage, init.baggage),
  };
  const parentSpanId = init.parentSpanId ?? base?.parentSpanId;
  if (parentSpanId !== undefined) ctx.parentSpanId = parentSpanId;
  if (deadline !== undefined) ctx.deadline = deadline;
  const callerApp = init.callerApp ?? base?.callerApp;
  if (callerApp !== undefined) ctx.callerApp = callerApp;
  return Object.freeze(ctx);
}

/** A new root context: a fresh trace, with the given fields set. */
export function createContext(init: ContextInit = {}): CallContext {
  return build(undefined, init);
}

/**
 * A copy of `base` with `init` applied. Tags and baggage are merged; a deadline can only
 * move earlier (a callee never gets more time than its caller had).
 */
export function deriveContext(base: CallContext, init: ContextInit): CallContext {
  return build(base, init);
}

/** A child span of `parent`: same trace, a new span id, `parentSpanId` = the parent's span. */
export function childContext(parent: CallContext, init: ContextInit = {}): CallContext {
  const patch: ContextInit = Object.assign({}, init);
  patch.spanId = newSpanId();
  patch.parentSpanId = parent.spanId;
  return build(parent, patch);
}

/** The context of the running unit of work, or undefined outside of one. */
export function currentContext(): CallContext | undefined {
  return storage.getStore();
}

/** Runs `fn` with `ctx` as the current context; everything it starts inherits it. */
export function runWithContext<R>(ctx: CallContext, fn: () => R): R {
  return storage.run(ctx, fn);
}

/**
 * Runs `fn` outside any context: what it starts belongs to no caller (no deadline, no
 * trace, not stress traffic). For work done on behalf of many callers at once, such as a
 * batch that group-commits several callers' writes.
 */
export function runWithoutContext<R>(fn: () => R): R {
  return storage.exit(fn);
}

/**
 * Runs `fn` in a context derived from the current one (or a new root) with `init` applied.
 * The usual way to set a deadline, a caller or a tag for a block of code.
 */
export function withContext<R>(init: ContextInit, fn: () => R): R {
  const base = storage.getStore();
  return storage.run(base === undefined ? createContext(init) : build(base, init), fn);
}

/**
 * Wraps `fn` so that, wherever it is later called from, it runs in the context current now.
 * Use it for callbacks handed to code that pools work (connection pools, batchers).
 */
export function bindContext<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
  const ctx = storage.getStore();
  if (ctx === undefined) return fn;
  return (...args: A) => storage.run(ctx, () => fn(...args));
}

/** Milliseconds left until the context's deadline; `Infinity` when it has none. */
export function remainingTime(ctx: CallContext | undefined = storage.getStore()): number {
  if (ctx?.deadline === undefined) return Number.POSITIVE_INFINITY;
  return ctx.deadline - Date.now();
}

/**
 * Throws {@link DeadlineExceededError} when the context's deadline has passed, so a
 * service never starts work its caller has already given up on.
 */
export function assertDeadline(what: string, ctx: CallContext | undefined = storage.getStore()) {
  const left = remainingTime(ctx);
  if (left <= 0) {
    throw new DeadlineExceededError(
      `${what}: the caller's deadline passed ${Math.round(-left)} ms ago; the work was not started`,
      { details: { overdueMs: Math.round(-left) } },
    );
  }
}
