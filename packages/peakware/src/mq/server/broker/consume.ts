/**
 * Consume by long poll: a receive heartbeats the consumer, takes the queues allocated to it
 * among the group's live consumers (queue-allocation.ts; broadcasting: all of them, with
 * the instance's own offsets), claims from those with work, and when nothing is ready waits
 * (long-poll-waiters.ts) until an append or a leave on its topics, the next end of a
 * delivery's invisibility, its next heartbeat (a third of the session) or `waitMs`: no
 * fixed re-check interval. A delivery handed out more times than the group allows without
 * an ack is dead-lettered instead.
 */
import { type ReceivedMessage, TopicNames } from '../../message-types.js';
import type { Delivery, GroupSettings, QueueRef, TraceEvent } from '../message-records.js';
import type { MessageStore } from '../message-store.js';
import { allocateQueues } from '../queue-allocation.js';
import type { BrokerOptions, BrokerRunState } from './broker-options.js';
import type { BrokerStats } from './broker-stats.js';
import { encodeReceipt } from './delivery-receipts.js';
import type { LongPollWaiters } from './long-poll-waiters.js';
import { checkName } from './name-check.js';
import { toReceived } from './received-message.js';
import { shadowTopicOf } from './topic-admin.js';
import { checkConsumeSecret } from './topic-secrets.js';

/** What a receive asks for. */
export interface ReceiveRequest {
  group: string;
  topic: string;
  consumerId: string;
  /** Most messages to return. */
  max: number;
  /** Long-poll: wait this long for a message when none is ready, ms. */
  waitMs: number;
  /** Only messages with one of these tags (null: all). */
  tags: string[] | null;
  startFrom: 'earliest' | 'latest';
  broadcasting: boolean;
  maxRetries: number;
  backoffMs: number[];
  invisibleMs: number;
  /** The topic's consume secret, when it has one. */
  secret?: string | undefined;
  /** Aborted when the poll's client went away: the poll ends at once. */
  signal?: AbortSignal | undefined;
}

/** The delivery-state key of a subscription: the group, or the instance in broadcasting. */
export function stateKey(group: string, consumerId: string, broadcasting: boolean): string {
  return broadcasting ? `${group}@${consumerId}` : group;
}

/** Long-poll receives, and consumers leaving. */
export class Receiver {
  readonly #store: MessageStore;
  readonly #waiters: LongPollWaiters;
  readonly #stats: BrokerStats;
  readonly #state: BrokerRunState;
  readonly #o: Required<Pick<BrokerOptions, 'window' | 'sessionMs'>>;
  readonly #groupCache = new Map<string, { key: string; at: number }>();
  readonly #retryTopics = new Set<string>();
  readonly #liveCache = new Map<string, { live: string[]; at: number }>();

  constructor(
    store: MessageStore,
    waiters: LongPollWaiters,
    stats: BrokerStats,
    state: BrokerRunState,
    options: Required<Pick<BrokerOptions, 'window' | 'sessionMs'>>,
  ) {
    this.#store = store;
    this.#waiters = waiters;
    this.#stats = stats;
    this.#state = state;
    this.#o = options;
  }

  /**
   * Heartbeats a consumer and returns the live consumers of its subscription, at most
   * once a second per consumer on this node (a receive loop polls far more often).
   */
  async #heartbeat(grp: string, topic: string, consumerId: string): Promise<string[]> {
    const key = `${grp}|${topic}|${consumerId}`;
    const hit = this.#liveCache.get(key);
    if (hit !== undefined && Date.now() - hit.at < 1000) return hit.live;
    const live = await this.#store.heartbeat(grp, topic, consumerId, this.#o.sessionMs);
    this.#liveCache.set(key, { live, at: Date.now() });
    if (this.#liveCache.size > 10_000) this.#liveCache.clear();
    return live;
  }

