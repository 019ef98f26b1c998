/** A stored message as consumers and queries see it (topic without its shadow prefix). */
import type { ReceivedMessage } from '../../message-types.js';
import type { DeliveredRow, MessageRow } from '../message-records.js';

/**
 * A stored message row as a {@link ReceivedMessage} with the given receipt; a row read for
 * delivery has its body in base64 already.
 */
export function toReceived(
  m: MessageRow | DeliveredRow,
  reconsumeTimes: number,
  receipt: string,
): ReceivedMessage {
  return {
    id: m.msg_id,
    topic: (m.origin_topic ?? m.topic).replace(/^%SHADOW%/, ''),
    queueId: m.queue_id,
    queueOffset: m.queue_offset,
    tag: m.tag,
    keys: m.keys,
    group: m.msg_group,
    properties: m.props,
    body: typeof m.body === 'string' ? m.body : m.body.toString('base64'),
    bornAt: m.born_at.getTime(),
    storedAt: m.stored_at.getTime(),
    reconsumeTimes,
    receipt,
  };
}
