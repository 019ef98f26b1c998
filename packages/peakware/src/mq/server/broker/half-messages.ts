/**
 * Half messages (transactional sends for local transactions outside the broker's
 * database): a half message is stored invisible, then the producer commits (it is delivered)
 * or rolls back (discarded). One left unresolved is offered for a check-back to its
 * producer group every interval, and rolled back after the last check. A secured topic's
 * half messages are signed and fresh like its sends, and their nonces are claimed in the
 * same table (replay-guard.ts), so a captured half message is refused as a half message and
 * as a send; they are shown, committed and rolled back only with its produce secret. Writes
 * and commits are group-committed (core/group-commit.ts): one WAL flush per batch.
 */
import { ErrorCodes, InvalidArgumentError, PeakError } from '../../../core/errors.js';
import { GroupCommit } from '../../../core/group-commit.js';
import type { ReceivedMessage, WireMessage } from '../../message-types.js';
import type { PendingInput } from '../message-records.js';
import type { MessageStore } from '../message-store.js';
import type { BrokerOptions } from './broker-options.js';
import type { MessageValidator } from './message-validation.js';
import { checkName } from './name-check.js';
import type { ReplayGuard } from './replay-guard.js';
import { secretMatches } from './topic-secrets.js';

/** The largest id a PostgreSQL bigint holds. */
const MAX_BIGINT = 9_223_372_036_854_775_807n;

/** The check-back settings a {@link HalfMessages} runs with. */
type HalfSettings = Required<
  Pick<BrokerOptions, 'halfCheckAfterMs' | 'halfCheckIntervalMs' | 'halfMaxChecks'>
>;

/** Half messages: send, commit or roll back, check-backs. */
export class HalfMessages {
  readonly #store: MessageStore;
  readonly #validator: MessageValidator;
  readonly #replays: ReplayGuard;
  readonly #o: HalfSettings;
  /** Half messages and their commits, group-committed (one WAL flush per batch). */
  readonly #halfWrites = new GroupCommit<PendingInput & { producerGroup: string }, undefined>(
    async (rows) => {
      await this.#store.addHalves(rows);
      return rows.map(() => undefined);
    },
  );
  readonly #halfCommits = new GroupCommit<string, boolean>((ids) => this.#store.commitHalves(ids));

  constructor(
    store: MessageStore,
    validator: MessageValidator,
    replays: ReplayGuard,
    settings: HalfSettings,
  ) {
    this.#store = store;
    this.#validator = validator;
    this.#replays = replays;
    this.#o = settings;
  }

  /** Stores a half message: invisible until committed; checked back if left unresolved. */
  async send(topic: string, message: unknown, producerGroup: unknown): Promise<{ id: string }> {
    checkName('topic', topic);
    const pgroup = checkName('producerGroup', producerGroup);
    const now = Date.now();
    const m = await this.#validator.prepare(topic, message, 0, now);
    if ((await this.#store.requireTopic(topic)).produceSecret !== null) {
      // Signed and fresh (checked above): its nonce is taken once, or it is a replay.
      await this.#replays.claim(topic, [String((message as WireMessage).nonce)], now);
    }
    await this.#halfWrites.submit({
      ...m,
      deliverAt: new Date(Date.now() + this.#o.halfCheckAfterMs),
      producerGroup: pgroup,
    });
    await this.#store.trace([
      { msgId: m.msgId.toString(), event: 'half', detail: `producer group ${pgroup}` },
    ]);
    return { id: m.msgId.toString() };
  }

  /** The topic of half message `id` while it waits for commit or rollback, else undefined. */
  async topicOf(id: string): Promise<string | undefined> {
    if (!/^\d{1,19}$/.test(id) || BigInt(id) > MAX_BIGINT)
      throw new InvalidArgumentError(`not a message id: ${id}`, { details: { input: 'id' } });
    return (await this.#store.pendingById(id)).find((p) => p.kind === 'half')?.topic;
  }

  /** Resolves a half message: commit delivers it, rollback discards it. */
  async end(id: string, action: 'commit' | 'rollback', by: string, secret?: string): Promise<void> {
    if (!/^\d{1,19}$/.test(id) || BigInt(id) > MAX_BIGINT)
      throw new InvalidArgumentError(`not a message id: ${id}`, { details: { input: 'id' } });
    const half = (await this.#store.pendingById(id)).find((p) => p.kind === 'half');
    const topic = half === undefined ? undefined : await this.#store.topic(half.topic);
    if (topic !== undefined && !secretMatches(topic.produceSecret, secret)) {
      throw new PeakError(
        ErrorCodes.MQ_FORBIDDEN,
        `committing or rolling back a half message of topic '${topic.name}' needs its produce secret ('secret' in the body)`,
        { details: { topic: topic.name } },
      );
    }
    const ok =
      action === 'commit' ? await this.#halfCommits.submit(id) : await this.#store.rollbackHalf(id);
    if (!ok) {
      throw new PeakError(
        ErrorCodes.MQ_UNKNOWN_TRANSACTION,
        `no half message ${id} is waiting: it was already committed or rolled back, or never sent`,
        { details: { id } },
      );
    }
    await this.#store.trace([
      { msgId: id, event: action === 'commit' ? 'committed' : 'rolled-back', detail: by },
    ]);
  }

  /**
   * Half messages of a producer group due for a check-back; too-old ones roll back. Those of
   * topics `allowTopic` refuses (the caller's grants) are neither shown nor touched.
   */
  async dueChecks(
    producerGroup: string,
    max: number,
    secrets: Readonly<Record<string, string>> = {},
    allowTopic: (topic: string) => boolean = () => true,
  ): Promise<ReceivedMessage[]> {
    checkName('producerGroup', producerGroup);
    const rows = await this.#store.dueChecks(producerGroup, max, this.#o.halfCheckIntervalMs);
    const out: ReceivedMessage[] = [];
    for (const r of rows) {
      if (!allowTopic(r.topic)) continue;
      // A half message of a secured topic is shown only to a caller holding its secret.
      const topic = await this.#store.topic(r.topic);
      if (topic !== undefined && !secretMatches(topic.produceSecret, secrets[r.topic])) continue;
      if (r.check_count > this.#o.halfMaxChecks) {
        await this.#store.rollbackHalf(r.msg_id);
        await this.#store.trace([
          {
            msgId: r.msg_id,
            event: 'rolled-back',
            detail: `unresolved after ${this.#o.halfMaxChecks} checks`,
          },
        ]);
        continue;
      }
      await this.#store.trace([
        { msgId: r.msg_id, event: 'check-back', detail: `check ${r.check_count}` },
      ]);
      out.push({
        id: r.msg_id,
        topic: r.topic,
        queueId: -1,
        queueOffset: '-1',
        tag: r.tag,
        keys: r.keys,
        group: r.msg_group,
        properties: r.props,
        body: r.body.toString('base64'),
        bornAt: r.born_at.getTime(),
        storedAt: r.born_at.getTime(),
        reconsumeTimes: r.check_count,
        receipt: '',
      });
    }
    return out;
  }
}
