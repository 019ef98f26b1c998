import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createContext } from '../core/context.js';
import type { Invocation } from '../rpc/rpc-filter.js';
import { rpcTracingFilter } from './rpc-tracing.js';
import type { SpanRecord } from './span-types.js';
import { Tracer } from './tracer.js';

function invocation(side: Invocation['side'], baggage: Record<string, string>): Invocation {
  return {
    side,
    service: 'shop.inventory',
    version: '1.0.0',
    method: 'deduct',
    args: {},
    context: createContext({ baggage }),
    idempotent: false,
  };
}

describe('rpcTracingFilter', () => {
  it("puts a global transaction's id (baggage peak.txn.gid) on both sides' spans", async () => {
    const spans: SpanRecord[] = [];
    const filter = rpcTracingFilter(
      new Tracer({ service: 'inventory', sink: { add: (s) => spans.push(s) } }),
    );
    for (const side of ['consumer', 'provider'] as const) {
      await filter(invocation(side, { 'peak.txn.gid': 'order-42' }), async () => 1);
    }
    await filter(invocation('provider', {}), async () => 1);
    assert.deepEqual(
      spans.map((s) => s.attributes['peak.txn.gid']),
      ['order-42', 'order-42', undefined],
    );
  });
});
