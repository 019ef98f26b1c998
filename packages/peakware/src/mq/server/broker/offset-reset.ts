/**
 * Replay: a consumer group's offsets on a topic move to the first message stored at or
 * after a time within retention; deliveries in flight are dropped, so consumption restarts
 * there.
 */
import { InvalidArgumentError } from '../../../core/errors.js';
import type { MessageStore } from '../message-store.js';
import { checkName } from './name-check.js';

/** Moves a group's offsets on a topic to the first message stored at or after `at`. */
export async function resetOffset(
  store: MessageStore,
  retentionMs: number,
  group: string,
  topic: string,
  at: number,
): Promise<{ queueId: number; offset: string }[]> {
  checkName('group', group);
  await store.requireTopic(topic);
  if (!Number.isFinite(at))
    throw new InvalidArgumentError('timestamp must be epoch ms or an ISO time', {
      details: { input: 'timestamp' },
    });
  if (at < Date.now() - retentionMs) {
    throw new InvalidArgumentError(
      `${new Date(at).toISOString()} is older than the retention (${Math.round(retentionMs / 3_600_000)} h); messages before ${new Date(Date.now() - retentionMs).toISOString()} are gone`,
      { details: { input: 'timestamp' } },
    );
  }
  return store.resetOffsets(group, topic, new Date(at));
}
