/**
 * The answers of the broker's admin routes as they travel (topics, one message's story,
 * dead letters, offsets, stats): the wire contract `peakware/admin` and `peak mq` read,
 * declared once beside the SDK so the broker (`server/`) can name them too.
 */
import type { ReceivedMessage } from './message-types.js';

/** A topic as `GET /api/v1/mq/topics` lists it. */
export interface TopicView {
  name: string;
  queues: number;
  ordered: boolean;
  /** Internal topics: retry and shadow copies the broker derives. */
  internal: boolean;
  /** Produce needs a signature and consume a secret. */
  secured: boolean;
  maxBodyBytes: number;
  /** Messages stored now (within the retention). */
  messages: number;
  /** The message database it is on (`main`: the node's own; a group's retry topic: each it is on, comma-separated). */
  database: string;
  createdAt: string;
}

/** What creating a topic answers; a secured topic's secrets come only with its creation. */
export interface CreatedTopic {
  /** False when the topic existed already (then it is unchanged). */
  created: boolean;
  name: string;
  queues: number;
  ordered: boolean;
  /** The message database it is on (`main`: the node's own). */
  database: string;
  produceSecret?: string;
  consumeSecret?: string;
}

/** What creating a topic takes. */
export interface TopicSpec {
  name: string;
  /** Queues (parallelism). Default 4. */
  queues?: number;
  /** FIFO per message group. */
  ordered?: boolean;
  /** Require HMAC-signed messages and a consume secret. */
  secured?: boolean;
  /** Largest body accepted, bytes. Default the server's (256 KiB). */
  maxBodyBytes?: number;
  /**
   * The message database to place it on (one of `databases()`; `PEAK_MQ_DATABASES` on the
   * nodes). Default `main`, the node's own. A topic does not move once made.
   */
  database?: string;
}

/** One step of a message's life (produced, stored, delivered, acked, failed, resent ...). */
export interface MessageTraceEvent {
  at: string;
  event: string;
  group?: string;
  consumer?: string;
  detail?: string;
}

/** Everything the broker knows about one message id. */
export interface MessageDescription {
  id: string;
  found: boolean;
  /** The stored message (absent while it is a half message or pending). */
  message?: ReceivedMessage;
  /** `stored`, `pending (...)`, `half (...)` or `unknown`. */
  state: string;
  copies: {
    topic: string;
    queueId: number;
    queueOffset: string;
    storedAt: string;
    reconsume: number;
  }[];
  deadLetters: { group: string; deadAt: string; reason: string | null; attempts: number }[];
  trace: MessageTraceEvent[];
}

/** A dead letter of a consumer group. */
export type DeadLetter = Omit<
  ReceivedMessage,
  'receipt' | 'queueId' | 'queueOffset' | 'storedAt'
> & {
  deadAt: number;
  reason: string | null;
};

/** Where a group starts on one queue after an offset reset. */
export interface QueueOffset {
  queueId: number;
  offset: string;
}

/** Backlog of one queue for one group. */
export interface QueueBacklog {
  queueId: number;
  /** The queue's next offset. */
  maxOffset: string;
  /** The group's first unacked offset. */
  committed: string;
  backlog: number;
  inflight: number;
}

/** Broker monitoring: TPS and delivery latency per topic (this node), backlog per group. */
export interface MqStats {
  node: { badSignatures: number };
  topics: {
    topic: string;
    tpsIn: number;
    tpsOut: number;
    totalIn: number;
    totalOut: number;
    latencyMs: { p50: number; p99: number; samples: number };
  }[];
  groups: { group: string; topic: string; backlog: number; queues: QueueBacklog[] }[];
}
