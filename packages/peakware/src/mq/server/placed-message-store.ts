/**
 * Topics on several PostgreSQL databases: a {@link MessageStore} over one
 * {@link PgMessageStore} per database, so the broker tier grows by adding databases (and
 * `peak server` nodes), as RocketMQ's grows by adding brokers.
 *
 * - **Placement.** A topic lives on one database, chosen when it is created (`database`,
 *   default `main`, the node's own) and recorded in the node's own database
 *   (`peak.mq_topic_databases`, migration 28); a topic without a row is on `main` (every
 *   topic made before). Its shadow topic (`%SHADOW%<topic>`) lives beside it. Lookups are
 *   cached a few seconds.
 * - **Everything of a topic stays on its database**: its queues, offsets, claims, pending
 *   rows (delayed, retries, outbox, halves), dead letters, batch trace rows and partitions.
 *   A consumer group has a retry topic on each database it consumes from (RocketMQ keeps
 *   one per broker): a subscription's store ({@link scopedTo}) is the topic's database, and
 *   `%RETRY%<group>` there is that database's.
 * - **Across databases**: listings, queries by id or key without a topic, dead letters of
 *   a group, the relay, check-backs and partitions go to every database and merge (the
 *   background work on those that answer, while one is down); a group's settings are kept
 *   on each database it consumes from. Per-message trace events without a topic
 *   (redeliveries, failures, half-message steps) go to `main`; a message's trace is read
 *   from all.
 *
 * Not across databases: one transaction. A batch is sent to one topic, so it is stored in
 * one transaction as before. A message enqueued in a transaction of the node's own database
 * for a topic placed elsewhere (`sendInTransaction`, the coordinator's two-phase messages)
 * waits in `peak.mq_forward` there; the relay copies it to the topic's database once due and
 * deletes it, skipping ids the topic's database already holds (a copy made just before a
 * crash), so it arrives once.
 */
