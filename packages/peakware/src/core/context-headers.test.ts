import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createContext } from './context.js';
import { decodeContext, encodeContext, parseTraceparent } from './context-headers.js';

describe('context headers', () => {
  it('round-trips every field', () => {
    const now = 1_700_000_000_000;
    const ctx = createContext({
      deadline: now + 750,
      callerApp: 'order-service',
      stress: true,
      tags: { canary: 'true', 'zone name': 'a,b=c' },
      baggage: { userId: '10086', note: 'héllo wörld;x' },
      sampled: false,
    });
    const headers = encodeContext(ctx, now);
    assert.equal(headers['peak-timeout'], '750');
    const back = decodeContext(headers, now + 10);
    assert.equal(back.traceId, ctx.traceId);
    assert.equal(back.spanId, ctx.spanId);
    assert.equal(back.sampled, false);
    assert.equal(back.deadline, now + 10 + 750);
    assert.equal(back.callerApp, 'order-service');
    assert.equal(back.stress, true);
    assert.deepEqual(back.tags, ctx.tags);
    assert.deepEqual(back.baggage, ctx.baggage);
  });

  it('writes W3C traceparent', () => {
    const ctx = createContext();
    assert.equal(encodeContext(ctx).traceparent, `00-${ctx.traceId}-${ctx.spanId}-01`);
  });

  it('omits what is unset', () => {
    const headers = encodeContext(createContext());
    assert.deepEqual(Object.keys(headers), ['traceparent']);
  });

  it('rejects malformed or all-zero traceparents', () => {
    const good = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    assert.deepEqual(parseTraceparent(good), {
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      sampled: true,
    });
    for (const bad of [
      'garbage',
      '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
      'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01',
      `${good}-extra`,
    ]) {
      assert.equal(parseTraceparent(bad), undefined, bad);
    }
  });

  it('never throws on hostile headers, and drops what is bad', () => {
    const ctx = decodeContext({
      traceparent: 'nonsense',
      'peak-timeout': '-5',
      'peak-caller': 'bad caller with spaces',
      'peak-stress': 'yes',
      'peak-tags': '%E0%A4%A,=novalue,__proto__=x,ok=1',
      baggage: 'a'.repeat(10_000),
    });
    assert.match(ctx.traceId, /^[0-9a-f]{32}$/);
    assert.equal(ctx.deadline, undefined);
    assert.equal(ctx.callerApp, undefined);
    assert.equal(ctx.stress, false);
    assert.deepEqual(ctx.tags, { ok: '1' });
    assert.deepEqual(ctx.baggage, {});
  });

  it('accepts array-valued headers as node:http gives them', () => {
    const ctx = decodeContext({ baggage: ['a=1', 'b=2'] });
    assert.deepEqual(ctx.baggage, { a: '1', b: '2' });
  });
});
