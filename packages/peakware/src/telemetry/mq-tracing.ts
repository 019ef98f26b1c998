/**
 * MQ spans without touching mq: the producer already writes the current context into the
 * message properties (`traceparent`, ...) when `send` is called, and the consumer runs the
 * handler in a child of that context. So a producer span around `send` and a consumer span
 * on the handler's context link the two sides into one trace (consumer parent = producer
 * span), across processes and however long the message waited.
 */
import { childContext, currentContext } from '../core/context.js';
import { decodeContext } from '../core/context-headers.js';
import type { Tracer } from './tracer.js';

/** Runs `send` inside a producer span for `topic` (its context travels in the message). */
export function traceSend<R>(tracer: Tracer, topic: string, send: () => Promise<R>): Promise<R> {
  return tracer.trace(`send ${topic}`, () => send(), {
    kind: 'producer',
    peerService: topic,
    attributes: { 'messaging.system': 'peakware', 'messaging.destination': topic },
  });
}

/** A message as far as consumer tracing needs it. */
export interface TracedMessage {
  id: string;
  topic: string;
  tag: string | null;
}

/** A message with its properties, for spans in each message's own trace. */
export interface TracedBatchMessage extends TracedMessage {
  properties: Record<string, string>;
}

function consumeAttributes(message: TracedMessage) {
  return {
    'messaging.system': 'peakware',
    'messaging.destination': message.topic,
    'messaging.message_id': message.id,
    ...(message.tag === null ? {} : { 'messaging.tag': message.tag }),
  };
}

/**
 * Wraps a consumer handler so each delivery is a consumer span (a failed handler, which
 * the consumer retries, is an error span). Pass the result as `ConsumerOptions.handler`.
 */
export function traceConsumer<M extends TracedMessage>(
  tracer: Tracer,
  handler: (message: M) => Promise<void> | void,
): (message: M) => Promise<void> {
  return async (message) => {
    const ctx = currentContext();
    const span = tracer.startSpan(`consume ${message.topic}`, {
      kind: 'consumer',
      ...(ctx === undefined ? {} : { context: ctx }),
      attributes: consumeAttributes(message),
    });
    try {
      await handler(message);
    } catch (err) {
      span.recordError(err);
      throw err;
    } finally {
      span.end();
    }
  };
}

/**
 * Wraps a consumer batch handler so each message of the batch is a consumer span in its own
 * trace (a child of its producer span), all spanning the batch's run; a failed batch makes
 * them all error spans. Pass the result as `ConsumerOptions.batchHandler`.
 */
export function traceConsumerBatch<M extends TracedBatchMessage>(
  tracer: Tracer,
  handler: (messages: M[]) => Promise<void> | void,
): (messages: M[]) => Promise<void> {
  return async (messages) => {
    const spans = messages.map((message) =>
      tracer.startSpan(`consume ${message.topic}`, {
        kind: 'consumer',
        context: childContext(decodeContext(message.properties)),
        attributes: {
          ...consumeAttributes(message),
          'messaging.batch.message_count': messages.length,
        },
      }),
    );
    try {
      await handler(messages);
    } catch (err) {
      for (const span of spans) span.recordError(err);
      throw err;
    } finally {
      for (const span of spans) span.end();
    }
  };
}
