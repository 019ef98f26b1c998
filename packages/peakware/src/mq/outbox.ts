/**
 * The transactional outbox on the application's own PostgreSQL (any database the
 * application writes its business rows to, e.g. an order shard): `outbox.send(client, …)`
 * writes the message into `peak_outbox.messages` inside the caller's open transaction, so
 * the message exists exactly when the business rows commit, with no call to the control
 * plane on the request path. The relay (`start()`) moves committed rows to the broker in
 * batches and deletes them:
 *
 * - **at least once**: rows are deleted in the same transaction only after the broker has
 *   acknowledged them; a crash between the two sends them again (consumers are idempotent,
 *   as with every at-least-once queue);
 * - **in order per message group**: one relay at a time works an outbox (it holds a
 *   transaction-scoped advisory lock for its pass; the others skip), reading rows in id
 *   order and sending each topic's run of rows as one ordered batch;
 * - **bounded**: a pass takes at most `batchSize` rows and goes again at once only when
 *   the batch was full; otherwise the relay waits for the next poll (`idleMs`) or for a
 *   wake-up from a `send` in this process;
 * - **nothing lost on refusal**: a row the broker refuses for good (unknown topic, body too
 *   large, bad signature) moves to `peak_outbox.dead` with the broker's message, counted
 *   and logged; network failures and 5xx leave the rows for the next pass.
 *
 * `Outbox.install(pool)` (or `peak mq outbox install --db <url>`) creates the two tables.
 * The relay's figures (relayed, dead, pending, lag) are in {@link Outbox.stats} and, as
 * Prometheus families, in {@link Outbox.families} for a service's `/metrics`.
 *
 * `sendInTransaction` is the other form: it writes into the broker's own outbox and
 * needs the application's transaction to run on the broker's database.
 */
import { Backoff } from '../core/backoff.js';
import { currentContext } from '../core/context.js';
import { type ControlPlaneOptions, serversOf } from '../core/control-plane-client.js';
import { ErrorCodes, errorMessage, isPeakError, PeakError } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import type { MetricFamily } from '../telemetry/prometheus-format.js';
import type { KeyRing } from './body-cipher.js';
import { BrokerClient, type MqTransportOption } from './broker-client.js';
import type { OutgoingMessage, WireMessage } from './message-types.js';
import type { SqlClient } from './send-in-transaction.js';
import { resign, toWire } from './wire-encoding.js';

/** What runs {@link Outbox.sendWith}'s statement: a pg pool or client, or a ShardedDatabase. */
export interface SqlRunner<R = Record<string, unknown>> {
  query(text: string, values?: readonly unknown[]): Promise<{ rows: R[] }>;
}

/** What the relay needs of a pool: `pg.Pool` fits. */
export interface OutboxPool {
  connect(): Promise<
    SqlClient & {
      release(err?: Error | boolean): void;
      /** A pg client's 'error' event (a connection lost while checked out); optional. */
      on?(event: 'error', listener: (err: Error) => void): unknown;
      off?(event: 'error', listener: (err: Error) => void): unknown;
    }
  >;
  query: SqlClient['query'];
}

/** Options of an {@link Outbox}. */
export interface OutboxOptions extends ControlPlaneOptions, MqTransportOption {
  /** The application's database (where its business transactions run). */
  pool: OutboxPool;
  /** A name for logs and metrics labels, e.g. the data source (`ds0`). Default `default`. */
  name?: string;
  /** Produce secrets of secured topics: messages to them are signed when written. */
  secrets?: Readonly<Record<string, string>>;
  /** Encrypt bodies with this key ring's current key when written. */
  encryption?: KeyRing;
  /** Rows per relay pass. Default 500. */
  batchSize?: number;
  /**
   * Poll interval of an idle relay, ms. Default 100. A `send` through this Outbox also
   * wakes its relay `kickMs` later (after the caller's commit, as a rule), so events
   * written by this process reach the broker in about that time; rows written by other
   * processes sharing the database wait for the next poll. A relay that finds another one
   * working stands by for 10 times this, and sends do not wake it meanwhile.
   */
  idleMs?: number;
  /**
   * How long after a send its relay wakes, ms. Default 50: sends within that time share
   * one pass (one broker call and five SQL round trips), which is what keeps the relay's
   * cost per message falling as the load rises; events reach the broker that much later.
   */
  kickMs?: number;
  logger?: Logger;
}

