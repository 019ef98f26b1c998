/**
 * RPC spans through the filter seam (no rpc code changes): a client span per logical call
 * on the consumer, a server span per call on the provider. RPC already gives each hop its
 * own context (the consumer a child of the caller's, the provider a child of the
 * consumer's, sent as `traceparent`), so the filter records spans with those ids and the
 * hops link parent → child across processes.
 */
import type { RpcFilter } from '../rpc/rpc-filter.js';
import type { Tracer } from './tracer.js';

/** An {@link RpcFilter} that records client spans (consumer side) and server spans (provider). */
export function rpcTracingFilter(tracer: Tracer): RpcFilter {
  if (!tracer.enabled) return (_invocation, next) => next();
  return async (invocation, next) => {
    const client = invocation.side === 'consumer';
    const attributes: Record<string, string> = {
      'rpc.system': 'peakware',
      'rpc.service': invocation.service,
      'rpc.method': invocation.method,
    };
    if (invocation.remote !== undefined) attributes['net.peer'] = invocation.remote;
    if (invocation.context.callerApp !== undefined && !client) {
      attributes['peak.caller'] = invocation.context.callerApp;
    }
    const span = tracer.startSpan(`${invocation.service}.${invocation.method}`, {
      kind: client ? 'client' : 'server',
      context: invocation.context,
      attributes,
      ...(client ? { peerService: invocation.service } : {}),
    });
    try {
      return await next();
    } catch (err) {
      span.recordError(err);
      throw err;
    } finally {
      span.end();
    }
  };
}