  /** Long-poll receive: messages from the queues this consumer owns, or [] after waitMs. */
  async receive(req: ReceiveRequest): Promise<ReceivedMessage[]> {
    checkName('group', req.group);
    // The topic's database (several with mq.databases): the group's retry topic beside it.
    const store = await this.#store.scopedTo(req.topic);
    if (req.topic.startsWith('%SHADOW%'))
      await shadowTopicOf(store, req.topic.slice('%SHADOW%'.length));
    await checkConsumeSecret(store, req.topic, req.secret);
    const topic = await store.requireTopic(req.topic);
    const settings: GroupSettings = {
      broadcasting: req.broadcasting,
      maxRetries: req.maxRetries,
      backoffMs: req.backoffMs,
      invisibleMs: req.invisibleMs,
    };
    const settingsKey = JSON.stringify(settings);
    // Per database: a group consuming topics on two keeps its settings and retry topic in each.
    const groupKey = `${await store.databaseOf(req.topic)}\n${req.group}`;
    const known = this.#groupCache.get(groupKey);
    if (known === undefined || known.key !== settingsKey || Date.now() - known.at > 10_000) {
      await store.upsertGroup(req.group, settings);
      this.#groupCache.set(groupKey, { key: settingsKey, at: Date.now() });
    }
    const grp = stateKey(req.group, req.consumerId, req.broadcasting);
    const inPlace = req.broadcasting || topic.ordered;
    const retryKey = groupKey;
    if (!inPlace && !this.#retryTopics.has(retryKey)) {
      await store.ensureRetryTopic(req.group);
      this.#retryTopics.add(retryKey);
    }
    const all: QueueRef[] = [];
    for (let q = 0; q < topic.queues; q++) all.push({ topic: req.topic, queueId: q });
    if (!inPlace) all.push({ topic: TopicNames.retry(req.group), queueId: 0 });
    const deadline = Date.now() + Math.max(0, req.waitMs);
    const watch = new Set(all.map((q) => q.topic));
    const leaveKey = `${grp}|${req.topic}|${req.consumerId}`;
    // A leave noted before this poll began does not end it.
    this.#waiters.takeLeft(leaveKey);

    for (;;) {
      let mine: QueueRef[];
      if (req.broadcasting) {
        await this.#heartbeat(grp, req.topic, req.consumerId);
        mine = all;
      } else {
        const live = await this.#heartbeat(grp, req.topic, req.consumerId);
        mine = allocateQueues(all, live, req.consumerId);
      }
      const out: ReceivedMessage[] = [];
      const work = await store.queuesWithWork(grp, mine, this.#o.window);
      for (const q of work.ready.sort(() => Math.random() - 0.5)) {
        if (out.length >= req.max) break;
        const got = await store.claim({
          grp,
          queue: q,
          consumerId: req.consumerId,
          max: req.max - out.length,
          window: this.#o.window,
          tags: q.topic === req.topic ? req.tags : null,
          startFrom: req.startFrom,
          invisibleMs: req.invisibleMs,
          ordered: topic.ordered && q.topic === req.topic,
        });
        out.push(...(await this.#deliver(store, req, grp, got, settings, inPlace)));
      }
      if (
        out.length > 0 ||
        this.#state.stopped ||
        this.#state.closing ||
        req.signal?.aborted === true ||
        Date.now() >= deadline
      )
        return out;
      if (this.#waiters.takeLeft(leaveKey)) return out;
      // Nothing to hand out: sleep until an append or a leave on these topics wakes us,
      // or a delivery's invisibility ends, or it is time to heartbeat again (so the group
      // still counts this consumer, and notices one that died), or the poll's deadline.
      const now = Date.now();
      let sleep = Math.min(deadline - now, this.#o.sessionMs / 3);
      if (work.nextVisibleAt !== undefined)
        sleep = Math.min(sleep, Math.max(0, work.nextVisibleAt.getTime() - now) + 1);
      await this.#waiters.wait(watch, leaveKey, sleep, req.signal);
      if (this.#waiters.takeLeft(leaveKey)) return out;
    }
  }

  async #deliver(
    store: MessageStore,
    req: ReceiveRequest,
    grp: string,
    got: Delivery[],
    settings: GroupSettings,
    inPlace: boolean,
  ): Promise<ReceivedMessage[]> {
    const out: ReceivedMessage[] = [];
    const now = Date.now();
    const events: TraceEvent[] = [];
    for (const d of got) {
      const m = d.message;
      const attempts = m.reconsume + d.deliveries;
      const ref = { topic: m.topic, queueId: m.queue_id, offset: m.queue_offset };
      if (d.previous !== undefined) {
        events.push({
          msgId: m.msg_id,
          event: 'delivered',
          grp: req.group,
          consumer: d.previous.consumer,
          detail: `attempt ${attempts - 1}, not acked in time`,
          at: d.previous.at,
        });
      }
      if (attempts > settings.maxRetries + 1) {
        // Handed out more times than allowed without an ack (consumers crashing on it).
        await store.nack(
          grp,
          req.group,
          ref,
          { ...settings, maxRetries: 0 },
          inPlace,
          'never acknowledged',
        );
        events.push({
          msgId: m.msg_id,
          event: 'dead-lettered',
          grp: req.group,
          consumer: req.consumerId,
          detail: `not acked after ${attempts - 1} deliveries`,
        });
        this.#stats.deadLettered(m.origin_topic ?? m.topic, req.group);
        continue;
      }
      const origin = m.origin_topic ?? m.topic;
      this.#stats.delivered(
        origin,
        req.group,
        attempts === 1 ? Math.max(0, now - m.born_at.getTime()) : undefined,
      );
      // A copy's first delivery is recorded by the row that ends it (acked, failed, ...);
      // later ones get their own row.
      if (d.deliveries > 1) {
        events.push({
          msgId: m.msg_id,
          event: 'delivered',
          grp: req.group,
          consumer: req.consumerId,
          detail: `attempt ${attempts}`,
        });
      }
      out.push(
        toReceived(
          m,
          attempts - 1,
          encodeReceipt(grp, { topic: m.topic, queueId: m.queue_id }, m.queue_offset),
        ),
      );
    }
    await store.trace(events);
    return out;
  }

  /**
   * Checks a push stream's request before its response starts (afterwards errors can no
   * longer be answered with a status): names, the consume secret, the topic.
   */
  async openStream(req: Omit<ReceiveRequest, 'max' | 'waitMs'>): Promise<void> {
    checkName('group', req.group);
    if (req.topic.startsWith('%SHADOW%'))
      await shadowTopicOf(this.#store, req.topic.slice('%SHADOW%'.length));
    await checkConsumeSecret(this.#store, req.topic, req.secret);
  }

  /** Forgets the live consumers seen lately: one left (here or on another node). */
  forgetLive(): void {
    this.#liveCache.clear();
  }

  /**
   * A consumer leaves its group: its queues go to the others at once. Returns the key
   * (`grp|topic|consumerId`) whose long poll must end, wherever it is held.
   */
  async leave(
    group: string,
    topic: string,
    consumerId: string,
    broadcasting: boolean,
  ): Promise<string> {
    const grp = stateKey(group, consumerId, broadcasting);
    await this.#store.leave(grp, topic, consumerId);
    this.#liveCache.clear();
    return `${grp}|${topic}|${consumerId}`;
  }
}