/** The relay's figures. */
export interface OutboxStats {
  /** Messages the broker acknowledged. */
  relayed: number;
  /** Messages the broker refused for good, moved to `peak_outbox.dead`. */
  dead: number;
  /** Passes that failed (broker unreachable, 5xx, database error); their rows stay. */
  failedPasses: number;
  /** Rows left unsent after the last pass (0 when it emptied the outbox). */
  pending: number;
  /** Age of the oldest row the last pass saw, ms: how far the relay is behind. */
  lagMs: number;
}

const LOCK_KEY = 0x7065616b; // 'peak': the relay lock, one per database

const INSTALL_SQL = `
  CREATE SCHEMA IF NOT EXISTS peak_outbox;
  CREATE TABLE IF NOT EXISTS peak_outbox.messages (
    id         bigserial PRIMARY KEY,
    topic      text NOT NULL,
    stress     boolean NOT NULL DEFAULT false,
    wire       jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
  );
  CREATE TABLE IF NOT EXISTS peak_outbox.dead (
    id         bigint PRIMARY KEY,
    topic      text NOT NULL,
    stress     boolean NOT NULL,
    wire       jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    failed_at  timestamptz NOT NULL DEFAULT now(),
    error      text NOT NULL
  );`;

/** Codes after which sending the same rows again cannot succeed. */
const PERMANENT = new Set<string>([
  ErrorCodes.MQ_UNKNOWN_TOPIC,
  ErrorCodes.MQ_MESSAGE_TOO_LARGE,
  ErrorCodes.MQ_BAD_SIGNATURE,
  ErrorCodes.MQ_FORBIDDEN,
  ErrorCodes.INVALID_ARGUMENT,
]);

/** A message made ready for the outbox by {@link Outbox.prepare}. */
export interface PreparedOutboxMessage {
  readonly topic: string;
  /** Whether it was made under stress traffic (the relay sends it to the shadow topic). */
  readonly stress: boolean;
  /** Its wire form as JSON text. */
  readonly wire: string;
}

interface Row {
  id: string;
  topic: string;
  stress: boolean;
  wire: WireMessage;
  age_ms: number;
}

/** A transactional outbox in the application's database, and its relay to the broker. */
export class Outbox {
  readonly #o: OutboxOptions;
  readonly #client: BrokerClient;
  readonly #logger: Logger;
  readonly #stats: OutboxStats = { relayed: 0, dead: 0, failedPasses: 0, pending: 0, lagMs: 0 };
  #running: Promise<void> | undefined;
  #stopping = false;
  #wake: (() => void) | undefined;
  #kick: NodeJS.Timeout | undefined;
  #standbyUntil = 0;

