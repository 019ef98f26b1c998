import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createContext } from '../core/context.js';
import { encodeContext } from '../core/context-headers.js';
import { traceConsumerBatch } from './mq-tracing.js';
import type { SpanRecord } from './span-types.js';
import { Tracer } from './tracer.js';

describe('traceConsumerBatch', () => {
  const message = (id: string) => {
    const producer = createContext();
    return { producer, id, topic: 't', tag: null, properties: encodeContext(producer) };
  };

  it('makes one consumer span per message, each a child of its own producer span', async () => {
    const spans: SpanRecord[] = [];
    const tracer = new Tracer({ service: 'c', sink: { add: (s) => spans.push(s) } });
    const messages = [message('a'), message('b'), message('c')];
    let seen = 0;
    await traceConsumerBatch(tracer, (ms) => {
      seen = ms.length;
    })(messages);
    assert.equal(seen, 3);
    assert.equal(spans.length, 3);
    for (const [i, m] of messages.entries()) {
      assert.equal(spans[i]!.traceId, m.producer.traceId);
      assert.equal(spans[i]!.parentSpanId, m.producer.spanId);
      assert.equal(spans[i]!.kind, 'consumer');
      assert.equal(spans[i]!.attributes['messaging.message_id'], m.id);
      assert.equal(spans[i]!.error, false);
    }
  });

  it('marks every span of a failed batch as an error and rethrows', async () => {
    const spans: SpanRecord[] = [];
    const tracer = new Tracer({ service: 'c', sink: { add: (s) => spans.push(s) } });
    await assert.rejects(
      traceConsumerBatch(tracer, () => {
        throw new Error('batch failed');
      })([message('a'), message('b')]),
      /batch failed/,
    );
    assert.deepEqual(
      spans.map((s) => s.error),
      [true, true],
    );
  });
});
