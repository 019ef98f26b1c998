/**
 * The message broker that runs inside `peak server`. It validates and stores what
 * producers send, hands messages to consumer groups (long poll or streamed push), applies
 * acks, nacks, retries and dead-lettering, moves due delayed / retried / committed
 * transactional messages into their queues (the relay), asks producers about unresolved
 * half messages, keeps daily partitions and drops expired ones, and counts TPS and delivery
 * latency. Each stage is a file of `broker/`:
 *
 * - produce: `produce.ts`, its validation `message-validation.ts`, topics `topic-admin.ts`;
 * - consume: `consume.ts` (long polls, with `long-poll-waiters.ts`), `push-streams.ts`;
 * - `acks-and-nacks.ts` (retry and dead-lettering happen in the store's nack);
 * - `pending-relay.ts`; `half-messages.ts` (check-backs); `partition-upkeep.ts`;
 * - `broker-stats.ts`; `message-query.ts`, `dead-letter-admin.ts`, `offset-reset.ts`;
 * - `cross-node-signals.ts`: LISTEN/NOTIFY between nodes.
 *
 * With `databases`, topics are placed on several PostgreSQL databases
 * (`placed-message-store.ts`); without, everything is on the node's own.
 *
 * Nodes are stateless: every fact lives in the {@link MessageStore} (PostgreSQL); the only
 * in-memory state is waiters for long polls (woken by LISTEN/NOTIFY from any node) and
 * monitoring counters for this node.
 */
import type pg from 'pg';
import { IdGenerator } from '../../core/id-generator.js';
import type { Logger } from '../../core/logger.js';
import type { ReceivedMessage } from '../message-types.js';
import { type AckRequest, ack, type NackRequest, nack } from './broker/acks-and-nacks.js';
import {
  type BrokerOptions,
  type BrokerRunState,
  resolveBrokerOptions,
} from './broker/broker-options.js';
import { BrokerStats, type BrokerStatsReport } from './broker/broker-stats.js';
import { type ReceiveRequest, Receiver } from './broker/consume.js';
import { CrossNodeSignals } from './broker/cross-node-signals.js';
import { type DeadLetter, listDeadLetters, resendDeadLetters } from './broker/dead-letter-admin.js';
import { HalfMessages } from './broker/half-messages.js';
import { LongPollWaiters } from './broker/long-poll-waiters.js';
import {
  describeMessage,
  type MessageDescription,
  type MessagePage,
  type MessageQuery,
  queryMessages,
} from './broker/message-query.js';
import { MessageValidator, SIGNED_MESSAGE_WINDOW_MS } from './broker/message-validation.js';
import { resetOffset } from './broker/offset-reset.js';
import { PartitionUpkeep } from './broker/partition-upkeep.js';
import { PendingRelay } from './broker/pending-relay.js';
import { BatchProducer } from './broker/produce.js';
import { PushStreams } from './broker/push-streams.js';
import { ReplayGuard } from './broker/replay-guard.js';
import { type CreatedTopic, type CreateTopicRequest, createTopic } from './broker/topic-admin.js';
import { type TrafficCounters, trafficCountersOf } from './broker/traffic-counters.js';
import type { MessageStore } from './message-store.js';
import { PgMessageStore } from './pg-message-store.js';
import { MAIN_DATABASE, PlacedMessageStore } from './placed-message-store.js';

export type { BrokerOptions } from './broker/broker-options.js';
export type { ReceiveRequest } from './broker/consume.js';

/**
 * The store a broker over several databases keeps, by its node's pool: monitoring (the
 * backlog on `/metrics`, alerts) reads every database's backlog through it.
 */
const backlogSources = new WeakMap<pg.Pool, PlacedMessageStore>();

/** The placed store of the broker running on `pool`, if it has several databases. */
export function placedStoreOf(pool: pg.Pool): PlacedMessageStore | undefined {
  return backlogSources.get(pool);
}

/** The broker of one control-plane node. */
export class Broker {
  /** Where every fact lives. */
  readonly store: MessageStore;
  readonly #o: Required<BrokerOptions>;
  readonly #state: BrokerRunState = { stopped: false, closing: false };
  readonly #signals: CrossNodeSignals;
  readonly #waiters = new LongPollWaiters();
  readonly #stats: BrokerStats;
  readonly #traffic: TrafficCounters;
  readonly #producer: BatchProducer;
  readonly #halves: HalfMessages;
  readonly #receiver: Receiver;
  readonly #streams: PushStreams;
  readonly #relay: PendingRelay;
  readonly #upkeep: PartitionUpkeep;
  /** The node's own pool (`main`). */
  readonly #pool: pg.Pool;

