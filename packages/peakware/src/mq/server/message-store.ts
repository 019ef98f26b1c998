/**
 * The `MessageStore` seam: every fact the broker keeps (topics, the message log, consumer
 * groups and their deliveries, the pending table, dead letters, trace events) goes through
 * this interface, so broker nodes hold no state of their own beyond long-poll waiters and
 * counters. {@link BacklogReader} is its read-only slice for monitoring. The implementation
 * is PostgreSQL (`PgMessageStore`, pg-message-store.ts).
 */
import type {
  AckResult,
  AppendInput,
  AppendResult,
  BatchTraceEvent,
  ClaimRequest,
  DeadLetterRow,
  DeadLetterState,
  Delivery,
  DeliveryRef,
  GroupSettings,
  InflightFirst,
  MessagePosition,
  MessageRow,
  NackResult,
  PendingInput,
  PendingRow,
  QueueBacklog,
  QueueRef,
  QueueWork,
  Subscription,
  TopicRecord,
  TopicSpec,
  TraceEvent,
  TraceRow,
} from './message-records.js';

/** Backlog per consumer group and topic: what monitoring reads (stats, /metrics, alerts). */
export interface BacklogReader {
  /** Every (group, topic) pair that has offsets. */
  subscriptions(): Promise<Subscription[]>;
  /** Backlog per queue of a group on a topic: stored but not yet acked, and in flight. */
  backlog(grp: string, topic: string): Promise<QueueBacklog[]>;
}

/** Where the broker keeps every message and every delivery's state. */
export interface MessageStore extends BacklogReader {
  /** Called after messages were appended to a topic, before commit (the broker wakes long polls). */
  onAppend: ((topic: string) => void) | undefined;
  /** Called after this node committed pending rows, with the earliest due (the relay's wake-up). */
  onPending: ((dueAt: Date) => void) | undefined;
  /** A worker id no other node sharing this store has, for message ids. */
  nextWorkerId(): Promise<number>;
  /**
   * The store as one subscription sees it: `topic`'s, where a consumer group's retry topic
   * (`%RETRY%<group>`) is the retry topic beside `topic` (a store over several databases
   * keeps one per database, as RocketMQ keeps one per broker). A store over one database
   * answers itself.
   */
  scopedTo(topic: string): Promise<MessageStore>;

  /** Creates a topic and its queues; an existing topic is returned unchanged. */
  createTopic(spec: TopicSpec): Promise<{ record: TopicRecord; created: boolean }>;
  /** A topic by name (cached for a second), or undefined. */
  topic(name: string): Promise<TopicRecord | undefined>;
  /** A topic, or a PEAK_MQ_UNKNOWN_TOPIC error naming it. */
  requireTopic(name: string): Promise<TopicRecord>;
  /** Every topic with its queue depth (sum of next offsets) and the database it is on. */
  listTopics(): Promise<(TopicRecord & { messages: number; database: string })[]>;
  /** The database `topic` is on (`main`: the node's own; see placed-message-store.ts). */
  databaseOf(topic: string): Promise<string>;
  /** Makes sure a group's retry topic exists. */
  ensureRetryTopic(grp: string): Promise<void>;

  /** Appends messages (a group's to its queue, the rest round-robin), committed on return. */
  append(items: readonly AppendInput[]): Promise<AppendResult[]>;
  /** Appends `due` and puts `later` into the pending table, in one transaction. */
  appendAndDelay(due: readonly AppendInput[], later: readonly PendingInput[]): Promise<void>;

  /** Moves due delayed and outbox messages without a message group of one topic, in bulk. */
  relayDueBulk(limit: number): Promise<{ moved: number; topic: string | null }>;
  /** Moves any due pending rows (not half) into their queues, oldest first; 0 when locked. */
  relayDue(limit: number): Promise<{ moved: number; rows: PendingRow[] }>;
  /** The earliest due time among pending rows (not half), or undefined. */
  nextDue(): Promise<Date | undefined>;
  /** A pending (delayed, retry, outbox, half) copy of a message, if any. */
  pendingById(id: string): Promise<PendingRow[]>;

