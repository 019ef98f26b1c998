/**
 * The message broker that runs inside `peak server`. It validates and stores what
 * producers send, hands messages to consumer groups (long-poll), applies acks, nacks,
 * retries and dead-lettering, moves due delayed / retried / committed transactional
 * messages into their queues (the relay), asks producers about unresolved half messages,
 * keeps daily partitions and drops expired ones, and counts TPS and delivery latency.
 *
 * Nodes are stateless: every fact lives in the {@link MessageStore} (PostgreSQL); the only
 * in-memory state is waiters for long polls (woken by LISTEN/NOTIFY from any node) and
 * monitoring counters for this node.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type pg from 'pg';
import { ErrorCodes, errorMessage, InvalidArgumentError, PeakError } from '../../core/errors.js';
import { IdGenerator } from '../../core/id-generator.js';
import { LatencyHistogram } from '../../core/latency-histogram.js';
import type { Logger } from '../../core/logger.js';
import { SlidingWindow } from '../../core/sliding-window.js';
import { verifyMessage } from '../message-signature.js';
import {
  DEFAULT_BACKOFF_MS,
  DEFAULT_MAX_RETRIES,
  MAX_DELAY_MS,
  NAME_PATTERN,
  type ReceivedMessage,
  TopicNames,
  type WireMessage,
} from '../message-types.js';
import { GroupCommit } from './group-commit.js';
import type {
  AppendInput,
  Delivery,
  GroupSettings,
  MessageRow,
  PendingInput,
  QueueBacklog,
  QueueRef,
  TopicRecord,
  TraceEvent,
} from './message-records.js';
import type { MessageStore } from './message-store.js';
import { PgMessageStore } from './pg-message-store.js';
import { allocateQueues } from './queue-allocation.js';

/** Options of a {@link Broker}; defaults are written here once. */
export interface BrokerOptions {
  /** How long messages are kept for query and replay. Default 3 days. */
  retentionMs?: number;
  /** Largest body a new topic accepts, bytes. Default 256 KiB. */
  defaultMaxBodyBytes?: number;
  /** Longest a consumer may go without a receive before its queues move. Default 20 s. */
  sessionMs?: number;
  /** Deliveries a group may hold un-acked per queue. Default 2000. */
  window?: number;
  /** How often the relay looks for due delayed/retry/outbox rows, ms. Default 250. */
  relayIntervalMs?: number;
  /** First check-back of a half message after this long, ms. Default 6 s. */
  halfCheckAfterMs?: number;
  /** Check-backs after the first, this far apart, ms. Default 30 s. */
  halfCheckIntervalMs?: number;
  /** A half message still unresolved after this many checks is rolled back. Default 15. */
  halfMaxChecks?: number;
}

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
}

/** A message delivered to a receiver, with its delivery receipt. */
export type { ReceivedMessage };

function b64url(text: string): string {
  return Buffer.from(text).toString('base64url');
}

/** Encodes where a delivery sits, for ack and nack. */
export function encodeReceipt(grp: string, q: QueueRef, offset: string): string {
  return `${q.queueId}.${offset}.${b64url(q.topic)}.${b64url(grp)}`;
}

/** The parts of a receipt; a malformed one is an InvalidArgumentError. */
export function decodeReceipt(receipt: unknown): QueueRef & { offset: string; grp: string } {
  const m =
    typeof receipt === 'string'
      ? /^(\d{1,4})\.(\d{1,19})\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(receipt)
      : null;
  if (m === null) {
    throw new InvalidArgumentError(
      `not a delivery receipt: ${JSON.stringify(receipt)}; pass the 'receipt' of a received message`,
      {
        details: { input: 'receipts' },
      },
    );
  }
  return {
    queueId: Number(m[1]),
    offset: m[2]!,
    topic: Buffer.from(m[3]!, 'base64url').toString(),
    grp: Buffer.from(m[4]!, 'base64url').toString(),
  };
}

/** Checks a topic or group name. */
export function checkName(kind: string, name: unknown): string {
  if (typeof name !== 'string' || !NAME_PATTERN.test(name) || name.startsWith('%')) {
    throw new InvalidArgumentError(
      `${kind} name ${JSON.stringify(name)} is not valid: use 1-127 letters, digits, '.', '_' or '-'`,
      { details: { input: kind } },
    );
  }
  return name;
}

/** Pending messages moved into queues per relay transaction. */
const RELAY_BATCH = 5000;

/** The largest id a PostgreSQL bigint holds. */
const MAX_BIGINT = 9_223_372_036_854_775_807n;

/** Pending messages moved per bulk relay statement (they never leave PostgreSQL). */
const RELAY_BULK = 20_000;