import type pg from 'pg';
import { ErrorCodes, InvalidArgumentError, isPeakError, PeakError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { openPool } from '../../server/database.js';
import { migrate } from '../../server/migrator.js';
import { shadowTopicOf } from './broker/topic-admin.js';
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
import { mqMigrations } from './migrations/index.js';
import { PgMessageStore } from './pg-message-store.js';

/** The node's own database's name in a placement. */
export const MAIN_DATABASE = 'main';

const RETRY_PREFIX = '%RETRY%';
const SHADOW_PREFIX = '%SHADOW%';
/** Forwarded messages copied per relay pass. */
const FORWARD_BATCH = 2000;
/** How long a topic's placement is trusted before it is read again, ms. */
const PLACED_TTL_MS = 5000;
/** How long "no row: on main" is trusted (a topic placed meanwhile by another node), ms. */
const UNPLACED_TTL_MS = 1000;

/** One database of the store. */
interface Database {
  name: string;
  pool: pg.Pool;
  store: PgMessageStore;
}

type Copy = { topic: string; queue_id: number; queue_offset: string };

/** What every view of one placed store shares. */
class Placement {
  readonly main: Database;
  readonly all: readonly Database[];
  readonly #byName: ReadonlyMap<string, Database>;
  readonly #cache = new Map<string, { db: Database; until: number }>();
  /** The database each stored copy returned by `byId` came from (retry copies are ambiguous by name). */
  readonly copyHome = new WeakMap<object, Database>();

  readonly logger: Logger;

  constructor(all: readonly Database[], logger: Logger) {
    this.logger = logger;
    this.all = all;
    this.main = all[0]!;
    this.#byName = new Map(all.map((d) => [d.name, d]));
  }

  named(name: string): Database {
    const db = this.#byName.get(name);
    if (db === undefined)
      throw new InvalidArgumentError(
        `no message database '${name}': this node has ${this.all.map((d) => d.name).join(', ')}; add it to PEAK_MQ_DATABASES (mq.databases) on every node`,
        { details: { input: 'database', database: name } },
      );
    return db;
  }

  /** The database a (non-retry) topic lives on. */
  async of(topic: string): Promise<Database> {
    const base = topic.startsWith(SHADOW_PREFIX) ? topic.slice(SHADOW_PREFIX.length) : topic;
    const now = Date.now();
    const hit = this.#cache.get(base);
    if (hit !== undefined && hit.until > now) return hit.db;
    const { rows } = await this.main.pool.query<{ database: string }>(
      'SELECT database FROM peak.mq_topic_databases WHERE topic = $1',
      [base],
    );
    const name = rows[0]?.database;
    const db = name === undefined ? this.main : this.#byName.get(name);
    if (db === undefined)
      throw new PeakError(
        ErrorCodes.DB_UNREACHABLE,
        `topic '${base}' is on message database '${name}', which this node was not given; set PEAK_MQ_DATABASES (mq.databases) alike on every node`,
        { details: { topic: base, database: name } },
      );
    // Bounded: names of topics nobody made (a caller's typos) must not grow it for ever.
    if (this.#cache.size >= 10_000) this.#cache.clear();
    this.#cache.set(base, {
      db,
      until: now + (name === undefined ? UNPLACED_TTL_MS : PLACED_TTL_MS),
    });
    return db;
  }

  /** Records `spec`'s topic on `want` unless it is placed (or made on main) already; where it is. */
  async place(spec: TopicSpec, want: Database): Promise<Database> {
    const topic = spec.name;
    const placed = await this.main.pool.query<{ database: string }>(
      'SELECT database FROM peak.mq_topic_databases WHERE topic = $1',
      [topic],
    );
    if (placed.rows[0] === undefined) {
      // A topic made on main before it had databases has no row: it stays on main.
      const target = (await this.main.store.topic(topic)) === undefined ? want : this.main;
      await this.main.pool.query(
        `INSERT INTO peak.mq_topic_databases (topic, database, ordered, max_body_bytes)
         VALUES ($1, $2, $3, $4) ON CONFLICT (topic) DO NOTHING`,
        [topic, target.name, spec.ordered, spec.maxBodyBytes],
      );
    }
    this.#cache.delete(topic);
    return this.of(topic);
  }

  /**
   * When the earliest forwarding row falls due (epoch ms; Infinity: none), as the relay's
   * last `nextDue` read it. Undefined until read: forwarding is tried. The relay reads it
   * at the start and end of every pass, so a pass skips the forwarding table's transaction
   * when it holds nothing due.
   */
  forwardDueAt: number | undefined;

  readonly #lastFailureLog = new Map<string, number>();

  /** Logs that `db` failed `what` (at most every 10 s per database). */
  failed(db: Database, what: string, err: unknown): void {
    const now = Date.now();
    if (now - (this.#lastFailureLog.get(db.name) ?? 0) < 10_000) return;
    this.#lastFailureLog.set(db.name, now);
    this.logger.warn(
      { database: db.name, err: err instanceof Error ? err.message : String(err) },
      `mq: message database '${db.name}' failed (${what}); its topics wait, the others go on`,
    );
  }

  /** Drops `topic`'s placement (it was removed: the name may be made again anywhere). */
  async forget(topic: string): Promise<void> {
    await this.main.pool.query('DELETE FROM peak.mq_topic_databases WHERE topic = $1', [topic]);
    this.#cache.delete(topic);
  }
}

/** Sums per-queue backlogs that name the same queue (a group's retry topic on several databases). */
function mergeBacklogs(lists: QueueBacklog[][]): QueueBacklog[] {
  const byQueue = new Map<number, QueueBacklog>();
  for (const b of lists.flat()) {
    const had = byQueue.get(b.queueId);
    if (had === undefined) {
      byQueue.set(b.queueId, { ...b });
      continue;
    }
    for (const k of Object.keys(b) as (keyof QueueBacklog)[]) {
      if (k !== 'queueId' && typeof b[k] === 'number')
        (had as unknown as Record<string, number>)[k] =
          ((had as unknown as Record<string, number>)[k] ?? 0) + (b[k] as number);
    }
  }
  return [...byQueue.values()].sort((a, b) => a.queueId - b.queueId);
}

/**
 * Groups `items` by the database of their topic (`topicOf`; `dbOf` resolves each distinct
 * topic once), keeping their order within a group.
 */
async function byDatabase<T>(
  items: readonly T[],
  topicOf: (item: T) => string,
  dbOf: (topic: string) => Promise<Database>,
): Promise<Map<Database, T[]>> {
  const out = new Map<Database, T[]>();
  const seen = new Map<string, Database>();
  for (const item of items) {
    const topic = topicOf(item);
    let db = seen.get(topic);
    if (db === undefined) {
      db = await dbOf(topic);
      seen.set(topic, db);
    }
    const list = out.get(db);
    if (list === undefined) out.set(db, [item]);
    else list.push(item);
  }
  return out;
}

/** A message store over several databases (see the header); each method is documented on {@link MessageStore}. */
export class PlacedMessageStore implements MessageStore {
  readonly #p: Placement;
  /** Where `%RETRY%<group>` is: the subscription's database (a view), else main. */
  readonly #home: Database;
  readonly #views: Map<string, PlacedMessageStore>;

  private constructor(p: Placement, home: Database, views: Map<string, PlacedMessageStore>) {
    this.#p = p;
    this.#home = home;
    this.#views = views;
  }

  /**
   * Opens the store over `pool` (`main`, migrated by the node) and each of `databases`
   * (name → URL): their schema is migrated here (the mq tables only). `poolMax` bounds each
   * database's pool.
   */
  static async open(
    pool: pg.Pool,
    logger: Logger,
    databases: Readonly<Record<string, string>>,
    poolMax = 20,
  ): Promise<PlacedMessageStore> {
    const all: Database[] = [
      { name: MAIN_DATABASE, pool, store: new PgMessageStore(pool, logger) },
    ];
    try {
      for (const [name, url] of Object.entries(databases)) {
        try {
          // As the node's own pool: statements prepared per connection, a connection lost
          // (the database restarting, idle or in use) failing only its own statement.
          const extra = await openPool(
            { url },
            { logger, max: poolMax, applicationName: `peak-server mq ${name}` },
          );
          all.push({ name, pool: extra, store: new PgMessageStore(extra, logger) });
          await migrate(extra, mqMigrations, logger.child({ database: name }));
        } catch (err) {
          throw new PeakError(
            ErrorCodes.DB_UNREACHABLE,
            `message database '${name}' (PEAK_MQ_DATABASES) cannot be used: ${(err as Error).message}`,
            { cause: err, details: { database: name } },
          );
        }
      }
    } catch (err) {
      await Promise.all(all.slice(1).map((d) => d.pool.end().catch(() => undefined)));
      throw err;
    }
    const p = new Placement(all, logger);
    return new PlacedMessageStore(p, p.main, new Map());
  }

  /** The databases' names, `main` first. */
  get databases(): string[] {
    return this.#p.all.map((d) => d.name);
  }

  /** The pool of the database `topic` lives on (topic removal runs there). */
  async poolOf(topic: string): Promise<pg.Pool> {
    return (await this.#p.of(topic)).pool;
  }

  /** Every database's pool, `main` first. */
  pools(): pg.Pool[] {
    return this.#p.all.map((d) => d.pool);
  }

  /** Forgets where `topic` is (it was removed). */
  forget(topic: string): Promise<void> {
    return this.#p.forget(topic);
  }

  /** Closes the pools of the databases besides main (the node closes its own). */
  async close(): Promise<void> {
    await Promise.all(this.#p.all.slice(1).map((d) => d.pool.end().catch(() => undefined)));
  }

  #dbOf(topic: string): Promise<Database> {
    if (topic.startsWith(RETRY_PREFIX)) return Promise.resolve(this.#home);
    return this.#p.of(topic);
  }

  async #each<T>(fn: (s: PgMessageStore) => Promise<T>): Promise<T[]> {
    return Promise.all(this.#p.all.map((d) => fn(d.store)));
  }

  /**
   * `fn` on every database that answers: the background work (relay, upkeep, monitoring)
   * goes on for the others while one is down. A failure is logged (at most every 10 s per
   * database); when none answers, the first failure is thrown.
   */
  async #eachAnswering<T>(what: string, fn: (s: PgMessageStore) => Promise<T>): Promise<T[]> {
    const settled = await Promise.allSettled(this.#p.all.map((d) => fn(d.store)));
    const out: T[] = [];
    let first: unknown;
    settled.forEach((r, i) => {
      if (r.status === 'fulfilled') out.push(r.value);
      else {
        first ??= r.reason;
        this.#p.failed(this.#p.all[i]!, what, r.reason);
      }
    });
    if (out.length === 0 && first !== undefined) throw first;
    return out;
  }

  set onAppend(fn: ((topic: string) => void) | undefined) {
    for (const d of this.#p.all) d.store.onAppend = fn;
  }

  get onAppend(): ((topic: string) => void) | undefined {
    return this.#p.main.store.onAppend;
  }

  set onPending(fn: ((dueAt: Date) => void) | undefined) {
    for (const d of this.#p.all) d.store.onPending = fn;
  }

  get onPending(): ((dueAt: Date) => void) | undefined {
    return this.#p.main.store.onPending;
  }

  async scopedTo(topic: string): Promise<MessageStore> {
    if (topic.startsWith(RETRY_PREFIX)) return this;
    const db = await this.#p.of(topic);
    let view = this.#views.get(db.name);
    if (view === undefined) {
      view = new PlacedMessageStore(this.#p, db, this.#views);
      this.#views.set(db.name, view);
    }
    return view;
  }

  async databaseOf(topic: string): Promise<string> {
    return (await this.#dbOf(topic)).name;
  }

  nextWorkerId(): Promise<number> {
    return this.#p.main.store.nextWorkerId();
  }

  // ---------------------------------------------------------------- topics

  async createTopic(spec: TopicSpec): Promise<{ record: TopicRecord; created: boolean }> {
    // Each database's own store takes the spec without a placement (it is the place).
    const { database, ...here } = spec;
    if (spec.name.startsWith(RETRY_PREFIX) || spec.name.startsWith(SHADOW_PREFIX))
      return (await this.#dbOf(spec.name)).store.createTopic(here);
    const want = this.#p.named(database ?? MAIN_DATABASE);
    const db = await this.#p.place(spec, want);
    return db.store.createTopic(here);
  }

  async topic(name: string): Promise<TopicRecord | undefined> {
    return (await this.#dbOf(name)).store.topic(name);
  }

  async requireTopic(name: string): Promise<TopicRecord> {
    return (await this.#dbOf(name)).store.requireTopic(name);
  }

  async listTopics(): Promise<(TopicRecord & { messages: number; database: string })[]> {
    const lists = await Promise.all(
      this.#p.all.map(async (d) =>
        (await d.store.listTopics()).map((t) => ({ ...t, database: d.name })),
      ),
    );
    // A group's retry topic is on each database it consumes from: one entry, summed.
    const byName = new Map<string, TopicRecord & { messages: number; database: string }>();
    for (const t of lists.flat()) {
      const had = byName.get(t.name);
      if (had === undefined) byName.set(t.name, t);
      else
        byName.set(t.name, {
          ...had,
          messages: had.messages + t.messages,
          database: `${had.database},${t.database}`,
        });
    }
    return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  ensureRetryTopic(grp: string): Promise<void> {
    return this.#home.store.ensureRetryTopic(grp);
  }

  // ---------------------------------------------------------------- append and pending

  async append(items: readonly AppendInput[]): Promise<AppendResult[]> {
    const groups = await byDatabase(
      items,
      (i) => i.topic,
      (t) => this.#dbOf(t),
    );
    if (groups.size <= 1) {
      const [db] = groups.keys();
      return db === undefined ? [] : db.store.append(items);
    }
    // Several topics in one call (a relay's batch): each database's part, in the callers' order.
    const results = new Map<AppendInput, AppendResult>();
    await Promise.all(
      [...groups].map(async ([db, part]) => {
        const r = await db.store.append(part);
        for (let i = 0; i < part.length; i++) results.set(part[i]!, r[i]!);
      }),
    );
    return items.map((i) => results.get(i)!);
  }

  async appendAndDelay(due: readonly AppendInput[], later: readonly PendingInput[]): Promise<void> {
    const dueBy = await byDatabase(
      due,
      (i) => i.topic,
      (t) => this.#dbOf(t),
    );
    const laterBy = await byDatabase(
      later,
      (i) => i.topic,
      (t) => this.#dbOf(t),
    );
    const dbs = new Set([...dueBy.keys(), ...laterBy.keys()]);
    await Promise.all(
      [...dbs].map((db) => db.store.appendAndDelay(dueBy.get(db) ?? [], laterBy.get(db) ?? [])),
    );
  }

  async relayDueBulk(limit: number): Promise<{ moved: number; topic: string | null }> {
    const dueAt = this.#p.forwardDueAt;
    if (dueAt === undefined || dueAt <= Date.now()) {
      const forwarded = await this.#forwardDue(Math.min(limit, FORWARD_BATCH));
      if (forwarded.moved > 0) return forwarded;
    }
    let moved = 0;
    let topic: string | null = null;
    for (const r of await this.#eachAnswering('relay', (s) => s.relayDueBulk(limit))) {
      moved += r.moved;
      topic ??= r.topic;
    }
    return { moved, topic };
  }

  /**
   * Copies due rows of `peak.mq_forward` (main) to their topics' databases, then deletes
   * them, under their row locks (another node's relay skips them). Ids the target holds
   * already are not copied again. A row whose topic is gone, or that its topic refuses, keeps
   * the reason in `error` (an operator's to look at) and is not tried again.
   */
  async #forwardDue(limit: number): Promise<{ moved: number; topic: string | null }> {
    const client = await this.#p.main.pool.connect();
    try {
      await client.query('BEGIN');
      const { rows } = await client.query<
        Pick<
          PendingRow,
          'seq' | 'msg_id' | 'topic' | 'tag' | 'keys' | 'msg_group' | 'props' | 'body' | 'born_at'
        > & { born_ms: string }
      >(
        `SELECT seq::text, msg_id::text, topic, tag, keys, msg_group, props, body, born_at,
                floor(extract(epoch FROM born_at) * 1000)::bigint::text AS born_ms
           FROM peak.mq_forward WHERE error IS NULL AND deliver_at <= now()
          ORDER BY deliver_at, seq LIMIT $1 FOR UPDATE SKIP LOCKED`,
        [limit],
      );
      if (rows.length === 0) {
        await client.query('COMMIT');
        return { moved: 0, topic: null };
      }
      const done: string[] = [];
      const failed: { seq: string; error: string }[] = [];
      let moved = 0;
      const byTopic = new Map<string, typeof rows>();
      for (const r of rows) byTopic.set(r.topic, [...(byTopic.get(r.topic) ?? []), r]);
      for (const [topic, part] of byTopic) {
        let target: Database | undefined;
        try {
          const db = await this.#p.of(topic);
          target = db;
          if (topic.startsWith(SHADOW_PREFIX))
            await shadowTopicOf(this, topic.slice(SHADOW_PREFIX.length));
          // The same id, topic and birth time (ms, as the copy keeps it): this row's copy.
          // Ids made by SQL on two databases could meet; with the birth time too they cannot.
          const held = await db.pool.query<{ id: string; born: string }>(
            `SELECT msg_id::text AS id, floor(extract(epoch FROM born_at) * 1000)::bigint::text AS born
               FROM peak.mq_messages WHERE msg_id = ANY($1::bigint[]) AND topic = $2`,
            [part.map((r) => r.msg_id), topic],
          );
          const copied = new Set(held.rows.map((r) => `${r.id}/${r.born}`));
          const fresh = part.filter((r) => !copied.has(`${r.msg_id}/${r.born_ms}`));
          if (fresh.length > 0)
            await db.store.append(
              fresh.map((r) => ({
                topic,
                msgId: BigInt(r.msg_id),
                tag: r.tag,
                keys: r.keys,
                group: r.msg_group,
                props: r.props,
                body: r.body,
                bornAt: r.born_at,
              })),
            );
          moved += fresh.length;
          done.push(...part.map((r) => r.seq));
        } catch (err) {
          if (!isPeakError(err) || err.code === ErrorCodes.DB_UNREACHABLE) {
            // The topic's database down: its rows wait for a later pass, the others go on.
            this.#p.failed(target ?? this.#p.main, `forwarding messages of ${topic}`, err);
            continue;
          }
          // Refused (its topic gone): kept with the reason for an operator.
          for (const r of part) failed.push({ seq: r.seq, error: `${err.code}: ${err.message}` });
        }
      }
      if (done.length > 0)
        await client.query('DELETE FROM peak.mq_forward WHERE seq = ANY($1::bigint[])', [done]);
      for (const f of failed)
        await client.query('UPDATE peak.mq_forward SET error = $2 WHERE seq = $1', [
          f.seq,
          f.error,
        ]);
      await client.query('COMMIT');
      if (failed.length > 0)
        this.#p.logger.error(
          { count: failed.length, error: failed[0]!.error },
          'mq: messages enqueued for a topic on another database could not be delivered; kept in peak.mq_forward with the reason',
        );
      return { moved, topic: rows[0]!.topic };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  async relayDue(limit: number): Promise<{ moved: number; rows: PendingRow[] }> {
    const all = await this.#eachAnswering('relay', (s) => s.relayDue(limit));
    return { moved: all.reduce((n, r) => n + r.moved, 0), rows: all.flatMap((r) => r.rows) };
  }

  async nextDue(): Promise<Date | undefined> {
    const forward = await this.#p.main.pool.query<{ d: Date | null }>(
      'SELECT min(deliver_at) AS d FROM peak.mq_forward WHERE error IS NULL',
    );
    this.#p.forwardDueAt = forward.rows[0]?.d?.getTime() ?? Number.POSITIVE_INFINITY;
    const dues = [
      ...(await this.#eachAnswering('relay', (s) => s.nextDue())),
      forward.rows[0]?.d ?? undefined,
    ].filter((d): d is Date => d !== undefined);
    return dues.length === 0 ? undefined : new Date(Math.min(...dues.map((d) => d.getTime())));
  }

  async pendingById(id: string): Promise<PendingRow[]> {
    return (await this.#each((s) => s.pendingById(id))).flat();
  }

  // ---------------------------------------------------------------- half messages

  async addHalves(items: readonly PendingInput[]): Promise<void> {
    const by = await byDatabase(
      items,
      (i) => i.topic,
      (t) => this.#dbOf(t),
    );
    await Promise.all([...by].map(([db, part]) => db.store.addHalves(part)));
  }

  async commitHalves(ids: readonly string[]): Promise<boolean[]> {
    // A half is on its topic's database only: committed where it is found.
    const settled = await Promise.allSettled(this.#p.all.map((d) => d.store.commitHalves(ids)));
    const all = settled.map((r) => (r.status === 'fulfilled' ? r.value : []));
    if (all.some((r, d) => d > 0 && r.includes(true))) await this.#kickRelays();
    const out = ids.map((_, i) => all.some((r) => r[i] === true));
    // One not found while a database did not answer may be there: say so, not "unknown".
    const down = settled.find((r) => r.status === 'rejected');
    if (down !== undefined && out.includes(false)) throw down.reason;
    return out;
  }

  /**
   * Wakes every node's relay (they LISTEN on main): a database's own store notifies on its
   * own database when it commits halves or resends dead letters, which no node listens to.
   */
  async #kickRelays(): Promise<void> {
    await this.#p.main.pool.query("SELECT pg_notify('peak_mq_pending', '')");
  }

  async rollbackHalf(id: string): Promise<boolean> {
    const settled = await Promise.allSettled(this.#p.all.map((d) => d.store.rollbackHalf(id)));
    if (settled.some((r) => r.status === 'fulfilled' && r.value)) return true;
    const down = settled.find((r) => r.status === 'rejected');
    if (down !== undefined) throw down.reason;
    return false;
  }

  async dueChecks(producerGroup: string, limit: number, intervalMs: number): Promise<PendingRow[]> {
    const out: PendingRow[] = [];
    for (const d of this.#p.all) {
      if (out.length >= limit) break;
      try {
        out.push(...(await d.store.dueChecks(producerGroup, limit - out.length, intervalMs)));
      } catch (err) {
        this.#p.failed(d, 'check-backs', err);
      }
    }
    return out;
  }

  // ---------------------------------------------------------------- groups and consumers

  upsertGroup(name: string, s: GroupSettings): Promise<void> {
    // Where the subscription is: its receive, nack and dead letters read them there.
    return this.#home.store.upsertGroup(name, s);
  }

  group(name: string): Promise<GroupSettings | undefined> {
    return this.#home.store.group(name);
  }

  async heartbeat(
    grp: string,
    topic: string,
    consumerId: string,
    sessionMs: number,
  ): Promise<string[]> {
    return (await this.#dbOf(topic)).store.heartbeat(grp, topic, consumerId, sessionMs);
  }

  async leave(grp: string, topic: string, consumerId: string): Promise<void> {
    return (await this.#dbOf(topic)).store.leave(grp, topic, consumerId);
  }

  async resetOffsets(
    grp: string,
    topic: string,
    at: Date,
  ): Promise<{ queueId: number; offset: string }[]> {
    return (await this.#dbOf(topic)).store.resetOffsets(grp, topic, at);
  }

  // ---------------------------------------------------------------- deliveries

  async queuesWithWork(
    grp: string,
    queues: readonly QueueRef[],
    window: number,
  ): Promise<QueueWork> {
    const by = await byDatabase(
      queues,
      (q) => q.topic,
      (t) => this.#dbOf(t),
    );
    const only = by.size === 1 ? [...by][0] : undefined;
    if (only !== undefined) return only[0].store.queuesWithWork(grp, only[1], window);
    const all = await Promise.all(
      [...by].map(([db, part]) => db.store.queuesWithWork(grp, part, window)),
    );
    const next = all
      .map((w) => w.nextVisibleAt)
      .filter((d): d is Date => d !== undefined)
      .map((d) => d.getTime());
    return {
      ready: all.flatMap((w) => w.ready),
      nextVisibleAt: next.length === 0 ? undefined : new Date(Math.min(...next)),
    };
  }

  async claim(req: ClaimRequest): Promise<Delivery[]> {
    return (await this.#dbOf(req.queue.topic)).store.claim(req);
  }

  async inflightOfConsumer(grp: string, consumerId: string): Promise<number> {
    return (
      await this.#eachAnswering('in-flight count', (s) => s.inflightOfConsumer(grp, consumerId))
    ).reduce((a, b) => a + b, 0);
  }

  async ack(grp: string, refs: readonly DeliveryRef[]): Promise<AckResult> {
    const by = await byDatabase(
      refs,
      (r) => r.topic,
      (t) => this.#dbOf(t),
    );
    const all = await Promise.all([...by].map(([db, part]) => db.store.ack(grp, part)));
    return { acked: all.flatMap((r) => r.acked), batches: all.flatMap((r) => r.batches) };
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
    return (await this.#dbOf(ref.topic)).store.nack(
      grp,
      deadLetterGroup,
      ref,
      settings,
      inPlace,
      reason,
      delayOverrideMs,
    );
  }

  // ---------------------------------------------------------------- dead letters

  async listDlq(grp: string, limit: number): Promise<DeadLetterRow[]> {
    const all = (await this.#each((s) => s.listDlq(grp, limit))).flat();
    return all.sort((a, b) => b.dead_at.getTime() - a.dead_at.getTime()).slice(0, limit);
  }

  async resendDlq(grp: string, ids: readonly string[] | 'all'): Promise<string[]> {
    const all = await this.#each((s) => s.resendDlq(grp, ids));
    if (all.some((r, d) => d > 0 && r.length > 0)) await this.#kickRelays();
    return all.flat();
  }

  async dlqById(id: string): Promise<DeadLetterState[]> {
    return (await this.#each((s) => s.dlqById(id))).flat();
  }

  // ---------------------------------------------------------------- query and trace

  async byId(id: string): Promise<MessageRow[]> {
    const out: MessageRow[] = [];
    const all = await Promise.all(
      this.#p.all.map(async (d) => ({ d, rows: await d.store.byId(id) })),
    );
    for (const { d, rows } of all) {
      for (const r of rows) {
        this.#p.copyHome.set(r, d);
        out.push(r);
      }
    }
    // The original first (it has no origin topic), then retry copies, oldest first.
    return out.sort(
      (a, b) =>
        Number(a.origin_topic !== null) - Number(b.origin_topic !== null) ||
        a.stored_at.getTime() - b.stored_at.getTime(),
    );
  }

  async byKey(
    key: string,
    topic: string | undefined,
    limit: number,
    after?: MessagePosition,
  ): Promise<(MessageRow & { stored_us: string })[]> {
    if (topic !== undefined) return (await this.#dbOf(topic)).store.byKey(key, topic, limit, after);
    const all = (await this.#each((s) => s.byKey(key, undefined, limit, after))).flat();
    // Newest first, in the order each database's page uses, so `after` pages on.
    return all
      .sort(
        (a, b) =>
          cmpBig(b.stored_us, a.stored_us) ||
          b.topic.localeCompare(a.topic) ||
          b.queue_id - a.queue_id ||
          cmpBig(b.queue_offset, a.queue_offset),
      )
      .slice(0, limit);
  }

  async byTime(
    topic: string,
    tag: string | undefined,
    from: Date,
    to: Date,
    limit: number,
    after?: MessagePosition,
  ): Promise<(MessageRow & { stored_us: string })[]> {
    return (await this.#dbOf(topic)).store.byTime(topic, tag, from, to, limit, after);
  }

  async inflightFirst(copies: readonly Copy[]): Promise<InflightFirst[]> {
    const by = await this.#copiesByDatabase(copies);
    return (await Promise.all([...by].map(([db, part]) => db.store.inflightFirst(part)))).flat();
  }

  trace(events: readonly TraceEvent[]): Promise<void> {
    return this.#p.main.store.trace(events);
  }

  async traceBatches(events: readonly BatchTraceEvent[]): Promise<void> {
    const by = await byDatabase(
      events,
      (e) => e.topic,
      (t) => this.#dbOf(t),
    );
    await Promise.all([...by].map(([db, part]) => db.store.traceBatches(part)));
  }

  async flushTrace(): Promise<void> {
    await this.#eachAnswering('trace', (s) => s.flushTrace());
  }

  async traceOf(id: string, copies: readonly Copy[]): Promise<TraceRow[]> {
    const by = await this.#copiesByDatabase(copies);
    const all = await Promise.all(this.#p.all.map((d) => d.store.traceOf(id, by.get(d) ?? [])));
    return all.flat().sort((a, b) => a.at.getTime() - b.at.getTime());
  }

  /** A message's stored copies by database (each as `byId` found it; else by its topic). */
  async #copiesByDatabase(copies: readonly Copy[]): Promise<Map<Database, Copy[]>> {
    const out = new Map<Database, Copy[]>();
    for (const c of copies) {
      const db = this.#p.copyHome.get(c) ?? (await this.#dbOf(c.topic));
      out.set(db, [...(out.get(db) ?? []), c]);
    }
    return out;
  }

  // ---------------------------------------------------------------- backlog and retention

  async subscriptions(): Promise<Subscription[]> {
    const seen = new Map<string, Subscription>();
    for (const s of (await this.#eachAnswering('backlog', (st) => st.subscriptions())).flat())
      seen.set(`${s.grp}\n${s.topic}`, s);
    return [...seen.values()];
  }

  async backlog(grp: string, topic: string): Promise<QueueBacklog[]> {
    // A retry topic's backlog is the group's on every database.
    if (topic.startsWith(RETRY_PREFIX))
      return mergeBacklogs(await this.#eachAnswering('backlog', (s) => s.backlog(grp, topic)));
    return (await this.#dbOf(topic)).store.backlog(grp, topic);
  }

  async maintainPartitions(
    retentionMs: number,
    aheadDays?: number,
  ): Promise<{ created: string[]; dropped: string[] }> {
    const all = await this.#eachAnswering('partitions', (s) =>
      s.maintainPartitions(retentionMs, aheadDays),
    );
    return { created: all.flatMap((r) => r.created), dropped: all.flatMap((r) => r.dropped) };
  }
}

function cmpBig(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}
