/**
 * The records the `MessageStore` seam (message-store.ts) speaks: topics, messages as
 * appended and as read back, consumer groups, deliveries, pending rows, dead letters, trace
 * events and backlog. Row types keep PostgreSQL's column names (`queue_id`, `born_at`, ...),
 * as the broker reads them.
 */

/** A topic's settings as stored. */
export interface TopicRecord {
  name: string;
  queues: number;
  ordered: boolean;
  internal: boolean;
  maxBodyBytes: number;
  produceSecret: string | null;
  consumeSecret: string | null;
  createdAt: Date;
}

/** What a topic is created with. */
export interface TopicSpec {
  name: string;
  /** The database it is placed on (a store with several; default the node's own, `main`). */
  database?: string;
  queues: number;
  ordered: boolean;
  internal?: boolean;
  maxBodyBytes: number;
  produceSecret: string | null;
  consumeSecret: string | null;
}

/** A message ready to be appended to a queue. */
export interface AppendInput {
  topic: string;
  msgId: bigint;
  tag: string | null;
  keys: readonly string[];
  group: string | null;
  props: Record<string, string>;
  body: Buffer;
  bornAt: Date;
  reconsume?: number;
  originTopic?: string | null;
}

/** A message for the pending table: due at `deliverAt` (a half message: first checked then). */
export type PendingInput = AppendInput & { deliverAt: Date; producerGroup?: string | null };

/** Where an appended message landed. */
export interface AppendResult {
  id: string;
  topic: string;
  queueId: number;
  queueOffset: string;
}

/** Where a stored message sits in query order: the cursor of a message query's pages. */
export interface MessagePosition {
  /** stored_at, epoch µs. */
  storedUs: string;
  topic: string;
  queueId: number;
  queueOffset: string;
}

/** A message row as read back. */
export interface MessageRow {
  topic: string;
  queue_id: number;
  queue_offset: string;
  msg_id: string;
  tag: string | null;
  keys: string[];
  msg_group: string | null;
  props: Record<string, string>;
  body: Buffer;
  born_at: Date;
  stored_at: Date;
  reconsume: number;
  origin_topic: string | null;
}

/** A consumer group's retry settings. */
export interface GroupSettings {
  broadcasting: boolean;
  maxRetries: number;
  backoffMs: number[];
  invisibleMs: number;
}

/** One queue of one topic. */
export interface QueueRef {
  topic: string;
  queueId: number;
}

/** Which queues have something to hand out now, and when one may have next. */
export interface QueueWork {
  ready: QueueRef[];
  /** When the next delivery in these queues now invisible becomes visible again. */
  nextVisibleAt: Date | undefined;
}

/** A delivery's place: its queue and offset. */
export type DeliveryRef = QueueRef & { offset: string };

/** What a claim of one queue asks for. */
export interface ClaimRequest {
  grp: string;
  queue: QueueRef;
  consumerId: string;
  max: number;
  window: number;
  tags: readonly string[] | null;
  startFrom: 'earliest' | 'latest';
  invisibleMs: number;
  ordered: boolean;
}

/**
 * A message row as read for delivery: its body is base64 text, encoded by PostgreSQL, since
 * that is how it leaves the broker (parsing bytea's hex text into bytes and encoding those
 * again took a fifth of the consume path's CPU in Node).
 */
export type DeliveredRow = Omit<MessageRow, 'body'> & { body: string };

/** A delivery handed to a consumer. */
export interface Delivery {
  message: DeliveredRow;
  deliveries: number;
  grp: string;
  /** The attempt before this one, when it ended unrecorded (not acked in time). */
  previous?: { at: Date; consumer: string | null };
}

/** Offsets of one claim row acked together, and when the claim delivered them. */
export interface AckedBatch {
  topic: string;
  queueId: number;
  offsets: string[];
  deliveredAt: Date;
}

/**
 * What acks removed: delivery rows (each message, and when its first delivery was, if it
 * was the first) and offsets of claim rows, a batch per claim row.
 */
export interface AckResult {
  acked: { msgId: string; deliveredAt: Date | null }[];
  batches: AckedBatch[];
}

/** What happened to one nacked or expired delivery. */
export type NackOutcome = 'retry' | 'dead' | 'unknown';

/** A nack's outcome, with the attempt it ended and (on a retry) the delay before the next. */
export interface NackResult {
  outcome: NackOutcome;
  msgId?: string;
  attempt?: number;
  delayMs?: number;
  deliveredAt?: Date | null;
}

/** A pending row (delayed, retry, outbox or half message). */
export interface PendingRow {
  seq: string;
  kind: 'delay' | 'outbox' | 'retry' | 'half';
  msg_id: string;
  topic: string;
  tag: string | null;
  keys: string[];
  msg_group: string | null;
  props: Record<string, string>;
  body: Buffer;
  born_at: Date;
  deliver_at: Date;
  reconsume: number;
  origin_topic: string | null;
  producer_group: string | null;
  check_count: number;
}

/** A dead-lettered message of a group, as listed. */
export type DeadLetterRow = Omit<
  MessageRow,
  'queue_id' | 'queue_offset' | 'stored_at' | 'origin_topic'
> & {
  dead_at: Date;
  reason: string | null;
};

/** A group's dead-lettered copy of one message, as a message's description shows it. */
export interface DeadLetterState {
  grp: string;
  dead_at: Date;
  reason: string | null;
  reconsume: number;
}

/** A trace event to record. */
export interface TraceEvent {
  msgId: string;
  event: string;
  grp?: string | null;
  consumer?: string | null;
  detail?: string | null;
  /** When it happened, if not now. */
  at?: Date;
  /**
   * On an ending event (acked, failed, dead-lettered): when the attempt it ends was
   * delivered, for a first delivery that got no trace row of its own.
   */
  deliveredAt?: Date | null;
}

/**
 * A trace event of a batch: the same event for offsets of one queue (acks of one claim
 * row), one row however many offsets, expanded when a message's trace is read.
 */
export interface BatchTraceEvent {
  topic: string;
  queueId: number;
  offsets: readonly string[];
  event: string;
  grp: string;
  consumer: string;
  deliveredAt: Date;
}

/** A recorded trace event, as read back. */
export interface TraceRow {
  at: Date;
  event: string;
  grp: string | null;
  consumer: string | null;
  detail: string | null;
  delivered_at: Date | null;
}

/** A first delivery still in flight (it has no trace row yet). */
export interface InflightFirst {
  grp: string;
  consumer_id: string | null;
  delivered_at: Date;
}

/** A consumer group's subscription to a topic (it has offsets there). */
export interface Subscription {
  grp: string;
  topic: string;
}

/** Backlog of one queue for one group: stored but not yet acked, and how much is in flight. */
export interface QueueBacklog {
  queueId: number;
  maxOffset: string;
  committed: string;
  backlog: number;
  inflight: number;
}
