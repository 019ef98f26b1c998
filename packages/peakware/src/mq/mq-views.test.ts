/**
 * The broker's admin answers must fit the views `peakware/admin` declares for them. This
 * check fails at build time: each `Fits<...>` below stops compiling (and `npm run build`
 * with it) when a `Broker` method's answer drifts from its view.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type {
  CreatedTopic,
  DeadLetter,
  MessageDescription,
  MqStats,
  QueueOffset,
} from './mq-views.js';
import type { Broker } from './server/broker.js';

/** What a `Broker` method resolves with. */
type Answer<K extends keyof Broker> = Broker[K] extends (...args: never[]) => Promise<infer R>
  ? R
  : never;

/** `true`, and a compile error unless `Actual` can be read as `View`. */
type Fits<Actual extends View, View> = Actual extends View ? true : never;

describe('mq admin views', () => {
  it('fit what the broker answers (checked by the compiler)', () => {
    const checks: [
      Fits<Answer<'createTopic'>, CreatedTopic>,
      Fits<Answer<'describe'>, MessageDescription>,
      Fits<Answer<'dlq'>, DeadLetter[]>,
      Fits<Answer<'resetOffset'>, QueueOffset[]>,
      Fits<Answer<'stats'>, MqStats>,
    ] = [true, true, true, true, true];
    assert.equal(checks.length, 5);
  });
});