  private constructor(
    pool: pg.Pool,
    store: MessageStore,
    signals: CrossNodeSignals,
    logger: Logger,
    options: Required<BrokerOptions>,
    workerId: number,
  ) {
    this.store = store;
    this.#pool = pool;
    this.#traffic = trafficCountersOf(pool);
    this.#stats = new BrokerStats(this.#traffic);
    this.#signals = signals;
    this.#o = options;
    const validator = new MessageValidator(
      store,
      new IdGenerator({ workerId }),
      this.#stats,
      logger,
    );
    // One guard for sends and half messages: a nonce is claimed once per topic by either.
    const replays = new ReplayGuard(pool, 2 * SIGNED_MESSAGE_WINDOW_MS);
    this.#producer = new BatchProducer(store, validator, this.#stats, replays);
    this.#halves = new HalfMessages(store, validator, replays, options);
    this.#receiver = new Receiver(store, this.#waiters, this.#stats, this.#state, options);
    this.#streams = new PushStreams(store, this.#receiver, this.#state);
    this.#relay = new PendingRelay(
      store,
      this.#stats,
      logger,
      this.#state,
      options.relayIntervalMs,
    );
    this.#upkeep = new PartitionUpkeep(store, options.retentionMs, logger);
    this.store.onAppend = (topic) => this.#appended(topic);
    this.store.onPending = (dueAt) => this.#relay.wakeAt(dueAt);
  }

  /** Wakes local long polls at once (after the append commits) and other nodes' via NOTIFY. */
  #appended(topic: string): void {
    setImmediate(() => this.#waiters.wake(topic));
    this.#signals.appended(topic);
  }

  /** Starts the broker on a migrated database: partitions, LISTEN, relay and upkeep. */
  static async start(pool: pg.Pool, logger: Logger, options: BrokerOptions = {}): Promise<Broker> {
    const o = resolveBrokerOptions(options);
    const store =
      Object.keys(o.databases).length === 0
        ? new PgMessageStore(pool, logger)
        : await PlacedMessageStore.open(pool, logger, o.databases);
    if (store instanceof PlacedMessageStore) backlogSources.set(pool, store);
    const workerId = await store.nextWorkerId();
    const broker = new Broker(pool, store, new CrossNodeSignals(pool, logger), logger, o, workerId);
    await broker.#upkeep.runNow();
    await broker.#signals.listen({
      appended: (topic) => broker.#waiters.wake(topic),
      left: (consumer) => {
        broker.#receiver.forgetLive();
        broker.#waiters.wakeLeaving(consumer);
      },
      pending: () => broker.#relay.kick(),
    });
    broker.#relay.start();
    broker.#upkeep.start();
    broker.#relay.kick();
    return broker;
  }

  /** Stops loops and wakes every long poll (they return what they have). */
  async stop(): Promise<void> {
    this.#state.stopped = true;
    this.#relay.halt();
    this.#upkeep.stop();
    this.#waiters.wakeEvery();
    await this.#relay.idle();
    await this.store.flushTrace();
    this.#signals.close();
    if (this.store instanceof PlacedMessageStore) {
      if (backlogSources.get(this.#pool) === this.store) backlogSources.delete(this.#pool);
      await this.store.close();
    }
  }

  /** The message databases topics may be placed on, `main` (the node's own) first. */
  databases(): string[] {
    return this.store instanceof PlacedMessageStore ? this.store.databases : [MAIN_DATABASE];
  }

  /** The pool of the database `topic` is on, and of every database (topic and group removal). */
  async poolOf(topic: string, main: pg.Pool): Promise<pg.Pool> {
    return this.store instanceof PlacedMessageStore ? this.store.poolOf(topic) : main;
  }

  /** Forgets where a removed topic was, so a topic made again by that name is looked up anew. */
  async forgetTopic(topic: string): Promise<void> {
    if (this.store instanceof PlacedMessageStore) await this.store.forget(topic);
  }

  /** Ends every long poll now (the server is closing); they return what they have. */
  wakeAll(): void {
    this.#state.closing = true;
    this.#waiters.wakeEvery();
  }

  /** Creates a topic; `secured` generates produce and consume secrets (returned once). */
  createTopic(spec: CreateTopicRequest): Promise<CreatedTopic> {
    return createTopic(this.store, this.#o.defaultMaxBodyBytes, spec);
  }

  /**
   * Validates and stores a batch: all of it or none. Due messages go straight to their
   * queues; later ones to the pending table. Resolves once PostgreSQL has committed.
   */
  async send(topic: string, messages: unknown): Promise<{ ids: string[]; topic: string }> {
    const sent = await this.#producer.send(topic, messages);
    this.#traffic.add('produced', sent.topic, null, sent.ids.length);
    return sent;
  }

  /** Stores a half message: invisible until committed; checked back if left unresolved. */
  sendHalf(topic: string, message: unknown, producerGroup: unknown): Promise<{ id: string }> {
    return this.#halves.send(topic, message, producerGroup);
  }

  /** The topic of half message `id` while it waits for commit or rollback, else undefined. */
  halfTopic(id: string): Promise<string | undefined> {
    return this.#halves.topicOf(id);
  }

  /** Resolves a half message: commit delivers it, rollback discards it. */
  endHalf(id: string, action: 'commit' | 'rollback', by: string, secret?: string): Promise<void> {
    return this.#halves.end(id, action, by, secret);
  }

  /**
   * Half messages of a producer group due for a check-back (of topics `allowTopic` accepts);
   * too-old ones roll back.
   */
  dueChecks(
    producerGroup: string,
    max: number,
    secrets: Readonly<Record<string, string>> = {},
    allowTopic?: (topic: string) => boolean,
  ): Promise<ReceivedMessage[]> {
    return this.#halves.dueChecks(producerGroup, max, secrets, allowTopic);
  }

  /** Long-poll receive: messages from the queues this consumer owns, or [] after waitMs. */
  receive(req: ReceiveRequest): Promise<ReceivedMessage[]> {
    return this.#receiver.receive(req);
  }

  /**
   * Checks a push stream's request before its response starts (afterwards errors can no
   * longer be answered with a status): names, the consume secret, the topic.
   */
  openStream(req: Omit<ReceiveRequest, 'max' | 'waitMs'>): Promise<void> {
    return this.#receiver.openStream(req);
  }

  /**
   * Streamed push: hands deliveries to `send` as they become available, with at most
   * `inflight` of this consumer's deliveries unacknowledged at once, until `signal` aborts,
   * the consumer leaves or the server closes. `idle` is called about once a second while
   * nothing is sent (a keep-alive).
   */
  stream(
    req: Omit<ReceiveRequest, 'max' | 'waitMs'>,
    inflight: number,
    send: (batch: ReceivedMessage[]) => Promise<void>,
    signal: AbortSignal,
    idle: () => void,
  ): Promise<void> {
    return this.#streams.stream(req, inflight, send, signal, idle);
  }

  /** Acks receipts of one subscription. */
  async ack(req: AckRequest): Promise<{ acked: number }> {
    const r = await ack(this.store, this.#streams, req);
    this.#traffic.add('acked', req.topic, req.group, r.acked);
    return r;
  }

  /** Fails receipts: each is retried after its backoff, or dead-lettered after the last try. */
  async nack(req: NackRequest): Promise<{ retried: number; dead: number }> {
    const r = await nack(this.store, this.#streams, req);
    this.#traffic.add('nacked', req.topic, req.group, r.retried + r.dead);
    this.#traffic.add('dead_lettered', req.topic, req.group, r.dead);
    return r;
  }

  /** A consumer leaves its group: its queues go to the others at once. */
  async leave(
    group: string,
    topic: string,
    consumerId: string,
    broadcasting: boolean,
  ): Promise<void> {
    const consumer = await this.#receiver.leave(group, topic, consumerId, broadcasting);
    // Ends this consumer's long poll on whichever node holds it.
    await this.#signals.left(consumer);
  }

  /** Everything known about one message id: stored copies, pending copy, DLQ, trace. */
  describe(id: string): Promise<MessageDescription> {
    return describeMessage(this.store, id);
  }

  /** One page of messages by key, or by topic + tag + time range. */
  query(q: MessageQuery): Promise<MessagePage> {
    return queryMessages(this.store, q);
  }

  /** Dead letters of a group. */
  dlq(group: string, limit: number): Promise<DeadLetter[]> {
    return listDeadLetters(this.store, group, limit);
  }

  /** Resends dead letters to the group (ids, or all). */
  resendDlq(group: string, ids: unknown): Promise<{ resent: string[] }> {
    return resendDeadLetters(this.store, group, ids);
  }

  /** Moves a group's offsets on a topic to the first message stored at or after `at`. */
  resetOffset(
    group: string,
    topic: string,
    at: number,
  ): Promise<{ queueId: number; offset: string }[]> {
    return resetOffset(this.store, this.#o.retentionMs, group, topic, at);
  }

  /** Monitoring: TPS in/out and delivery latency per topic (this node), backlog per group. */
  stats(): Promise<BrokerStatsReport> {
    return this.#stats.report(this.store);
  }
}
