/**
 * What a producer's message must be before it is stored: an object with a base64 body,
 * tag, keys, properties, message group and due time within their bounds, a body within the
 * topic's limit, a message group on an ordered topic, and on a secured topic an HMAC
 * signature by the topic's produce secret. Internal topics take no messages except the
 * shadow topics of stress traffic.
 */
import { ErrorCodes, InvalidArgumentError, PeakError } from '../../../core/errors.js';
import type { IdGenerator } from '../../../core/id-generator.js';
import type { Logger } from '../../../core/logger.js';
import { verifyMessage } from '../../message-signature.js';
import { MAX_DELAY_MS, type WireMessage } from '../../message-types.js';
import type { AppendInput, TopicRecord } from '../message-records.js';
import type { MessageStore } from '../message-store.js';
import type { BrokerStats } from './broker-stats.js';

/** How far a signed message's `signedAt` may be from the broker's clock, ms (5 minutes). */
export const SIGNED_MESSAGE_WINDOW_MS = 5 * 60_000;

/**
 * Refuses a signed message without a nonce and signing time, or signed outside the window
 * (PEAK_MQ_REPLAYED): a captured message cannot be sent again later, and within the window
 * its nonce is claimed once (replay-guard.ts).
 */
function checkFreshness(
  where: string,
  topic: string,
  nonce: string | undefined,
  signedAt: number | undefined,
  now: number,
  windowMs: number,
): void {
  if (nonce === undefined || !/^[A-Za-z0-9_-]{8,64}$/.test(nonce) || signedAt === undefined) {
    throw new PeakError(
      ErrorCodes.MQ_BAD_SIGNATURE,
      `${where} on secured topic '${topic}' has no nonce or signedAt: sign it with a current Producer (the signed form carries both, so a replay can be refused)`,
      { details: { input: `${where}.nonce`, topic } },
    );
  }
  if (Math.abs(now - signedAt) > windowMs) {
    throw new PeakError(
      ErrorCodes.MQ_REPLAYED,
      `${where} on secured topic '${topic}' was signed at ${new Date(signedAt).toISOString()}, more than ${windowMs / 1000} s from the broker's clock: a replay, or a clock that is off; the whole batch was refused`,
      { details: { input: `${where}.signedAt`, topic, reason: 'outside-window' } },
    );
  }
}

/** Checks incoming messages and turns them into appendable ones. */
export class MessageValidator {
  readonly #store: MessageStore;
  readonly #ids: IdGenerator;
  readonly #stats: BrokerStats;
  readonly #logger: Logger;

  readonly #replayWindowMs: number;

  /** `replayWindowMs`: how far a signed message's time may be from now (default 5 min). */
  constructor(
    store: MessageStore,
    ids: IdGenerator,
    stats: BrokerStats,
    logger: Logger,
    replayWindowMs: number = SIGNED_MESSAGE_WINDOW_MS,
  ) {
    this.#store = store;
    this.#ids = ids;
    this.#stats = stats;
    this.#logger = logger;
    this.#replayWindowMs = replayWindowMs;
  }

