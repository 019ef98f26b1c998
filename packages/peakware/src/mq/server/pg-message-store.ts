/**
 * The broker's storage on PostgreSQL: the {@link MessageStore} seam, put together from one
 * part per concept in `pg-store/`:
 *
 * - `topic-store.ts`: topics and their queues (cached a second), retry topics;
 * - `queue-log.ts`: the append-only message log (offsets drawn under the queue's row lock);
 * - `pending-table.ts`: delayed, retry and outbox rows and the relay of due ones;
 * - `half-messages.ts`: half messages, their commit, rollback and check-backs;
 * - `consumer-groups.ts`: group settings, live consumers, offsets (replay);
 * - `delivery-claims.ts`: the delivery window and claims with an invisibility timeout;
 * - `delivery-acks.ts`: acks, nacks (retry or dead-letter), ordered groups' promotion;
 * - `dead-letters.ts`: the dead-letter queue; `trace-log.ts`: trace events;
 * - `message-lookup.ts`: query by id, key, tag and time; `backlog-reader.ts`: backlog;
 * - `partitions.ts`: daily partitions and retention.
 */
import type pg from 'pg';
import { ErrorCodes, InvalidArgumentError, isPeakError, PeakError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
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
import type { MessageStore } from './message-store.js';
import { PgBacklogReader } from './pg-store/backlog-reader.js';
import { PgConsumerGroups } from './pg-store/consumer-groups.js';
import { PgDeadLetters } from './pg-store/dead-letters.js';
import { PgDeliveryAcks } from './pg-store/delivery-acks.js';
import { PgDeliveryClaims } from './pg-store/delivery-claims.js';
import { PgHalfMessages } from './pg-store/half-messages.js';
import { PgMessageLookup } from './pg-store/message-lookup.js';
import { PgPartitions } from './pg-store/partitions.js';
import { PgPendingTable } from './pg-store/pending-table.js';
import { PgQueueLog } from './pg-store/queue-log.js';
import { PgTopicStore } from './pg-store/topic-store.js';
import { PgTraceLog } from './pg-store/trace-log.js';

/** The PostgreSQL message store; each method is documented on {@link MessageStore}. */
export class PgMessageStore implements MessageStore {
  readonly #pool: pg.Pool;
  readonly #topics: PgTopicStore;
  readonly #log: PgQueueLog;
  readonly #pending: PgPendingTable;
  readonly #halves: PgHalfMessages;
  readonly #groups: PgConsumerGroups;
  readonly #claims: PgDeliveryClaims;
  readonly #acks: PgDeliveryAcks;
  readonly #deadLetters: PgDeadLetters;
  readonly #lookup: PgMessageLookup;
  readonly #traceLog: PgTraceLog;
  readonly #backlog: PgBacklogReader;
  readonly #partitions: PgPartitions;
  /**
   * Called after messages were appended to `topic` (before commit): the broker uses it to
   * wake long polls. NOTIFY is not sent inside append transactions because PostgreSQL
   * serialises the commits of notifying transactions, which defeats group commit.
   */
  onAppend: ((topic: string) => void) | undefined;
  /**
   * Called after this node committed pending rows (delayed messages, retries), with the
   * earliest due time: the broker's relay wakes then instead of polling for them.
   */
  onPending: ((dueAt: Date) => void) | undefined;

  constructor(pool: pg.Pool, logger: Logger) {
    this.#pool = pool;
    const appended = (topic: string) => this.onAppend?.(topic);
    this.#topics = new PgTopicStore(pool);
    this.#log = new PgQueueLog(pool, this.#topics, appended);
    this.#pending = new PgPendingTable(pool, logger, this.#topics, this.#log, appended);
    this.#halves = new PgHalfMessages(pool, this.#pending);
    this.#groups = new PgConsumerGroups(pool);
    this.#claims = new PgDeliveryClaims(pool);
    this.#deadLetters = new PgDeadLetters(pool, this.#topics, this.#pending);
    this.#acks = new PgDeliveryAcks(pool, this.#topics, this.#pending, this.#deadLetters, appended);
    this.#lookup = new PgMessageLookup(pool);
    this.#traceLog = new PgTraceLog(pool, logger);
    this.#backlog = new PgBacklogReader(pool);
    this.#partitions = new PgPartitions(pool, logger);
  }

  scopedTo(_topic: string): Promise<MessageStore> {
    return Promise.resolve(this);
  }

  async nextWorkerId(): Promise<number> {
    const { rows } = await this.#pool.query<{ w: string }>(
      "SELECT nextval('peak.mq_worker_seq')::text AS w",
    );
    return Number(rows[0]?.w ?? 0);
  }

  // ---------------------------------------------------------------- topics

  createTopic(spec: TopicSpec): Promise<{ record: TopicRecord; created: boolean }> {
    if (spec.database !== undefined && spec.database !== 'main')
      return Promise.reject(
        new InvalidArgumentError(
          `no message database '${spec.database}': this node has main only; add it to PEAK_MQ_DATABASES (mq.databases) on every node`,
          { details: { input: 'database', database: spec.database } },
        ),
      );
    return this.#topics.createTopic(spec);
  }

  topic(name: string): Promise<TopicRecord | undefined> {
    return this.#topics.topic(name);
  }

  async requireTopic(name: string): Promise<TopicRecord> {
    try {
      return await this.#topics.requireTopic(name);
    } catch (err) {
      // Placed on a message database by a node given more (mq.databases) than this one.
      if (isPeakError(err, ErrorCodes.MQ_UNKNOWN_TOPIC)) {
        const base = name.startsWith('%SHADOW%') ? name.slice('%SHADOW%'.length) : name;
        const { rows } = await this.#pool.query<{ database: string }>(
          'SELECT database FROM peak.mq_topic_databases WHERE topic = $1',
          [base],
        );
        const database = rows[0]?.database;
        if (database !== undefined && database !== 'main')
          throw new PeakError(
            ErrorCodes.DB_UNREACHABLE,
            `topic '${base}' is on message database '${database}', which this node was not given; set PEAK_MQ_DATABASES (mq.databases) alike on every node`,
            { details: { topic: base, database } },
          );
      }
      throw err;
    }
  }

  async listTopics(): Promise<(TopicRecord & { messages: number; database: string })[]> {
    return (await this.#topics.listTopics()).map((t) => ({ ...t, database: 'main' }));
  }

  databaseOf(_topic: string): Promise<string> {
    return Promise.resolve('main');
  }

  ensureRetryTopic(grp: string): Promise<void> {
    return this.#topics.ensureRetryTopic(grp);
  }

  // ---------------------------------------------------------------- append and pending

  append(items: readonly AppendInput[]): Promise<AppendResult[]> {
    return this.#log.append(items);
  }

  async appendAndDelay(due: readonly AppendInput[], later: readonly PendingInput[]): Promise<void> {
    await this.#pending.appendAndDelay(due, later);
    if (later.length > 0)
      this.onPending?.(new Date(Math.min(...later.map((m) => m.deliverAt.getTime()))));
  }

  relayDueBulk(limit: number): Promise<{ moved: number; topic: string | null }> {
    return this.#pending.relayDueBulk(limit);
  }

  relayDue(limit: number): Promise<{ moved: number; rows: PendingRow[] }> {
    return this.#pending.relayDue(limit);
  }

  nextDue(): Promise<Date | undefined> {
    return this.#pending.nextDue();
  }

  pendingById(id: string): Promise<PendingRow[]> {
    return this.#pending.pendingById(id);
  }

  // ---------------------------------------------------------------- half messages

  addHalves(items: readonly PendingInput[]): Promise<void> {
    return this.#halves.addHalves(items);
  }

  commitHalves(ids: readonly string[]): Promise<boolean[]> {
    return this.#halves.commitHalves(ids);
  }

  rollbackHalf(id: string): Promise<boolean> {
    return this.#halves.rollbackHalf(id);
  }

  dueChecks(producerGroup: string, limit: number, intervalMs: number): Promise<PendingRow[]> {
    return this.#halves.dueChecks(producerGroup, limit, intervalMs);
  }

  // ---------------------------------------------------------------- groups and consumers

  upsertGroup(name: string, s: GroupSettings): Promise<void> {
    return this.#groups.upsertGroup(name, s);
  }

  group(name: string): Promise<GroupSettings | undefined> {
    return this.#groups.group(name);
  }

  heartbeat(grp: string, topic: string, consumerId: string, sessionMs: number): Promise<string[]> {
    return this.#groups.heartbeat(grp, topic, consumerId, sessionMs);
  }

  leave(grp: string, topic: string, consumerId: string): Promise<void> {
    return this.#groups.leave(grp, topic, consumerId);
  }

  resetOffsets(
    grp: string,
    topic: string,
    at: Date,
  ): Promise<{ queueId: number; offset: string }[]> {
    return this.#groups.resetOffsets(grp, topic, at);
  }

  // ---------------------------------------------------------------- deliveries

  queuesWithWork(grp: string, queues: readonly QueueRef[], window: number): Promise<QueueWork> {
    return this.#claims.queuesWithWork(grp, queues, window);
  }

  claim(req: ClaimRequest): Promise<Delivery[]> {
    return this.#claims.claim(req);
  }

  inflightOfConsumer(grp: string, consumerId: string): Promise<number> {
    return this.#claims.inflightOfConsumer(grp, consumerId);
  }

  ack(grp: string, refs: readonly DeliveryRef[]): Promise<AckResult> {
    return this.#acks.ack(grp, refs);
  }

  async nack(
    grp: string,
    deadLetterGroup: string,
    ref: DeliveryRef,
    settings: GroupSettings,
    inPlace: boolean,
    reason: string,
    delayOverrideMs?: number,
  ): Promise<NackResult> {
    const r = await this.#acks.nack(
      grp,
      deadLetterGroup,
      ref,
      settings,
      inPlace,
      reason,
      delayOverrideMs,
    );
    // A retry through the retry topic is a pending row, due after its delay.
    if (r.outcome === 'retry' && !inPlace && r.delayMs !== undefined)
      this.onPending?.(new Date(Date.now() + r.delayMs));
    return r;
  }

  // ---------------------------------------------------------------- dead letters

  listDlq(grp: string, limit: number): Promise<DeadLetterRow[]> {
    return this.#deadLetters.listDlq(grp, limit);
  }

  resendDlq(grp: string, ids: readonly string[] | 'all'): Promise<string[]> {
    return this.#deadLetters.resendDlq(grp, ids);
  }

  dlqById(id: string): Promise<DeadLetterState[]> {
    return this.#deadLetters.dlqById(id);
  }

  // ---------------------------------------------------------------- query and trace

  byId(id: string): Promise<MessageRow[]> {
    return this.#lookup.byId(id);
  }

  byKey(
    key: string,
    topic: string | undefined,
    limit: number,
    after?: MessagePosition,
  ): Promise<(MessageRow & { stored_us: string })[]> {
    return this.#lookup.byKey(key, topic, limit, after);
  }

  byTime(
    topic: string,
    tag: string | undefined,
    from: Date,
    to: Date,
    limit: number,
    after?: MessagePosition,
  ): Promise<(MessageRow & { stored_us: string })[]> {
    return this.#lookup.byTime(topic, tag, from, to, limit, after);
  }

  inflightFirst(
    copies: readonly { topic: string; queue_id: number; queue_offset: string }[],
  ): Promise<InflightFirst[]> {
    return this.#lookup.inflightFirst(copies);
  }

  trace(events: readonly TraceEvent[]): Promise<void> {
    return this.#traceLog.trace(events);
  }

  traceBatches(events: readonly BatchTraceEvent[]): Promise<void> {
    return this.#traceLog.traceBatches(events);
  }

  flushTrace(): Promise<void> {
    return this.#traceLog.flushTrace();
  }

  traceOf(
    id: string,
    copies: readonly { topic: string; queue_id: number; queue_offset: string }[],
  ): Promise<TraceRow[]> {
    return this.#traceLog.traceOf(id, copies);
  }

  // ---------------------------------------------------------------- backlog and retention

  subscriptions(): Promise<Subscription[]> {
    return this.#backlog.subscriptions();
  }

  backlog(grp: string, topic: string): Promise<QueueBacklog[]> {
    return this.#backlog.backlog(grp, topic);
  }

  maintainPartitions(
    retentionMs: number,
    aheadDays?: number,
  ): Promise<{ created: string[]; dropped: string[] }> {
    return this.#partitions.maintainPartitions(retentionMs, aheadDays);
  }
}