function secretMatches(expected: string | null, given: string | undefined): boolean {
  if (expected === null) return true;
  if (given === undefined) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

interface TopicStats {
  in: SlidingWindow;
  out: SlidingWindow;
  totalIn: number;
  totalOut: number;
  latency: LatencyHistogram;
}

/** The broker of one control-plane node. */
export class Broker {
  /** Where every fact lives. */
  readonly store: MessageStore;
  readonly #pool: pg.Pool;
  readonly #logger: Logger;
  readonly #o: Required<BrokerOptions>;
  readonly #ids: IdGenerator;
  readonly #waiters = new Set<{ topics: Set<string>; consumer: string; wake: () => void }>();
  readonly #left = new Map<string, number>();
  readonly #stats = new Map<string, TopicStats>();
  readonly #timers: NodeJS.Timeout[] = [];
  #listener: pg.PoolClient | undefined;
  #stopped = false;
  #closing = false;
  #relaying: Promise<void> | undefined;
  #relayAgain = false;
  #badSignatures = 0;
  readonly #groupCache = new Map<string, { key: string; at: number }>();
  readonly #retryTopics = new Set<string>();
  readonly #liveCache = new Map<string, { live: string[]; at: number }>();
  readonly #notifyAt = new Map<string, number>();
  #relayTimer: NodeJS.Timeout | undefined;
  /** Open push streams by `group|topic|consumerId`: deliveries not yet acked or nacked. */
  readonly #streams = new Map<string, { outstanding: number; wake: (() => void) | undefined }>();
  /** Half messages and their commits, group-committed (one WAL flush per batch). */
  readonly #halfWrites = new GroupCommit<PendingInput & { producerGroup: string }, undefined>(
    async (rows) => {
      await this.store.addHalves(rows);
      return rows.map(() => undefined);
    },
  );
  readonly #halfCommits = new GroupCommit<string, boolean>((ids) => this.store.commitHalves(ids));

  private constructor(
    pool: pg.Pool,
    store: MessageStore,
    logger: Logger,
    options: Required<BrokerOptions>,
    workerId: number,
  ) {
    this.#pool = pool;
    this.#logger = logger;
    this.#o = options;
    this.#ids = new IdGenerator({ workerId });
    this.store = store;
    this.store.onAppend = (topic) => this.#appended(topic);
  }

  /** Wakes local long polls at once (after the append commits) and other nodes' via NOTIFY. */
  #appended(topic: string): void {
    setImmediate(() => this.#wake(topic));
    const last = this.#notifyAt.get(topic) ?? 0;
    if (Date.now() - last < 20) return;
    this.#notifyAt.set(topic, Date.now());
    setImmediate(() => {
      this.#pool.query("SELECT pg_notify('peak_mq', $1)", [topic]).catch(() => undefined);
    });
  }

  /** Starts the broker on a migrated database: partitions, LISTEN, relay and upkeep. */
  static async start(pool: pg.Pool, logger: Logger, options: BrokerOptions = {}): Promise<Broker> {
    const o: Required<BrokerOptions> = {
      retentionMs: options.retentionMs ?? 3 * 86_400_000,
      defaultMaxBodyBytes: options.defaultMaxBodyBytes ?? 256 * 1024,
      sessionMs: options.sessionMs ?? 20_000,
      window: options.window ?? 2000,
      relayIntervalMs: options.relayIntervalMs ?? 250,
      halfCheckAfterMs: options.halfCheckAfterMs ?? 6000,
      halfCheckIntervalMs: options.halfCheckIntervalMs ?? 30_000,
      halfMaxChecks: options.halfMaxChecks ?? 15,
    };
    const store = new PgMessageStore(pool, logger);
    const workerId = await store.nextWorkerId();
    const broker = new Broker(pool, store, logger, o, workerId);
    await broker.store.maintainPartitions(o.retentionMs);
    await broker.#listen();
    broker.#timers.push(
      setInterval(() => broker.#kickRelay(), o.relayIntervalMs),
      setInterval(() => {
        broker.store
          .maintainPartitions(o.retentionMs)
          .catch((err) => logger.warn({ err }, 'mq: partition upkeep failed'));
      }, 3_600_000),
    );
    for (const t of broker.#timers) t.unref();
    broker.#kickRelay();
    return broker;
  }

  async #listen(): Promise<void> {
    try {
      const client = await this.#pool.connect();
      client.on('notification', (n) => {
        if (n.channel === 'peak_mq' && n.payload !== undefined) this.#wake(n.payload);
        else if (n.channel === 'peak_mq_leave' && n.payload !== undefined)
          this.#wakeLeaving(n.payload);
        else if (n.channel === 'peak_mq_pending') this.#kickRelay();
      });
      client.on('error', (err) => {
        this.#logger.warn({ err }, 'mq: LISTEN connection lost; long polls fall back to polling');
        this.#listener = undefined;
      });
      await client.query('LISTEN peak_mq');
      await client.query('LISTEN peak_mq_pending');
      await client.query('LISTEN peak_mq_leave');
      this.#listener = client;
    } catch (err) {
      this.#logger.warn({ err }, 'mq: LISTEN failed; long polls fall back to polling');
    }
  }

  /** Stops loops and wakes every long poll (they return what they have). */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#timers) clearInterval(t);
    clearTimeout(this.#relayTimer);
    for (const w of this.#waiters) w.wake();
    await this.#relaying?.catch(() => undefined);
    await this.store.flushTrace();
    const l = this.#listener;
    this.#listener = undefined;
    if (l !== undefined) {
      // Close the session instead of pooling it: back in the pool it would keep the
      // "LISTEN connection lost" handler and log it when PostgreSQL stops after us.
      l.removeAllListeners('error');
      l.on('error', () => undefined);
      l.release(true);
    }
  }

  /** Ends every long poll now (the server is closing); they return what they have. */
  wakeAll(): void {
    this.#closing = true;
    for (const w of this.#waiters) w.wake();
  }

  #wakeLeaving(consumer: string): void {
    const now = Date.now();
    for (const [k, at] of this.#left) if (now - at > 60_000) this.#left.delete(k);
    this.#left.set(consumer, now);
    for (const w of this.#waiters) if (w.consumer === consumer) w.wake();
  }

  #wake(topic: string): void {
    for (const w of this.#waiters) if (w.topics.has(topic)) w.wake();
  }

  #kickRelay(): void {
    if (this.#stopped) return;
    if (this.#relaying !== undefined) {
      this.#relayAgain = true;
      return;
    }
    this.#relaying = (async () => {
      try {
        do {
          this.#relayAgain = false;
          // Bulk moves first (delayed and outbox messages without a group, inside
          // PostgreSQL), then everything else row by row.
          for (;;) {
            const { moved, topic } = await this.store.relayDueBulk(RELAY_BULK);
            if (moved > 0 && topic !== null) this.#count(topic, 'in', moved);
            if (moved === 0 || this.#stopped) break;
          }
          for (;;) {
            const { moved, rows } = await this.store.relayDue(RELAY_BATCH);
            if (moved > 0) {
              for (const r of rows) this.#count(r.origin_topic ?? r.topic, 'in', 1);
              // A delayed or outbox message's move is its 'stored' event (the copy's
              // stored_at); only retries, whose copy is a second one, get a row.
              await this.store.trace(
                rows
                  .filter((r) => r.kind === 'retry')
                  .map((r) => ({ msgId: r.msg_id, event: 'requeued', detail: 'retry due' })),
              );
            }
            if (moved < RELAY_BATCH || this.#stopped) break;
          }
        } while (this.#relayAgain && !this.#stopped);
        // Wake exactly when the next pending message falls due, not at the next tick.
        const next = await this.store.nextDue();
        const wait = next === undefined ? Infinity : next.getTime() - Date.now();
        if (wait < this.#o.relayIntervalMs && !this.#stopped) {
          clearTimeout(this.#relayTimer);
          this.#relayTimer = setTimeout(() => this.#kickRelay(), Math.max(0, wait) + 1);
          this.#relayTimer.unref();
        }
      } catch (err) {
        if (!this.#stopped)
          this.#logger.warn({ err: errorMessage(err) }, 'mq: relay pass failed; retrying');
      } finally {
        this.#relaying = undefined;
      }
    })();
  }

  #statsOf(topic: string): TopicStats {
    let s = this.#stats.get(topic);
    if (s === undefined) {
      s = {
        in: new SlidingWindow({ intervalMs: 10_000, buckets: 10, histogram: false }),
        out: new SlidingWindow({ intervalMs: 10_000, buckets: 10, histogram: false }),
        totalIn: 0,
        totalOut: 0,
        latency: new LatencyHistogram(),
      };
      this.#stats.set(topic, s);
    }
    return s;
  }

  #count(topic: string, dir: 'in' | 'out', n: number): void {
    const s = this.#statsOf(topic);
    s[dir].addPass(n);
    if (dir === 'in') s.totalIn += n;
    else s.totalOut += n;
  }

  // ------------------------------------------------------------------ topics

  /** Creates a topic; `secured` generates produce and consume secrets (returned once). */
  async createTopic(spec: {
    name: unknown;
    queues?: unknown;
    ordered?: unknown;
    secured?: unknown;
    maxBodyBytes?: unknown;
  }): Promise<{
    created: boolean;
    name: string;
    queues: number;
    ordered: boolean;
    produceSecret?: string;
    consumeSecret?: string;
  }> {
    const name = checkName('topic', spec.name);
    const queues = spec.queues ?? 4;
    if (typeof queues !== 'number' || !Number.isInteger(queues) || queues < 1 || queues > 256) {
      throw new InvalidArgumentError(
        `queues must be an integer 1-256, got ${JSON.stringify(queues)}`,
        { details: { input: 'queues' } },
      );
    }
    const maxBody = spec.maxBodyBytes ?? this.#o.defaultMaxBodyBytes;
    if (
      typeof maxBody !== 'number' ||
      !Number.isInteger(maxBody) ||
      maxBody < 1 ||
      maxBody > 4 * 1024 * 1024
    ) {
      throw new InvalidArgumentError(
        `maxBodyBytes must be an integer 1-4194304, got ${JSON.stringify(maxBody)}`,
        {
          details: { input: 'maxBodyBytes' },
        },
      );
    }
    const secured = spec.secured === true;
    const produceSecret = secured ? `mqp_${randomBytes(24).toString('base64url')}` : null;
    const consumeSecret = secured ? `mqc_${randomBytes(24).toString('base64url')}` : null;
    const { record, created } = await this.store.createTopic({
      name,
      queues,
      ordered: spec.ordered === true,
      maxBodyBytes: maxBody,
      produceSecret,
      consumeSecret,
    });
    return {
      created,
      name: record.name,
      queues: record.queues,
      ordered: record.ordered,
      ...(created && produceSecret !== null && consumeSecret !== null
        ? { produceSecret, consumeSecret }
        : {}),
    };
  }

  async #shadowOf(topic: string): Promise<string> {
    const real = await this.store.requireTopic(topic);
    const name = TopicNames.shadow(topic);
    if ((await this.store.topic(name)) === undefined) {
      await this.store.createTopic({
        name,
        queues: real.queues,
        ordered: real.ordered,
        internal: true,
        maxBodyBytes: real.maxBodyBytes,
        produceSecret: real.produceSecret,
        consumeSecret: real.consumeSecret,
      });
    }
    return name;
  }

  // ------------------------------------------------------------------ produce

  async #prepare(
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
    const topic = known ?? (await this.store.requireTopic(topicName));
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
      };
      if (
        !verifyMessage(
          topic.produceSecret,
          signed,
          typeof m.signature === 'string' ? m.signature : undefined,
        )
      ) {
        this.#badSignatures++;
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
    const target = stress ? await this.#shadowOf(topic) : topic;
    const now = Date.now();
    const record = await this.store.requireTopic(target);
    const prepared = [];
    for (let i = 0; i < messages.length; i++)
      prepared.push(await this.#prepare(target, messages[i], i, now, record));
    const due = prepared.filter((m) => m.deliverAt <= now + 20);
    const later = prepared.filter((m) => m.deliverAt > now + 20);
    if (due.length > 0 && later.length === 0) {
      await this.store.append(due);
    } else {
      await this.store.appendAndDelay(
        due,
        later.map((m) => ({ ...m, deliverAt: new Date(m.deliverAt) })),
      );
    }
    if (due.length > 0) this.#count(target, 'in', due.length);
    if (later.length > 0) {
      await this.store.trace(
        later.map((m) => ({
          msgId: m.msgId.toString(),
          event: 'scheduled',
          detail: new Date(m.deliverAt).toISOString(),
        })),
      );
    }
    return { ids: prepared.map((m) => m.msgId.toString()), topic: target };
  }

  // ------------------------------------------------------------------ half messages

  /** Stores a half message: invisible until committed; checked back if left unresolved. */
  async sendHalf(topic: string, message: unknown, producerGroup: unknown): Promise<{ id: string }> {
    checkName('topic', topic);
    const pgroup = checkName('producerGroup', producerGroup);
    const m = await this.#prepare(topic, message, 0, Date.now());
    await this.#halfWrites.submit({
      ...m,
      deliverAt: new Date(Date.now() + this.#o.halfCheckAfterMs),
      producerGroup: pgroup,
    });
    await this.store.trace([
      { msgId: m.msgId.toString(), event: 'half', detail: `producer group ${pgroup}` },
    ]);
    return { id: m.msgId.toString() };
  }

  /** Resolves a half message: commit delivers it, rollback discards it. */
  async endHalf(
    id: string,
    action: 'commit' | 'rollback',
    by: string,
    secret?: string,
  ): Promise<void> {
    if (!/^\d{1,19}$/.test(id) || BigInt(id) > MAX_BIGINT)
      throw new InvalidArgumentError(`not a message id: ${id}`, { details: { input: 'id' } });
    const half = (await this.store.pendingById(id)).find((p) => p.kind === 'half');
    const topic = half === undefined ? undefined : await this.store.topic(half.topic);
    if (topic !== undefined && !secretMatches(topic.produceSecret, secret)) {
      throw new PeakError(
        ErrorCodes.MQ_FORBIDDEN,
        `committing or rolling back a half message of topic '${topic.name}' needs its produce secret ('secret' in the body)`,
        { details: { topic: topic.name } },
      );
    }
    const ok =
      action === 'commit' ? await this.#halfCommits.submit(id) : await this.store.rollbackHalf(id);
    if (!ok) {
      throw new PeakError(
        ErrorCodes.MQ_UNKNOWN_TRANSACTION,
        `no half message ${id} is waiting: it was already committed or rolled back, or never sent`,
        { details: { id } },
      );
    }
    await this.store.trace([
      { msgId: id, event: action === 'commit' ? 'committed' : 'rolled-back', detail: by },
    ]);
  }

  /** Half messages of a producer group due for a check-back; too-old ones roll back. */
  async dueChecks(
    producerGroup: string,
    max: number,
    secrets: Readonly<Record<string, string>> = {},
  ): Promise<ReceivedMessage[]> {
    checkName('producerGroup', producerGroup);
    const rows = await this.store.dueChecks(producerGroup, max, this.#o.halfCheckIntervalMs);
    const out: ReceivedMessage[] = [];
    for (const r of rows) {
      // A half message of a secured topic is shown only to a caller holding its secret.
      const topic = await this.store.topic(r.topic);
      if (topic !== undefined && !secretMatches(topic.produceSecret, secrets[r.topic])) continue;
      if (r.check_count > this.#o.halfMaxChecks) {
        await this.store.rollbackHalf(r.msg_id);
        await this.store.trace([
          {
            msgId: r.msg_id,
            event: 'rolled-back',
            detail: `unresolved after ${this.#o.halfMaxChecks} checks`,
          },
        ]);
        continue;
      }
      await this.store.trace([
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

  // ------------------------------------------------------------------ consume

  async #checkConsumer(topic: string, secret: string | undefined): Promise<void> {
    const t = await this.store.requireTopic(topic);
    if (!secretMatches(t.consumeSecret, secret)) {
      throw new PeakError(
        ErrorCodes.MQ_FORBIDDEN,
        `topic '${topic.replace('%SHADOW%', '')}' needs its consume secret: send header 'x-peak-mq-secret' (SDK option 'secret')`,
        { details: { topic } },
      );
    }
  }

  /**
   * Every receipt's own topic must accept `secret` (the request's topic was checked
   * already): a receipt of a secured topic B is refused under topic A's secret. A retry
   * topic `%RETRY%<group>` holds copies of the group's topics; its receipts are checked
   * against the request's topic (the receipt's group must be the request's group too).
   */
  async #checkReceipts(
    requestTopic: string,
    secret: string | undefined,
    refs: readonly QueueRef[],
  ): Promise<void> {
    const topics = new Set<string>();
    for (const r of refs) if (r.topic !== requestTopic) topics.add(r.topic);
    for (const name of topics) {
      if (name.startsWith(TopicNames.retry(''))) continue;
      const t = await this.store.topic(name);
      if (t === undefined) continue;
      if (!secretMatches(t.consumeSecret, secret)) {
        throw new PeakError(
          ErrorCodes.MQ_FORBIDDEN,
          `a receipt belongs to topic '${name.replace('%SHADOW%', '')}', whose consume secret was not given: ack and nack receipts with the secret of the topic they were received from`,
          { details: { topic: name } },
        );
      }
    }
  }

  /** The delivery-state key of a subscription: the group, or the instance in broadcasting. */
  static stateKey(group: string, consumerId: string, broadcasting: boolean): string {
    return broadcasting ? `${group}@${consumerId}` : group;
  }

  /**
   * Heartbeats a consumer and returns the live consumers of its subscription, at most
   * once a second per consumer on this node (a receive loop polls far more often).
   */
  async #heartbeat(grp: string, topic: string, consumerId: string): Promise<string[]> {
    const key = `${grp}|${topic}|${consumerId}`;
    const hit = this.#liveCache.get(key);
    if (hit !== undefined && Date.now() - hit.at < 1000) return hit.live;
    const live = await this.store.heartbeat(grp, topic, consumerId, this.#o.sessionMs);
    this.#liveCache.set(key, { live, at: Date.now() });
    if (this.#liveCache.size > 10_000) this.#liveCache.clear();
    return live;
  }

  /** Long-poll receive: messages from the queues this consumer owns, or [] after waitMs. */
  async receive(req: ReceiveRequest): Promise<ReceivedMessage[]> {
    checkName('group', req.group);
    if (req.topic.startsWith('%SHADOW%')) await this.#shadowOf(req.topic.slice('%SHADOW%'.length));
    await this.#checkConsumer(req.topic, req.secret);
    const topic = await this.store.requireTopic(req.topic);
    const settings: GroupSettings = {
      broadcasting: req.broadcasting,
      maxRetries: req.maxRetries,
      backoffMs: req.backoffMs,
      invisibleMs: req.invisibleMs,
    };
    const settingsKey = JSON.stringify(settings);
    const known = this.#groupCache.get(req.group);
    if (known === undefined || known.key !== settingsKey || Date.now() - known.at > 10_000) {
      await this.store.upsertGroup(req.group, settings);
      this.#groupCache.set(req.group, { key: settingsKey, at: Date.now() });
    }
    const grp = Broker.stateKey(req.group, req.consumerId, req.broadcasting);
    const inPlace = req.broadcasting || topic.ordered;
    if (!inPlace && !this.#retryTopics.has(req.group)) {
      await this.store.ensureRetryTopic(req.group);
      this.#retryTopics.add(req.group);
    }
    const all: QueueRef[] = [];
    for (let q = 0; q < topic.queues; q++) all.push({ topic: req.topic, queueId: q });
    if (!inPlace) all.push({ topic: TopicNames.retry(req.group), queueId: 0 });
    const deadline = Date.now() + Math.max(0, req.waitMs);
    const watch = new Set(all.map((q) => q.topic));
    const leaveKey = `${grp}|${req.topic}|${req.consumerId}`;
    this.#left.delete(leaveKey);

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
      const withWork = await this.store.queuesWithWork(grp, mine, this.#o.window);
      for (const q of withWork.sort(() => Math.random() - 0.5)) {
        if (out.length >= req.max) break;
        const got = await this.store.claim({
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
        out.push(...(await this.#deliver(req, grp, got, settings, inPlace)));
      }
      if (out.length > 0 || this.#stopped || this.#closing || Date.now() >= deadline) return out;
      if (this.#left.delete(leaveKey)) return out;
      await this.#waitFor(watch, leaveKey, Math.min(deadline - Date.now(), 500));
      if (this.#left.delete(leaveKey)) return out;
    }
  }

  async #deliver(
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
        await this.store.nack(
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
        continue;
      }
      const origin = m.origin_topic ?? m.topic;
      const s = this.#statsOf(origin);
      s.out.addPass(1);
      s.totalOut++;
      if (attempts === 1) s.latency.record(Math.max(0, now - m.born_at.getTime()));
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
        this.#toReceived(
          m,
          attempts - 1,
          encodeReceipt(grp, { topic: m.topic, queueId: m.queue_id }, m.queue_offset),
        ),
      );
    }
    await this.store.trace(events);
    return out;
  }

  #toReceived(m: MessageRow, reconsumeTimes: number, receipt: string): ReceivedMessage {
    return {
      id: m.msg_id,
      topic: (m.origin_topic ?? m.topic).replace(/^%SHADOW%/, ''),
      queueId: m.queue_id,
      queueOffset: m.queue_offset,
      tag: m.tag,
      keys: m.keys,
      group: m.msg_group,
      properties: m.props,
      body: m.body.toString('base64'),
      bornAt: m.born_at.getTime(),
      storedAt: m.stored_at.getTime(),
      reconsumeTimes,
      receipt,
    };
  }

  #waitFor(topics: Set<string>, consumer: string, ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const w = {
        topics,
        consumer,
        wake: () => {
          clearTimeout(timer);
          this.#waiters.delete(w);
          resolve();
        },
      };
      const timer = setTimeout(w.wake, ms);
      this.#waiters.add(w);
    });
  }

  /**
   * Checks a push stream's request before its response starts (afterwards errors can no
   * longer be answered with a status): names, the consume secret, the topic.
   */
  async openStream(req: Omit<ReceiveRequest, 'max' | 'waitMs'>): Promise<void> {
    checkName('group', req.group);
    if (req.topic.startsWith('%SHADOW%')) await this.#shadowOf(req.topic.slice('%SHADOW%'.length));
    await this.#checkConsumer(req.topic, req.secret);
  }

  /**
   * Streamed push: hands deliveries to `send` as they become available, with at most
   * `inflight` of this consumer's deliveries unacknowledged at once (acks and nacks on the
   * side make room), until `signal` aborts, the consumer leaves or the server closes.
   * `idle` is called about once a second while nothing is sent (a keep-alive).
   */
  async stream(
    req: Omit<ReceiveRequest, 'max' | 'waitMs'>,
    inflight: number,
    send: (batch: ReceivedMessage[]) => Promise<void>,
    signal: AbortSignal,
    idle: () => void,
  ): Promise<void> {
    const key = `${req.group}|${req.topic}|${req.consumerId}`;
    const state = { outstanding: 0, wake: undefined as (() => void) | undefined };
    this.#streams.set(key, state);
    const onAbort = () => state.wake?.();
    signal.addEventListener('abort', onAbort);
    try {
      while (!signal.aborted && !this.#stopped && !this.#closing) {
        const room = inflight - state.outstanding;
        if (room <= 0) {
          const woken = await new Promise<boolean>((resolve) => {
            const timer = setTimeout(() => done(false), 1000);
            const done = (byAck: boolean) => {
              clearTimeout(timer);
              state.wake = undefined;
              resolve(byAck);
            };
            state.wake = () => done(true);
          });
          if (!woken && !signal.aborted) {
            // A second with no ack: recount from the store. A delivery that timed out (and
            // went to another consumer) is never acked here, and would hold its room forever.
            const held = await this.store.inflightOfConsumer(req.group, req.consumerId);
            state.outstanding = Math.min(state.outstanding, held);
          }
          idle();
          continue;
        }
        const got = await this.receive({ ...req, max: room, waitMs: 1000 });
        if (signal.aborted) break;
        if (got.length === 0) {
          idle();
          continue;
        }
        state.outstanding += got.length;
        await send(got);
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      if (this.#streams.get(key) === state) this.#streams.delete(key);
    }
  }

  /** Frees push-stream room after acks or nacks of `n` deliveries. */
  #settled(group: string, topic: string, consumerId: string, n: number): void {
    const state = this.#streams.get(`${group}|${topic}|${consumerId}`);
    if (state === undefined) return;
    state.outstanding = Math.max(0, state.outstanding - n);
    state.wake?.();
  }

  /** Acks receipts of one subscription. */
  async ack(req: {
    group: string;
    topic: string;
    consumerId: string;
    receipts: unknown;
    secret?: string | undefined;
  }): Promise<{ acked: number }> {
    await this.#checkConsumer(req.topic, req.secret);
    if (!Array.isArray(req.receipts) || req.receipts.length > 5000) {
      throw new InvalidArgumentError('receipts must be an array of at most 5000 receipts', {
        details: { input: 'receipts' },
      });
    }
    const refs = req.receipts.map(decodeReceipt);
    await this.#checkReceipts(req.topic, req.secret, refs);
    const byGrp = new Map<string, typeof refs>();
    for (const r of refs) byGrp.set(r.grp, [...(byGrp.get(r.grp) ?? []), r]);
    let acked = 0;
    for (const [grp, list] of byGrp) {
      if (grp !== req.group && !grp.startsWith(`${req.group}@`)) {
        throw new InvalidArgumentError(`a receipt belongs to group '${grp}', not '${req.group}'`, {
          details: { input: 'receipts' },
        });
      }
      const r = await this.store.ack(grp, list);
      acked += r.acked.length;
      await this.store.trace(
        r.acked.map((a) => ({
          msgId: a.msgId,
          event: 'acked',
          grp: req.group,
          consumer: req.consumerId,
          deliveredAt: a.deliveredAt,
        })),
      );
    }
    this.#settled(req.group, req.topic, req.consumerId, refs.length);
    return { acked };
  }

  /** Fails receipts: each is retried after its backoff, or dead-lettered after the last try. */
  async nack(req: {
    group: string;
    topic: string;
    consumerId: string;
    receipts: unknown;
    reason?: unknown;
    delayMs?: unknown;
    secret?: string | undefined;
  }): Promise<{ retried: number; dead: number }> {
    await this.#checkConsumer(req.topic, req.secret);
    if (!Array.isArray(req.receipts) || req.receipts.length > 1000) {
      throw new InvalidArgumentError('receipts must be an array of at most 1000 receipts', {
        details: { input: 'receipts' },
      });
    }
    const settings = await this.store.group(req.group);
    if (settings === undefined) {
      throw new PeakError(
        ErrorCodes.NOT_FOUND,
        `consumer group '${req.group}' has never received; nothing to nack`,
        {
          details: { group: req.group },
        },
      );
    }
    const topic = await this.store.requireTopic(req.topic);
    await this.#checkReceipts(req.topic, req.secret, req.receipts.map(decodeReceipt));
    const reason = typeof req.reason === 'string' ? req.reason.slice(0, 500) : 'consumer failed';
    const delay = typeof req.delayMs === 'number' && req.delayMs >= 0 ? req.delayMs : undefined;
    let retried = 0;
    let dead = 0;
    for (const receipt of req.receipts) {
      const ref = decodeReceipt(receipt);
      const inPlace = settings.broadcasting || (topic.ordered && ref.topic === req.topic);
      const r = await this.store.nack(ref.grp, req.group, ref, settings, inPlace, reason, delay);
      if (r.outcome === 'unknown' || r.msgId === undefined) continue;
      if (r.outcome === 'dead') dead++;
      else retried++;
      await this.store.trace([
        {
          msgId: r.msgId,
          event: r.outcome === 'dead' ? 'dead-lettered' : 'failed',
          grp: req.group,
          consumer: req.consumerId,
          detail:
            r.outcome === 'dead'
              ? `after attempt ${r.attempt}: ${reason}`
              : `attempt ${r.attempt}: ${reason}; retry in ${r.delayMs} ms`,
          deliveredAt: r.deliveredAt ?? null,
        },
      ]);
    }
    this.#settled(req.group, req.topic, req.consumerId, req.receipts.length);
    return { retried, dead };
  }

  /** A consumer leaves its group: its queues go to the others at once. */
  async leave(
    group: string,
    topic: string,
    consumerId: string,
    broadcasting: boolean,
  ): Promise<void> {
    const grp = Broker.stateKey(group, consumerId, broadcasting);
    await this.store.leave(grp, topic, consumerId);
    this.#liveCache.clear();
    // Ends this consumer's long poll on whichever node holds it.
    await this.#pool.query("SELECT pg_notify('peak_mq_leave', $1)", [
      `${grp}|${topic}|${consumerId}`,
    ]);
  }

  // ------------------------------------------------------------------ query, DLQ, replay, stats

  /** Everything known about one message id: stored copies, pending copy, DLQ, trace. */
  async describe(id: string): Promise<{
    id: string;
    found: boolean;
    message?: ReceivedMessage;
    state: string;
    copies: {
      topic: string;
      queueId: number;
      queueOffset: string;
      storedAt: string;
      reconsume: number;
    }[];
    deadLetters: { group: string; deadAt: string; reason: string | null; attempts: number }[];
    trace: { at: string; event: string; group?: string; consumer?: string; detail?: string }[];
  }> {
    if (!/^\d{1,19}$/.test(id))
      throw new InvalidArgumentError(`not a message id: ${id}`, { details: { input: 'id' } });
    await this.store.flushTrace();
    const [copies, pending, dlq, trace] = await Promise.all([
      this.store.byId(id),
      this.store.pendingById(id),
      this.store.dlqById(id),
      this.store.traceOf(id),
    ]);
    const inflight = await this.store.inflightFirst(copies);
    const first = copies[0];
    const p = pending[0];
    const events: {
      at: string;
      event: string;
      group?: string;
      consumer?: string;
      detail?: string;
    }[] = [];
    if (first !== undefined) {
      events.push({ at: first.born_at.toISOString(), event: 'produced' });
      events.push({
        at: first.stored_at.toISOString(),
        event: 'stored',
        detail: `${first.topic} queue ${first.queue_id} offset ${first.queue_offset}`,
      });
    } else if (p !== undefined) {
      events.push({ at: p.born_at.toISOString(), event: 'produced' });
    }
    for (const f of inflight) {
      events.push({
        at: f.delivered_at.toISOString(),
        event: 'delivered',
        group: f.grp.split('@')[0]!,
        ...(f.consumer_id === null ? {} : { consumer: f.consumer_id }),
        detail: 'in flight',
      });
    }
    for (const t of trace) {
      if (t.delivered_at !== null) {
        events.push({
          at: t.delivered_at.toISOString(),
          event: 'delivered',
          ...(t.grp === null ? {} : { group: t.grp }),
          ...(t.consumer === null ? {} : { consumer: t.consumer }),
        });
      }
      events.push({
        at: t.at.toISOString(),
        event: t.event,
        ...(t.grp === null ? {} : { group: t.grp }),
        ...(t.consumer === null ? {} : { consumer: t.consumer }),
        ...(t.detail === null ? {} : { detail: t.detail }),
      });
    }
    events.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
    const state =
      p !== undefined
        ? p.kind === 'half'
          ? 'half (waiting for commit or rollback)'
          : `pending (${p.kind}, due ${p.deliver_at.toISOString()})`
        : first !== undefined
          ? 'stored'
          : 'unknown';
    return {
      id,
      found: first !== undefined || p !== undefined || dlq.length > 0,
      ...(first === undefined ? {} : { message: this.#toReceived(first, first.reconsume, '') }),
      state,
      copies: copies.map((c) => ({
        topic: c.topic,
        queueId: c.queue_id,
        queueOffset: c.queue_offset,
        storedAt: c.stored_at.toISOString(),
        reconsume: c.reconsume,
      })),
      deadLetters: dlq.map((d) => ({
        group: d.grp,
        deadAt: d.dead_at.toISOString(),
        reason: d.reason,
        attempts: d.reconsume,
      })),
      trace: events,
    };
  }

  /** Messages by key, or by topic + tag + time range. */
  async query(q: {
    key?: string;
    topic?: string;
    tag?: string;
    from?: number;
    to?: number;
    limit?: number;
  }): Promise<ReceivedMessage[]> {
    const limit = Math.min(Math.max(q.limit ?? 100, 1), 1000);
    let rows: MessageRow[];
    if (q.key !== undefined) {
      rows = await this.store.byKey(q.key, q.topic, limit);
    } else if (q.topic !== undefined) {
      const to = q.to ?? Date.now() + 1000;
      const from = q.from ?? to - 3_600_000;
      rows = await this.store.byTime(q.topic, q.tag, new Date(from), new Date(to), limit);
    } else {
      throw new InvalidArgumentError(
        'query needs a key, or a topic (with optional tag, from, to)',
        { details: { input: 'query' } },
      );
    }
    return rows.map((m) => this.#toReceived(m, m.reconsume, ''));
  }

  /** Dead letters of a group. */
  async dlq(
    group: string,
    limit: number,
  ): Promise<
    (Omit<ReceivedMessage, 'receipt' | 'queueId' | 'queueOffset' | 'storedAt'> & {
      deadAt: number;
      reason: string | null;
    })[]
  > {
    checkName('group', group);
    const rows = await this.store.listDlq(group, Math.min(Math.max(limit, 1), 1000));
    return rows.map((r) => ({
      id: r.msg_id,
      topic: r.topic,
      tag: r.tag,
      keys: r.keys,
      group: r.msg_group,
      properties: r.props,
      body: r.body.toString('base64'),
      bornAt: r.born_at.getTime(),
      reconsumeTimes: r.reconsume,
      deadAt: r.dead_at.getTime(),
      reason: r.reason,
    }));
  }

  /** Resends dead letters to the group (ids, or all). */
  async resendDlq(group: string, ids: unknown): Promise<{ resent: string[] }> {
    checkName('group', group);
    let list: string[] | 'all';
    if (ids === 'all' || ids === undefined) list = 'all';
    else if (Array.isArray(ids) && ids.every((i) => typeof i === 'string' && /^\d{1,19}$/.test(i)))
      list = ids as string[];
    else
      throw new InvalidArgumentError("ids must be 'all' or an array of message ids", {
        details: { input: 'ids' },
      });
    const resent = await this.store.resendDlq(group, list);
    await this.store.trace(
      resent.map((id) => ({
        msgId: id,
        event: 'resent',
        grp: group,
        detail: 'from the dead-letter queue',
      })),
    );
    return { resent };
  }

  /** Moves a group's offsets on a topic to the first message stored at or after `at`. */
  async resetOffset(
    group: string,
    topic: string,
    at: number,
  ): Promise<{ queueId: number; offset: string }[]> {
    checkName('group', group);
    await this.store.requireTopic(topic);
    if (!Number.isFinite(at))
      throw new InvalidArgumentError('timestamp must be epoch ms or an ISO time', {
        details: { input: 'timestamp' },
      });
    if (at < Date.now() - this.#o.retentionMs) {
      throw new InvalidArgumentError(
        `${new Date(at).toISOString()} is older than the retention (${Math.round(this.#o.retentionMs / 3_600_000)} h); messages before ${new Date(Date.now() - this.#o.retentionMs).toISOString()} are gone`,
        { details: { input: 'timestamp' } },
      );
    }
    return this.store.resetOffsets(group, topic, new Date(at));
  }

  /** Monitoring: TPS in/out and delivery latency per topic (this node), backlog per group. */
  async stats(): Promise<{
    node: { badSignatures: number };
    topics: {
      topic: string;
      tpsIn: number;
      tpsOut: number;
      totalIn: number;
      totalOut: number;
      latencyMs: { p50: number; p99: number; samples: number };
    }[];
    groups: {
      group: string;
      topic: string;
      backlog: number;
      queues: QueueBacklog[];
    }[];
  }> {
    const topics = [...this.#stats.entries()].map(([topic, s]) => ({
      topic,
      tpsIn: Math.round(s.in.rate('pass') * 10) / 10,
      tpsOut: Math.round(s.out.rate('pass') * 10) / 10,
      totalIn: Math.round(s.totalIn),
      totalOut: s.totalOut,
      latencyMs: {
        p50: s.latency.total === 0 ? 0 : s.latency.quantile(0.5),
        p99: s.latency.total === 0 ? 0 : s.latency.quantile(0.99),
        samples: s.latency.total,
      },
    }));
    const groups = [];
    for (const sub of await this.store.subscriptions()) {
      if (sub.topic.startsWith('%RETRY%')) continue;
      const queues = await this.store.backlog(sub.grp, sub.topic);
      groups.push({
        group: sub.grp,
        topic: sub.topic,
        backlog: queues.reduce((a, q) => a + q.backlog, 0),
        queues,
      });
    }
    return { node: { badSignatures: this.#badSignatures }, topics, groups };
  }

  /** Settings a receive uses when the request leaves them out. */
  static readonly defaults = {
    maxRetries: DEFAULT_MAX_RETRIES,
    backoffMs: DEFAULT_BACKOFF_MS,
    invisibleMs: 30_000,
  } as const;
}