  /** Stores half messages, invisible until committed, first checked back at `deliverAt`. */
  addHalves(items: readonly PendingInput[]): Promise<void>;
  /** Commits half messages in one statement; false for an id that is not a waiting half. */
  commitHalves(ids: readonly string[]): Promise<boolean[]>;
  /** Rolls a half message back: deleted, never delivered. False when unknown. */
  rollbackHalf(id: string): Promise<boolean>;
  /** A producer group's half messages due for a check-back, each pushed back by `intervalMs`. */
  dueChecks(producerGroup: string, limit: number, intervalMs: number): Promise<PendingRow[]>;

  /** Creates or updates a consumer group's settings. */
  upsertGroup(name: string, s: GroupSettings): Promise<void>;
  /** A group's settings, or undefined. */
  group(name: string): Promise<GroupSettings | undefined>;
  /** Records that a consumer is alive and returns the live consumers of (group, topic). */
  heartbeat(grp: string, topic: string, consumerId: string, sessionMs: number): Promise<string[]>;
  /** Removes a consumer; its queues move to the others on their next receive. */
  leave(grp: string, topic: string, consumerId: string): Promise<void>;
  /** Moves a group to the first message stored at or after `at` in every queue of `topic`. */
  resetOffsets(
    grp: string,
    topic: string,
    at: Date,
  ): Promise<{ queueId: number; offset: string }[]>;

  /** Of `queues`, those with something to hand out to `grp` now, and when one may have next. */
  queuesWithWork(grp: string, queues: readonly QueueRef[], window: number): Promise<QueueWork>;
  /** Hands out up to `max` deliveries of one queue; nothing when another claim holds it. */
  claim(req: ClaimRequest): Promise<Delivery[]>;
  /** Deliveries a consumer of `grp` holds now (delivered, not acked, not timed out). */
  inflightOfConsumer(grp: string, consumerId: string): Promise<number>;
  /** Acks deliveries; in ordered topics the next message of each group becomes visible. */
  ack(grp: string, refs: readonly DeliveryRef[]): Promise<AckResult>;
  /** Fails a delivery: retried (via the retry topic, or in place) or dead-lettered. */
  nack(
    grp: string,
    deadLetterGroup: string,
    ref: DeliveryRef,
    settings: GroupSettings,
    inPlace: boolean,
    reason: string,
    delayOverrideMs?: number,
  ): Promise<NackResult>;

  /** Dead-lettered messages of a group, newest first. */
  listDlq(grp: string, limit: number): Promise<DeadLetterRow[]>;
  /** Sends dead-lettered messages back to the group (through its retry topic), now. */
  resendDlq(grp: string, ids: readonly string[] | 'all'): Promise<string[]>;
  /** Every group's dead-lettered copy of a message. */
  dlqById(id: string): Promise<DeadLetterState[]>;

  /** Stored copies of a message by id (the original first, then retry copies). */
  byId(id: string): Promise<MessageRow[]>;
  /** Messages carrying a key, newest first, after `after` in that order when given. */
  byKey(
    key: string,
    topic: string | undefined,
    limit: number,
    after?: MessagePosition,
  ): Promise<(MessageRow & { stored_us: string })[]>;
  /** Messages of a topic stored in [from, to), optionally with one tag, oldest first, after `after`. */
  byTime(
    topic: string,
    tag: string | undefined,
    from: Date,
    to: Date,
    limit: number,
    after?: MessagePosition,
  ): Promise<(MessageRow & { stored_us: string })[]>;
  /** First deliveries of these stored copies still in flight (no trace row yet). */
  inflightFirst(
    copies: readonly { topic: string; queue_id: number; queue_offset: string }[],
  ): Promise<InflightFirst[]>;

  /** Records trace events (buffered, best effort: never fails the caller). */
  trace(events: readonly TraceEvent[]): Promise<void>;
  /** Records batch trace events, one row each (buffered, best effort). */
  traceBatches(events: readonly BatchTraceEvent[]): Promise<void>;
  /** Writes buffered trace events now. */
  flushTrace(): Promise<void>;
  /** Trace events of a message (its own, and batch events naming one of `copies`), oldest first. */
  traceOf(
    id: string,
    copies: readonly { topic: string; queue_id: number; queue_offset: string }[],
  ): Promise<TraceRow[]>;

  /** Creates the coming days' partitions and drops those past `retentionMs`. */
  maintainPartitions(
    retentionMs: number,
    aheadDays?: number,
  ): Promise<{ created: string[]; dropped: string[] }>;
}