  /**
   * Checks `raw` (the `index`th message of a batch for `topicName`, sent at `now`) and gives
   * it an id: an InvalidArgumentError names the field; a body over the topic's limit is
   * PEAK_MQ_MESSAGE_TOO_LARGE; a secured topic's message without a valid signature is
   * PEAK_MQ_BAD_SIGNATURE (logged and counted). `known`: the topic, when the caller has it.
   */
  async prepare(
    topicName: string,
    raw: unknown,
    index: number,
    now: number,
    known?: TopicRecord,
  ): Promise<AppendInput & { deliverAt: number }> {
    const where = `messages[${index}]`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      throw new InvalidArgumentError(`${where} must be an object with at least 'body' (base64)`, {
        details: { input: where },
      });
    }
    const m = raw as Partial<Record<keyof WireMessage, unknown>>;
    if (typeof m.body !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(m.body)) {
      throw new InvalidArgumentError(`${where}.body must be a base64 string`, {
        details: { input: `${where}.body` },
      });
    }
    const str = (v: unknown, field: string, max: number): string | null => {
      if (v === undefined || v === null) return null;
      if (typeof v !== 'string' || v.length === 0 || v.length > max) {
        throw new InvalidArgumentError(
          `${where}.${field} must be a non-empty string of at most ${max} characters`,
          {
            details: { input: `${where}.${field}` },
          },
        );
      }
      return v;
    };
    const tag = str(m.tag, 'tag', 128);
    const group = str(m.group, 'group', 256);
    let keys: string[] = [];
    if (m.keys !== undefined) {
      if (
        !Array.isArray(m.keys) ||
        m.keys.length > 32 ||
        !m.keys.every((k) => typeof k === 'string' && k.length > 0 && k.length <= 256)
      ) {
        throw new InvalidArgumentError(`${where}.keys must be up to 32 non-empty strings`, {
          details: { input: `${where}.keys` },
        });
      }
      keys = m.keys as string[];
    }
    const props: Record<string, string> = {};
    if (m.properties !== undefined) {
      if (
        typeof m.properties !== 'object' ||
        m.properties === null ||
        Array.isArray(m.properties)
      ) {
        throw new InvalidArgumentError(`${where}.properties must be an object of strings`, {
          details: { input: `${where}.properties` },
        });
      }
      for (const [k, v] of Object.entries(m.properties)) {
        if (typeof v !== 'string' || k === '__proto__') {
          throw new InvalidArgumentError(`${where}.properties.${k} must be a string`, {
            details: { input: `${where}.properties` },
          });
        }
        props[k] = v;
      }
    }
    let deliverAt = now;
    if (m.deliverAt !== undefined) {
      if (typeof m.deliverAt !== 'number' || !Number.isFinite(m.deliverAt)) {
        throw new InvalidArgumentError(`${where}.deliverAt must be epoch ms`, {
          details: { input: `${where}.deliverAt` },
        });
      }
      if (m.deliverAt - now > MAX_DELAY_MS) {
        throw new InvalidArgumentError(
          `${where}.deliverAt is more than 40 days ahead; the longest delay is 40 days`,
          {
            details: { input: `${where}.deliverAt` },
          },
        );
      }
      deliverAt = Math.max(now, m.deliverAt);
    }
    const topic = known ?? (await this.#store.requireTopic(topicName));
    if (topic.internal && !topicName.startsWith('%SHADOW%')) {
      throw new InvalidArgumentError(`topic '${topicName}' is internal; send to the real topic`, {
        details: { input: 'topic' },
      });
    }
    const body = Buffer.from(m.body, 'base64');
    if (body.length > topic.maxBodyBytes) {
      throw new PeakError(
        ErrorCodes.MQ_MESSAGE_TOO_LARGE,
        `${where}.body is ${body.length} bytes; topic '${topicName}' takes at most ${topic.maxBodyBytes}`,
        { details: { input: `${where}.body`, bytes: body.length, limit: topic.maxBodyBytes } },
      );
    }
    if (topic.produceSecret !== null) {
      const signed = {
        topic: topicName.startsWith('%SHADOW%') ? topicName.slice('%SHADOW%'.length) : topicName,
        body: m.body,
        tag: tag ?? undefined,
        keys,
        group: group ?? undefined,
        properties: props,
        deliverAt: typeof m.deliverAt === 'number' ? m.deliverAt : undefined,
        nonce: typeof m.nonce === 'string' ? m.nonce : undefined,
        signedAt: typeof m.signedAt === 'number' ? m.signedAt : undefined,
      };
      if (
        !verifyMessage(
          topic.produceSecret,
          signed,
          typeof m.signature === 'string' ? m.signature : undefined,
        )
      ) {
        this.#stats.badSignature();
        this.#logger.warn(
          { topic: topicName, index, tag, keys },
          'mq: refused a message with a missing or bad signature',
        );
        throw new PeakError(
          ErrorCodes.MQ_BAD_SIGNATURE,
          `${where} has a missing or wrong HMAC signature for topic '${signed.topic}': it was changed in transit or signed with the wrong produce secret; the whole batch was refused`,
          { details: { input: `${where}.signature`, topic: signed.topic } },
        );
      }
      checkFreshness(where, signed.topic, signed.nonce, signed.signedAt, now, this.#replayWindowMs);
    }
    if (topic.ordered && group === null) {
      throw new InvalidArgumentError(
        `topic '${topicName}' is ordered: ${where} needs a 'group' (the ordering key)`,
        {
          details: { input: `${where}.group` },
        },
      );
    }
    return {
      topic: topicName,
      msgId: this.#ids.next(),
      tag,
      keys,
      group,
      props,
      body,
      bornAt: new Date(now),
      deliverAt,
    };
  }
}
