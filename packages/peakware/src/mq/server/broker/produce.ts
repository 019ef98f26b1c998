/**
 * Produce: a batch of 1-1000 messages is checked whole (message-validation.ts) and stored
 * whole, or refused whole. Due messages are appended to their queues, later ones go to the
 * pending table, in one transaction; a batch of stress traffic (every message carrying
 * `peak-stress`) goes to the topic's shadow topic, and may not mix with real messages. On a
 * secured topic every message's nonce is claimed once (replay-guard.ts).
 */
import { InvalidArgumentError } from '../../../core/errors.js';
import type { WireMessage } from '../../message-types.js';
import type { MessageStore } from '../message-store.js';
import type { BrokerStats } from './broker-stats.js';
import type { MessageValidator } from './message-validation.js';
import { checkName } from './name-check.js';
import type { ReplayGuard } from './replay-guard.js';
import { shadowTopicOf } from './topic-admin.js';

/** Stores producers' batches. */
export class BatchProducer {
  readonly #store: MessageStore;
  readonly #validator: MessageValidator;
  readonly #stats: BrokerStats;
  readonly #replays: ReplayGuard;

  constructor(
    store: MessageStore,
    validator: MessageValidator,
    stats: BrokerStats,
    replays: ReplayGuard,
  ) {
    this.#store = store;
    this.#validator = validator;
    this.#stats = stats;
    this.#replays = replays;
  }

  /**
   * Validates and stores a batch: all of it or none. Due messages go straight to their
   * queues; later ones to the pending table. Resolves once PostgreSQL has committed.
   */
  async send(topic: string, messages: unknown): Promise<{ ids: string[]; topic: string }> {
    checkName('topic', topic);
    if (!Array.isArray(messages) || messages.length === 0 || messages.length > 1000) {
      throw new InvalidArgumentError('messages must be an array of 1-1000 messages', {
        details: { input: 'messages' },
      });
    }
    const stress = messages.some(
      (m) =>
        typeof m === 'object' &&
        m !== null &&
        (m as WireMessage).properties?.['peak-stress'] === '1',
    );
    if (stress && !messages.every((m) => (m as WireMessage).properties?.['peak-stress'] === '1')) {
      throw new InvalidArgumentError(
        'a batch mixes stress-test and real messages; send them in separate batches',
        {
          details: { input: 'messages' },
        },
      );
    }
    const target = stress ? await shadowTopicOf(this.#store, topic) : topic;
    const now = Date.now();
    const record = await this.#store.requireTopic(target);
    const prepared = [];
    for (let i = 0; i < messages.length; i++)
      prepared.push(await this.#validator.prepare(target, messages[i], i, now, record));
    if (record.produceSecret !== null) {
      // Signed and fresh (checked above): each nonce is taken once, or it is a replay.
      await this.#replays.claim(
        topic,
        messages.map((m) => String((m as WireMessage).nonce)),
        now,
      );
    }
    const due = prepared.filter((m) => m.deliverAt <= now + 20);
    const later = prepared.filter((m) => m.deliverAt > now + 20);
    if (due.length > 0 && later.length === 0) {
      await this.#store.append(due);
    } else {
      await this.#store.appendAndDelay(
        due,
        later.map((m) => ({ ...m, deliverAt: new Date(m.deliverAt) })),
      );
    }
    if (due.length > 0) this.#stats.count(target, 'in', due.length);
    if (later.length > 0) {
      await this.#store.trace(
        later.map((m) => ({
          msgId: m.msgId.toString(),
          event: 'scheduled',
          detail: new Date(m.deliverAt).toISOString(),
        })),
      );
    }
    return { ids: prepared.map((m) => m.msgId.toString()), topic: target };
  }
}
