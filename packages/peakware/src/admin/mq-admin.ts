/**
 * The broker's admin API (`/api/v1/mq`): topics, one message's story (query by id, key,
 * or topic + tag + time; its trace), dead letters and their resend, offset reset (replay)
 * and stats. Sending and consuming are the SDK's (`peakware/mq`).
 */

import type { ReceivedMessage } from '../mq/message-types.js';
import type {
  CreatedTopic,
  DeadLetter,
  MessageDescription,
  MessageTraceEvent,
  MqStats,
  QueueOffset,
  TopicSpec,
  TopicView,
} from '../mq/mq-views.js';
import type { Removal } from '../mq/server/pg-store/topic-removal.js';
import type { AdminTransport } from './admin-transport.js';

export type { Removal, TopicUse } from '../mq/server/pg-store/topic-removal.js';

export type {
  CreatedTopic,
  DeadLetter,
  MessageDescription,
  MessageTraceEvent,
  MqStats,
  QueueOffset,
  ReceivedMessage,
  TopicSpec,
  TopicView,
};

/** A point in time: epoch ms, an ISO string, or a Date. */
export type TimeArg = number | string | Date;

/** Filters of {@link MqAdmin.query}: a key, or a topic with an optional tag and time range. */
export interface MessageQuery {
  key?: string;
  topic?: string;
  tag?: string;
  /** Stored at or after. Default an hour before `to`. */
  from?: TimeArg;
  /** Stored before. Default now. */
  to?: TimeArg;
  /** Most results, 1-1000. Default 100. */
  limit?: number;
}

/** One page of a {@link MqAdmin.queryPage}; pass `next` as `cursor` for the following one. */
export interface MessagePage {
  messages: ReceivedMessage[];
  /** Absent on the last page. */
  next?: string;
}

const BASE = '/api/v1/mq';
const seg = encodeURIComponent;

function epochMs(t: TimeArg | undefined): number | undefined {
  if (t === undefined) return undefined;
  return t instanceof Date ? t.getTime() : typeof t === 'string' ? Date.parse(t) : t;
}

/** The broker's admin calls. */
export class MqAdmin {
  readonly #http: AdminTransport;

  constructor(http: AdminTransport) {
    this.#http = http;
  }

  /** Every topic, internal ones included. */
  async topics(): Promise<TopicView[]> {
    return (await this.#http.get<{ topics: TopicView[] }>(`${BASE}/topics`)).topics;
  }

  /** The message databases topics may be placed on (`main`, the node's own, first). */
  async databases(): Promise<string[]> {
    return (await this.#http.get<{ databases: string[] }>(`${BASE}/databases`)).databases;
  }

  /** Creates a topic (unchanged when it exists); a secured topic's secrets come back once. */
  createTopic(spec: TopicSpec): Promise<CreatedTopic> {
    return this.#http.post(`${BASE}/topics`, spec);
  }

  /**
   * Removes a topic with its messages and every group's offsets on it. PEAK_MQ_IN_USE
   * (409, naming what uses it) while it has unconsumed messages or live consumers, unless
   * `force`; PEAK_MQ_UNKNOWN_TOPIC when it does not exist.
   */
  removeTopic(topic: string, options: { force?: boolean } = {}): Promise<Removal> {
    return this.#http.delete(`${BASE}/topics/${seg(topic)}`, {
      query: { force: options.force === true ? 'true' : undefined },
    });
  }

  /**
   * Removes group `group`'s subscription to `topic` (offsets, claims, consumers); a group
   * left with no topic goes whole (settings, retry topic, dead letters). PEAK_MQ_IN_USE
   * while it has unacked messages or live consumers there, unless `force`.
   */
  removeGroup(
    topic: string,
    group: string,
    options: { force?: boolean } = {},
  ): Promise<Removal & { groupRemoved: boolean }> {
    return this.#http.delete(`${BASE}/groups/${seg(group)}`, {
      query: { topic, force: options.force === true ? 'true' : undefined },
    });
  }

  /** Everything known about one message: stored copies, pending copy, dead letters, trace. */
  message(id: string): Promise<MessageDescription> {
    return this.#http.get(`${BASE}/messages/${seg(id)}`);
  }

  /** A message's life: produced, stored, delivered, acked or failed, retried, dead-lettered. */
  async trace(id: string): Promise<MessageTraceEvent[]> {
    return (await this.message(id)).trace;
  }

  /** Messages by key (newest first), or by topic with tag and time range (oldest first): the first page. */
  async query(q: MessageQuery): Promise<ReceivedMessage[]> {
    return (await this.queryPage(q)).messages;
  }

  /**
   * One page of {@link MqAdmin.query}: give the previous page's `next` as `cursor` for the
   * following one. Pages go on until every matching message is read (no cap).
   */
  queryPage(q: MessageQuery & { cursor?: string }): Promise<MessagePage> {
    return this.#http.get<MessagePage>(`${BASE}/messages`, {
      query: {
        key: q.key,
        topic: q.topic,
        tag: q.tag,
        from: epochMs(q.from),
        to: epochMs(q.to),
        limit: q.limit,
        cursor: q.cursor,
      },
    });
  }

  /** A consumer group's dead letters. */
  async deadLetters(group: string, options: { limit?: number } = {}): Promise<DeadLetter[]> {
    const r = await this.#http.get<{ messages: DeadLetter[] }>(`${BASE}/groups/${seg(group)}/dlq`, {
      query: { limit: options.limit },
    });
    return r.messages;
  }

  /** Sends dead letters (these ids, or all) back to their group. */
  resendDeadLetters(group: string, ids: 'all' | readonly string[]): Promise<{ resent: string[] }> {
    return this.#http.post(`${BASE}/groups/${seg(group)}/dlq/resend`, { ids });
  }

  /** Replay: moves a group on a topic to the first message stored at or after `at`. */
  async resetOffset(group: string, topic: string, at: TimeArg): Promise<QueueOffset[]> {
    const r = await this.#http.post<{ queues: QueueOffset[] }>(
      `${BASE}/groups/${seg(group)}/reset-offset`,
      { topic, timestamp: epochMs(at) },
      // Moving offsets to a time twice lands on the same offsets.
      { idempotent: true },
    );
    return r.queues;
  }

  /** TPS and delivery latency per topic (on the node answering), backlog per group and queue. */
  stats(): Promise<MqStats> {
    return this.#http.get(`${BASE}/stats`);
  }
}
