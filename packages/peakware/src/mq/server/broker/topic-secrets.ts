/**
 * A secured topic's secrets: the produce secret signs messages and resolves half messages,
 * the consume secret (header `x-peak-mq-secret`) receives, acks and nacks. Compared in
 * constant time.
 */
import { timingSafeEqual } from 'node:crypto';
import { ErrorCodes, PeakError } from '../../../core/errors.js';
import { TopicNames } from '../../message-types.js';
import type { QueueRef } from '../message-records.js';
import type { MessageStore } from '../message-store.js';

/** Whether `given` is the expected secret (a topic without one accepts anything). */
export function secretMatches(expected: string | null, given: string | undefined): boolean {
  if (expected === null) return true;
  if (given === undefined) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Refuses a consumer of `topic` without its consume secret (PEAK_MQ_FORBIDDEN). */
export async function checkConsumeSecret(
  store: MessageStore,
  topic: string,
  secret: string | undefined,
): Promise<void> {
  const t = await store.requireTopic(topic);
  if (!secretMatches(t.consumeSecret, secret)) {
    throw new PeakError(
      ErrorCodes.MQ_FORBIDDEN,
      `topic '${topic.replace('%SHADOW%', '')}' needs its consume secret: send header 'x-peak-mq-secret' (SDK option 'secret')`,
      { details: { topic } },
    );
  }
}

/**
 * Every receipt's own topic must accept `secret` (the request's topic was checked
 * already): a receipt of a secured topic B is refused under topic A's secret. A retry
 * topic `%RETRY%<group>` holds copies of the group's topics; its receipts are checked
 * against the request's topic (the receipt's group must be the request's group too).
 */
export async function checkReceiptSecrets(
  store: MessageStore,
  requestTopic: string,
  secret: string | undefined,
  refs: readonly QueueRef[],
): Promise<void> {
  const topics = new Set<string>();
  for (const r of refs) if (r.topic !== requestTopic) topics.add(r.topic);
  for (const name of topics) {
    if (name.startsWith(TopicNames.retry(''))) continue;
    const t = await store.topic(name);
    if (t === undefined) continue;
    if (!secretMatches(t.consumeSecret, secret)) {
      throw new PeakError(
        ErrorCodes.MQ_FORBIDDEN,
        `a receipt belongs to topic '${name.replace('%SHADOW%', '')}', whose consume secret was not given: ack and nack receipts with the secret of the topic they were received from`,
        { details: { topic: name } },
      );
    }
  }
}
