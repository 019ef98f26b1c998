/**
 * Acks and nacks of one subscription's receipts. Each receipt is checked against its own
 * topic's consume secret and must belong to the request's group. An ack ends a delivery; a
 * nack retries it after its backoff (or `delayMs`), or dead-letters it after the last try.
 * Either makes room in the consumer's push stream.
 */
import { ErrorCodes, InvalidArgumentError, PeakError } from '../../../core/errors.js';
import { TopicNames } from '../../message-types.js';
import type { QueueRef } from '../message-records.js';
import type { MessageStore } from '../message-store.js';
import { decodeReceipt } from './delivery-receipts.js';
import type { PushStreams } from './push-streams.js';
import { checkConsumeSecret, checkReceiptSecrets } from './topic-secrets.js';

/** An ack request as the route takes it (receipts unchecked). */
export interface AckRequest {
  group: string;
  topic: string;
  consumerId: string;
  receipts: unknown;
  secret?: string | undefined;
  /**
   * Whether the caller may consume `topic` in this group (its app credential's grants); a
   * receipt of a topic it may not is refused. Absent: any topic (an operator).
   */
  allowTopic?: (topic: string) => boolean;
}

/** Refuses receipts of topics the caller may not consume (a forged or borrowed receipt). */
function checkReceiptTopics(req: AckRequest, refs: readonly QueueRef[]): void {
  if (req.allowTopic === undefined) return;
  for (const r of refs) {
    if (r.topic === req.topic || r.topic.startsWith(TopicNames.retry(''))) continue;
    if (!req.allowTopic(r.topic)) {
      throw new PeakError(
        ErrorCodes.FORBIDDEN,
        `a receipt belongs to topic '${r.topic}', which this credential may not consume in group '${req.group}'`,
        { details: { topic: r.topic, group: req.group } },
      );
    }
  }
}

/** A nack request: an ack request with a reason and an optional retry delay. */
export interface NackRequest extends AckRequest {
  reason?: unknown;
  delayMs?: unknown;
}

/** Acks receipts of one subscription. */
export async function ack(
  all: MessageStore,
  streams: PushStreams,
  req: AckRequest,
): Promise<{ acked: number }> {
  // The subscription's database: a receipt of the group's retry topic is the one beside it.
  const store = await all.scopedTo(req.topic);
  await checkConsumeSecret(store, req.topic, req.secret);
  if (!Array.isArray(req.receipts) || req.receipts.length > 5000) {
    throw new InvalidArgumentError('receipts must be an array of at most 5000 receipts', {
      details: { input: 'receipts' },
    });
  }
  const refs = req.receipts.map(decodeReceipt);
  checkReceiptTopics(req, refs);
  await checkReceiptSecrets(store, req.topic, req.secret, refs);
  const byGrp = new Map<string, typeof refs>();
  for (const r of refs) byGrp.set(r.grp, [...(byGrp.get(r.grp) ?? []), r]);
  let acked = 0;
  for (const [grp, list] of byGrp) {
    if (grp !== req.group && !grp.startsWith(`${req.group}@`)) {
      throw new InvalidArgumentError(`a receipt belongs to group '${grp}', not '${req.group}'`, {
        details: { input: 'receipts' },
      });
    }
    const r = await store.ack(grp, list);
    acked += r.acked.length;
    for (const b of r.batches) acked += b.offsets.length;
    await store.traceBatches(
      r.batches.map((b) => ({
        ...b,
        event: 'acked',
        grp: req.group,
        consumer: req.consumerId,
      })),
    );
    await store.trace(
      r.acked.map((a) => ({
        msgId: a.msgId,
        event: 'acked',
        grp: req.group,
        consumer: req.consumerId,
        deliveredAt: a.deliveredAt,
      })),
    );
  }
  streams.settled(req.group, req.topic, req.consumerId, refs.length);
  return { acked };
}

/** Fails receipts: each is retried after its backoff, or dead-lettered after the last try. */
export async function nack(
  all: MessageStore,
  streams: PushStreams,
  req: NackRequest,
): Promise<{ retried: number; dead: number }> {
  const store = await all.scopedTo(req.topic);
  await checkConsumeSecret(store, req.topic, req.secret);
  if (!Array.isArray(req.receipts) || req.receipts.length > 1000) {
    throw new InvalidArgumentError('receipts must be an array of at most 1000 receipts', {
      details: { input: 'receipts' },
    });
  }
  const settings = await store.group(req.group);
  if (settings === undefined) {
    throw new PeakError(
      ErrorCodes.NOT_FOUND,
      `consumer group '${req.group}' has never received; nothing to nack`,
      {
        details: { group: req.group },
      },
    );
  }
  const topic = await store.requireTopic(req.topic);
  const refs = req.receipts.map(decodeReceipt);
  checkReceiptTopics(req, refs);
  await checkReceiptSecrets(store, req.topic, req.secret, refs);
  const reason = typeof req.reason === 'string' ? req.reason.slice(0, 500) : 'consumer failed';
  const delay = typeof req.delayMs === 'number' && req.delayMs >= 0 ? req.delayMs : undefined;
  let retried = 0;
  let dead = 0;
  for (const receipt of req.receipts) {
    const ref = decodeReceipt(receipt);
    const inPlace = settings.broadcasting || (topic.ordered && ref.topic === req.topic);
    const r = await store.nack(ref.grp, req.group, ref, settings, inPlace, reason, delay);
    if (r.outcome === 'unknown' || r.msgId === undefined) continue;
    if (r.outcome === 'dead') dead++;
    else retried++;
    await store.trace([
      {
        msgId: r.msgId,
        event: r.outcome === 'dead' ? 'dead-lettered' : 'failed',
        grp: req.group,
        consumer: req.consumerId,
        detail:
          r.outcome === 'dead'
            ? `after attempt ${r.attempt}: ${reason}`
            : `attempt ${r.attempt}: ${reason}; retry in ${r.delayMs} ms`,
        deliveredAt: r.deliveredAt ?? null,
      },
    ]);
  }
  streams.settled(req.group, req.topic, req.consumerId, req.receipts.length);
  return { retried, dead };
}
