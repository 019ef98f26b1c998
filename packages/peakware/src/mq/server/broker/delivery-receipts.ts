/**
 * Delivery receipts: where a delivery sits (queue, offset, topic, the group's state key),
 * encoded into the opaque string a consumer acks or nacks with.
 */
import { InvalidArgumentError } from '../../../core/errors.js';
import type { DeliveryRef, QueueRef } from '../message-records.js';

function b64url(text: string): string {
  return Buffer.from(text).toString('base64url');
}

/** Encodes where a delivery sits, for ack and nack. */
export function encodeReceipt(grp: string, q: QueueRef, offset: string): string {
  return `${q.queueId}.${offset}.${b64url(q.topic)}.${b64url(grp)}`;
}

/** The parts of a receipt; a malformed one is an InvalidArgumentError. */
export function decodeReceipt(receipt: unknown): DeliveryRef & { grp: string } {
  const m =
    typeof receipt === 'string'
      ? /^(\d{1,4})\.(\d{1,19})\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(receipt)
      : null;
  if (m === null) {
    throw new InvalidArgumentError(
      `not a delivery receipt: ${JSON.stringify(receipt)}; pass the 'receipt' of a received message`,
      {
        details: { input: 'receipts' },
      },
    );
  }
  return {
    queueId: Number(m[1]),
    offset: m[2]!,
    topic: Buffer.from(m[3]!, 'base64url').toString(),
    grp: Buffer.from(m[4]!, 'base64url').toString(),
  };
}