  constructor(options: OutboxOptions) {
    this.#o = options;
    this.#client = new BrokerClient({
      servers: serversOf(options, 'Outbox'),
      ...(options.token === undefined ? {} : { token: options.token }),
      ...(options.transport === undefined ? {} : { transport: options.transport }),
    });
    this.#logger = options.logger ?? silentLogger();
  }

  /** Creates `peak_outbox.messages` and `peak_outbox.dead` in `pool`'s database (idempotent). */
  static async install(pool: Pick<OutboxPool, 'query'>): Promise<void> {
    await pool.query(INSTALL_SQL);
  }

  /**
   * Writes `message` to the outbox in the same statement as the caller's own write: `sql`
   * is wrapped in a writable CTE that inserts the outbox row, and PostgreSQL runs the whole
   * statement as one implicit transaction, so the message exists exactly when the write
   * commits, in ONE round trip (no BEGIN, no COMMIT: `send` inside a transaction costs
   * four). `sql` is one statement with parameters `$1..$n` (`params`); it may have its own
   * WITH clause. `runner` runs the result: a pool or client on this outbox's database, or a
   * `ShardedDatabase` whose layout lists `peak_outbox.messages` in `localTables` and that
   * routes the statement to this outbox's data source. Resolves with the statement's rows.
   */
  async sendWith<R = Record<string, unknown>>(
    runner: SqlRunner<R>,
    sql: string,
    params: readonly unknown[],
    topic: string,
    message: OutgoingMessage,
  ): Promise<{ rows: R[] }> {
    return this.sendBatchWith(runner, sql, params, [this.prepare(topic, message)]);
  }

  /**
   * A message as the outbox stores it, made now: checked, signed and encrypted, with the
   * current call context (its trace and stress flag) in it. Make it in the caller's context
   * and write it later with {@link sendBatchWith}, when one statement carries the writes of
   * several callers (group commit).
   */
  prepare(topic: string, message: OutgoingMessage): PreparedOutboxMessage {
    return {
      topic,
      stress: currentContext()?.stress === true,
      wire: JSON.stringify(this.#wire(topic, message)),
    };
  }

  /**
   * {@link sendWith} for several messages: `sql` (parameters `$1..$n`) and the outbox rows
   * of `messages` commit in one statement, both or neither. This is how an application
   * group-commits its own writes with their events (one statement and one WAL flush for a
   * batch of orders; `GroupCommit` in `peakware/core` gathers them). The rows are stored
   * in the order given, which is the order the relay sends them in.
   */
  async sendBatchWith<R = Record<string, unknown>>(
    runner: SqlRunner<R>,
    sql: string,
    params: readonly unknown[],
    messages: readonly PreparedOutboxMessage[],
  ): Promise<{ rows: R[] }> {
    if (messages.length === 0) {
      throw new PeakError(ErrorCodes.INVALID_ARGUMENT, 'outbox.sendBatchWith: no messages', {
        details: { input: 'messages' },
      });
    }
    const n = params.length;
    const cte = `peak_outbox_message AS (INSERT INTO peak_outbox.messages (topic, stress, wire) SELECT * FROM unnest($${n + 1}::text[], $${n + 2}::boolean[], $${n + 3}::jsonb[]))`;
    const head = /^\s*WITH(\s+RECURSIVE)?\s/i.exec(sql);
    const text =
      head === null ? `WITH ${cte} ${sql}` : `${head[0]}${cte}, ${sql.slice(head[0].length)}`;
    try {
      const res = await runner.query(text, [
        ...params,
        messages.map((m) => m.topic),
        messages.map((m) => m.stress),
        messages.map((m) => m.wire),
      ]);
      this.#kickAfterCommit();
      return { rows: res.rows };
    } catch (err) {
      throw this.#explain(err, messages.length === 1 ? 'outbox.sendWith' : 'outbox.sendBatchWith');
    }
  }

  /**
   * Writes `message` for `topic` in the caller's transaction (call between BEGIN and
   * COMMIT on `client`); it reaches the broker only if that transaction commits. Returns
   * the outbox row id (the broker assigns the message id when the relay delivers it).
   */
  async send(client: SqlClient, topic: string, message: OutgoingMessage): Promise<{ id: string }> {
    const wire = this.#wire(topic, message);
    try {
      const { rows } = await client.query(
        'INSERT INTO peak_outbox.messages (topic, stress, wire) VALUES ($1, $2, $3) RETURNING id::text AS id',
        [topic, currentContext()?.stress === true, JSON.stringify(wire)],
      );
      this.#kickAfterCommit();
      return { id: String(rows[0]?.id) };
    } catch (err) {
      throw this.#explain(err, 'outbox.send');
    }
  }

  /** The message as stored: checked, signed and encrypted as this outbox is told to. */
  #wire(topic: string, message: OutgoingMessage): WireMessage {
    if (topic.length === 0) {
      throw new PeakError(ErrorCodes.INVALID_ARGUMENT, 'outbox.send: topic must be non-empty', {
        details: { input: 'topic' },
      });
    }
    return toWire(topic, message, {
      secret: this.#o.secrets?.[topic],
      ring: this.#o.encryption,
    });
  }

  /**
   * A stored message signed again at relay time (a new nonce and signing time), so one
   * that waited in the outbox longer than the broker's replay window still gets in.
   */
  #fresh(topic: string, wire: WireMessage): WireMessage {
    const secret = this.#o.secrets?.[topic];
    if (secret === undefined || wire.signature === undefined) return wire;
    return resign(secret, topic, wire);
  }

  /** Wakes the relay `kickMs` from now, once the caller has (most likely) committed. */
  #kickAfterCommit(): void {
    if (
      this.#running !== undefined &&
      this.#kick === undefined &&
      Date.now() >= this.#standbyUntil
    ) {
      this.#kick = setTimeout(() => {
        this.#kick = undefined;
        this.#wake?.();
      }, this.#o.kickMs ?? 50);
      this.#kick.unref();
    }
  }

  /** A missing outbox table said plainly; anything else as it is. */
  #explain(err: unknown, what: string): unknown {
    if ((err as { code?: string }).code === '42P01') {
      return new PeakError(
        ErrorCodes.USAGE,
        `${what}: this database has no peak_outbox.messages table; create it with Outbox.install(pool) or \`peak mq outbox install --db <url>\``,
        { cause: err },
      );
    }
    return err;
  }

  /** Starts the relay (idempotent). */
  start(): this {
    if (this.#running !== undefined) return this;
    this.#stopping = false;
    this.#running = this.#loop();
    return this;
  }

  /**
   * Runs one relay pass now; resolves with the number of rows it handled, or -1 when
   * another relay holds this outbox's lock.
   */
  async relayOnce(): Promise<number> {
    const client = await this.#o.pool.connect();
    let broken: Error | undefined;
    // The connection may drop while the pass waits for the broker (a PostgreSQL restart):
    // the client's 'error' event must not crash the process; the next statement reports it.
    const onError = (err: Error) => {
      broken ??= err;
    };
    client.on?.('error', onError);
    try {
      // BEGIN, the relay lock and (only while holding it: taking an advisory lock this
      // transaction holds succeeds again) the oldest rows in one round trip: the simple
      // protocol takes the three statements (key and limit are numbers written in, so there
      // is no parameter to bind), and pg answers with three results.
      const limit = this.#o.batchSize ?? 500;
      const opened = (await client.query(
        `BEGIN; SELECT pg_try_advisory_xact_lock(${LOCK_KEY}) AS got;
         SELECT id::text AS id, topic, stress, wire,
                (extract(epoch FROM now() - created_at) * 1000)::float8 AS age_ms
           FROM peak_outbox.messages m WHERE (SELECT pg_try_advisory_xact_lock(${LOCK_KEY}))
          ORDER BY m.id LIMIT ${Math.max(1, Math.floor(limit)) + 1}`,
      )) as unknown as { rows: Record<string, unknown>[] }[];
      if (opened[1]?.rows[0]?.got !== true) {
        await client.query('ROLLBACK');
        return -1;
      }
      const rows = (opened[2]?.rows ?? []) as unknown as Row[];
      const batch = rows.slice(0, limit);
      this.#stats.lagMs = Math.round(batch[0]?.age_ms ?? 0);
      this.#stats.pending = rows.length > limit ? rows.length - limit : 0;
      if (batch.length === 0) {
        await client.query('COMMIT');
        return 0;
      }
      const sent: string[] = [];
      const dead: { ids: string[]; error: string }[] = [];
      for (const run of runsOf(batch)) {
        try {
          await this.#client.send(
            run.topic,
            run.rows.map((r) => this.#fresh(run.topic, r.wire)),
          );
          sent.push(...run.rows.map((r) => r.id));
        } catch (err) {
          if (!isPeakError(err) || !PERMANENT.has(err.code)) throw err;
          dead.push({ ids: run.rows.map((r) => r.id), error: errorMessage(err) });
          this.#logger.error(
            { outbox: this.#o.name ?? 'default', topic: run.topic, messages: run.rows.length, err },
            'outbox: the broker refused messages for good; moved to peak_outbox.dead',
          );
        }
      }
      for (const d of dead) {
        await client.query(
          `WITH moved AS (DELETE FROM peak_outbox.messages WHERE id = ANY($1::bigint[]) RETURNING *)
           INSERT INTO peak_outbox.dead (id, topic, stress, wire, created_at, error)
           SELECT id, topic, stress, wire, created_at, $2 FROM moved`,
          [d.ids, d.error],
        );
      }
      // The ids are bigints read as text: written into the statement, the delete and the
      // commit go in one round trip.
      const ids = sent.filter((id) => /^\d+$/.test(id));
      await client.query(
        ids.length > 0
          ? `DELETE FROM peak_outbox.messages WHERE id = ANY('{${ids.join(',')}}'::bigint[]); COMMIT`
          : 'COMMIT',
      );
      this.#stats.relayed += sent.length;
      this.#stats.dead += dead.reduce((n, d) => n + d.ids.length, 0);
      return batch.length;
    } catch (err) {
      broken = err as Error;
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.off?.('error', onError);
      client.release(broken);
    }
  }

  async #loop(): Promise<void> {
    // After a failed pass: 100 ms doubling to 5 s, jittered; a good pass starts over.
    const retries = new Backoff({ initialMs: 100, maxMs: 5000 });
    while (!this.#stopping) {
      let handled = 0;
      let backoff = 0;
      try {
        handled = await this.relayOnce();
        retries.reset();
      } catch (err) {
        this.#stats.failedPasses++;
        backoff = retries.next();
        this.#logger.warn(
          { outbox: this.#o.name ?? 'default', err, retryInMs: backoff },
          'outbox: relay pass failed; its messages stay and are sent again',
        );
      }
      const idleMs = this.#o.idleMs ?? 100;
      // A full batch means more is waiting: go again at once. Another relay at work: stand by.
      if (handled >= (this.#o.batchSize ?? 500) && backoff === 0) continue;
      const wait = backoff > 0 ? backoff : handled < 0 ? idleMs * 10 : idleMs;
      // Standing by: another relay holds the lock and will take this process's rows too.
      this.#standbyUntil = handled < 0 ? Date.now() + wait : 0;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  /** The relay's figures. */
  stats(): OutboxStats {
    return { ...this.#stats };
  }

  /** The figures as Prometheus families, labelled by outbox name, for a `/metrics` page. */
  families(): MetricFamily[] {
    const labels = { outbox: this.#o.name ?? 'default' };
    const s = this.#stats;
    const one = (name: string, help: string, type: 'counter' | 'gauge', value: number) => ({
      name,
      help,
      type,
      samples: [{ labels, value }],
    });
    return [
      one(
        'peak_outbox_relayed_total',
        'Messages the outbox relay delivered to the broker.',
        'counter',
        s.relayed,
      ),
      one(
        'peak_outbox_dead_total',
        'Messages the broker refused for good (in peak_outbox.dead).',
        'counter',
        s.dead,
      ),
      one(
        'peak_outbox_failed_passes_total',
        'Relay passes that failed and were retried.',
        'counter',
        s.failedPasses,
      ),
      one(
        'peak_outbox_lag_seconds',
        'Age of the oldest unrelayed message at the last pass.',
        'gauge',
        s.lagMs / 1000,
      ),
    ];
  }

  /**
   * Stops the relay after its current pass; with `drain`, first relays what is committed
   * (bounded by `drainMs`, default 5 s), so a graceful stop leaves nothing behind.
   */
  async close(options: { drain?: boolean; drainMs?: number } = {}): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#kick);
    this.#kick = undefined;
    this.#wake?.();
    await this.#running;
    this.#running = undefined;
    if (options.drain === true) {
      const until = Date.now() + (options.drainMs ?? 5000);
      while (Date.now() < until) {
        const n = await this.relayOnce().catch(() => 0);
        if (n <= 0 && this.#stats.pending === 0) break;
      }
    }
    this.#client.close();
  }
}

/** Consecutive rows of one topic and one traffic kind: one ordered batch each. */
function runsOf(rows: Row[]): { topic: string; rows: Row[] }[] {
  const runs: { topic: string; stress: boolean; rows: Row[] }[] = [];
  for (const r of rows) {
    const last = runs.at(-1);
    if (last !== undefined && last.topic === r.topic && last.stress === r.stress) last.rows.push(r);
    else runs.push({ topic: r.topic, stress: r.stress, rows: [r] });
  }
  return runs;
}
