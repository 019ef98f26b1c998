/**
 * The dead-letter queue as admins see it: a group's dead letters, newest first, and resending
 * some or all of them to the group (through its retry topic, due now).
 */
import { InvalidArgumentError } from '../../../core/errors.js';
import type { ReceivedMessage } from '../../message-types.js';
import type { MessageStore } from '../message-store.js';
import { checkName } from './name-check.js';

/** A dead-lettered message, with when and why it died. */
export type DeadLetter = Omit<
  ReceivedMessage,
  'receipt' | 'queueId' | 'queueOffset' | 'storedAt'
> & {
  deadAt: number;
  reason: string | null;
};

/** Dead letters of a group. */
export async function listDeadLetters(
  store: MessageStore,
  group: string,
  limit: number,
): Promise<DeadLetter[]> {
  checkName('group', group);
  const rows = await store.listDlq(group, Math.min(Math.max(limit, 1), 1000));
  return rows.map((r) => ({
    id: r.msg_id,
    topic: r.topic,
    tag: r.tag,
    keys: r.keys,
    group: r.msg_group,
    properties: r.props,
    body: r.body.toString('base64'),
    bornAt: r.born_at.getTime(),
    reconsumeTimes: r.reconsume,
    deadAt: r.dead_at.getTime(),
    reason: r.reason,
  }));
}

/** Resends dead letters to the group (ids, or all). */
export async function resendDeadLetters(
  store: MessageStore,
  group: string,
  ids: unknown,
): Promise<{ resent: string[] }> {
  checkName('group', group);
  let list: string[] | 'all';
  if (ids === 'all' || ids === undefined) list = 'all';
  else if (Array.isArray(ids) && ids.every((i) => typeof i === 'string' && /^\d{1,19}$/.test(i)))
    list = ids as string[];
  else
    throw new InvalidArgumentError("ids must be 'all' or an array of message ids", {
      details: { input: 'ids' },
    });
  const resent = await store.resendDlq(group, list);
  await store.trace(
    resent.map((id) => ({
      msgId: id,
      event: 'resent',
      grp: group,
      detail: 'from the dead-letter queue',
    })),
  );
  return { resent };
}
