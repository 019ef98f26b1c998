/**
 * RPC spans through the filter seam (no rpc code changes): a client span per logical call
 * on the consumer, a server span per call on the provider. RPC already gives each hop its
 * own context (the consumer a child of the caller's, the provider a child of the
 * consumer's, sent as `traceparent`), so the filter records spans with those ids and the
 * hops link parent → child across processes.
 *
 * This is the hottest instrumentation, so it is written for cost: no async wrapper (one
 * `then` on the call's promise), and nothing but a start time is allocated until the call
 * ends and the tracer says the span is kept.
 */
import type { Invocation, RpcFilter } from '../rpc/rpc-filter.js';
import type { SpanRecord } from './span-types.js';
import { describeError, TIME_ORIGIN_MS, type Tracer } from './tracer.js';

const OK = Symbol('ok');

/** An {@link RpcFilter} that records client spans (consumer side) and server spans (provider). */
export function rpcTracingFilter(tracer: Tracer): RpcFilter {
  if (!tracer.enabled) return (_invocation, next) => next();
  const finish = (inv: Invocation, start: number, err: unknown): void => {
    const end = performance.now();
    const durationUs = Math.max(0, Math.round((end - start) * 1000));
    const ctx = inv.context;
    const failed = err !== OK;
    if (!tracer.keeps(ctx.traceId, ctx.sampled, durationUs, failed)) return;
    const client = inv.side === 'consumer';
    const attributes: Record<string, string> = {
      'rpc.system': 'peakware',
      'rpc.service': inv.service,
      'rpc.method': inv.method,
    };
    if (inv.remote !== undefined) attributes['net.peer'] = inv.remote;
    if (!client && ctx.callerApp !== undefined) attributes['peak.caller'] = ctx.callerApp;
    // A branch call of a global transaction (peakware/txn puts its id in the baggage).
    const gid = ctx.baggage['peak.txn.gid'];
    if (gid !== undefined) attributes['peak.txn.gid'] = gid;
    const record: SpanRecord = {
      traceId: ctx.traceId,
      spanId: ctx.spanId,
      name: `${inv.service}.${inv.method}`,
      kind: client ? 'client' : 'server',
      service: tracer.service,
      startUs: Math.round((TIME_ORIGIN_MS + start) * 1000),
      durationUs,
      error: failed,
      stress: ctx.stress,
      attributes,
    };
    if (ctx.parentSpanId !== undefined) record.parentSpanId = ctx.parentSpanId;
    if (client) record.peerService = inv.service;
    if (failed) record.errorMessage = describeError(err);
    tracer.emit(record);
  };
  return (invocation, next) => {
    const start = performance.now();
    let result: Promise<unknown>;
    try {
      result = next();
    } catch (err) {
      finish(invocation, start, err);
      throw err;
    }
    return result.then(
      (value) => {
        finish(invocation, start, OK);
        return value;
      },
      (err: unknown) => {
        finish(invocation, start, err);
        throw err;
      },
    );
  };
}
