/**
 * Drains the {@link RedisStockEngine}'s stream of deduction and release records into the
 * PostgreSQL stock tables, behind the sale, as one of a consumer group (any number of
 * writers, in any processes, share the work):
 *
 * - reads a batch with `XREADGROUP` and applies it in ONE transaction: the SKUs' stock rows
 *   locked (in sku order), deductions inserted with `ON CONFLICT DO NOTHING`, releases
 *   upserted, and each stock row moved by exactly what the rows that changed say: a
 *   redelivered record changes nothing, so delivery at least once is enough;
 * - `XACK`s (and `XDEL`s, keeping the stream short) only after the commit;
 * - every `claimIdleMs / 2` takes over, with `XAUTOCLAIM`, entries another writer (a crashed
 *   one, or itself after a failed batch) has held longer than `claimIdleMs`;
 * - drops records of an earlier sale of the SKU (an older epoch: the SKU was loaded again)
 *   and leaves records of a newer one pending until PostgreSQL has that load.
 *
 * The stream, not Peakware's MQ, carries the records because the deduction script appends
 * the record in the same atomic step that deducts: no crash can leave a deduction that was
 * never queued. See `redis-stock-engine.ts`.
 */
import os from 'node:os';
import { Redis } from 'ioredis';
import type pg from 'pg';
import { errorMessage, UsageError } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { checkSchema, DEFAULT_STOCK_SCHEMA } from './pg-stock-engine.js';
import {
  DEFAULT_WRITER_GROUP,
  ensureWriterGroup,
  type StockKeys,
  stockKeys,
} from './redis-stock-engine.js';

/** Options of {@link StockWriter}. */
export interface StockWriterOptions {
  /** A Redis URL, or an ioredis client (the writer uses a duplicate of it: its reads block). */
  redis: string | Redis;
  /** The database with the stock tables (yours: the writer never ends it). */
  pool: pg.Pool;
  /** The engine's name (its key namespace); default `default`. */
  name?: string;
  /** Schema of the stock tables; default `peak_stock`. */
  schema?: string;
  /** Consumer group; default `peak-stock-writer`. */
  group?: string;
  /** This writer's consumer name; default `<host>-<pid>-<random>`. */
  consumer?: string;
  /** Records per batch; default 500. */
  batchSize?: number;
  /** How long one read waits for new records, ms; default 200. */
  blockMs?: number;
  /** Entries held longer than this by any writer are taken over, ms; default 5 000. */
  claimIdleMs?: number;
  /**
   * After a batch smaller than `batchSize`, wait this long before reading again, so the
   * next transaction carries more records (fewer PostgreSQL and Redis round trips per
   * deduction, PostgreSQL's copy up to this much later). Default 0.
   */
  lingerMs?: number;
  logger?: Logger;
}

/** A writer's figures since start. */
export interface StockWriterStats {
  /** Records applied (committed and acknowledged). */
  applied: number;
  /** Records of an earlier sale, dropped. */
  dropped: number;
  /** Transactions committed. */
  batches: number;
  /** Batches (or reads) that failed; their records stay pending and are taken over later. */
  failures: number;
  /** Entries taken over from idle holders with XAUTOCLAIM. */
  claimed: number;
}

interface StockRecord {
  id: string;
  kind: 'd' | 'r';
  sku: string;
  orderId: string;
  qty: number;
  epoch: number;
}

type StreamEntry = [id: string, fields: string[]];

function parseEntry([id, fields]: StreamEntry): StockRecord | undefined {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
  const qty = Number(f.q);
  const epoch = Number(f.e);
  if ((f.k !== 'd' && f.k !== 'r') || !f.s || !f.o || !(qty > 0) || !(epoch > 0)) return undefined;
  return { id, kind: f.k, sku: f.s, orderId: f.o, qty, epoch };
}

/** The asynchronous writer of the Redis stock engine's records into PostgreSQL. */
export class StockWriter {
  readonly #redis: Redis;
  readonly #pool: pg.Pool;
  readonly #schema: string;
  readonly #keys: StockKeys;
  readonly #group: string;
  readonly #consumer: string;
  readonly #batchSize: number;
  readonly #blockMs: number;
  readonly #claimIdleMs: number;
  readonly #lingerMs: number;
  readonly #logger: Logger;
  readonly #stats: StockWriterStats = {
    applied: 0,
    dropped: 0,
    batches: 0,
    failures: 0,
    claimed: 0,
  };
  #running: Promise<void> | undefined;
  #stopping = false;
  #lastClaim = 0;

  constructor(options: StockWriterOptions) {
    this.#keys = stockKeys(options.name ?? 'default');
    this.#schema = checkSchema(options.schema ?? DEFAULT_STOCK_SCHEMA);
    this.#group = options.group ?? DEFAULT_WRITER_GROUP;
    this.#consumer =
      options.consumer ??
      `${os.hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    this.#batchSize = positive('batchSize', options.batchSize ?? 500);
    this.#blockMs = positive('blockMs', options.blockMs ?? 200);
    this.#claimIdleMs = positive('claimIdleMs', options.claimIdleMs ?? 5000);
    this.#lingerMs = options.lingerMs === undefined ? 0 : positive('lingerMs', options.lingerMs);
    this.#logger = options.logger ?? silentLogger();
    this.#pool = options.pool;
    const commandTimeout = this.#blockMs + 5000;
    this.#redis =
      typeof options.redis === 'string'
        ? new Redis(options.redis, { commandTimeout, maxRetriesPerRequest: 1 })
        : options.redis.duplicate({ commandTimeout, maxRetriesPerRequest: 1 });
    this.#redis.on('error', () => undefined); // each failed command is counted and logged
  }

  /** This writer's consumer name in the group. */
  get consumer(): string {
    return this.#consumer;
  }

  /** Starts draining (the group is created if missing); returns this. */
  start(): this {
    if (this.#running === undefined) {
      this.#stopping = false;
      this.#running = this.#loop();
    }
    return this;
  }

  /** The figures since start. */
  stats(): StockWriterStats {
    return { ...this.#stats };
  }

  /** Records in the stream not yet applied by any writer (pending or never read). */
  async backlog(): Promise<number> {
    return this.#redis.xlen(this.#keys.log);
  }

  /** Stops after the batch in hand and closes the writer's Redis connection. */
  async close(): Promise<void> {
    this.#stopping = true;
    await this.#running;
    this.#running = undefined;
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }

  async #loop(): Promise<void> {
    let grouped = false;
    let backoff = 50;
    while (!this.#stopping) {
      try {
        if (!grouped) {
          await ensureWriterGroup(this.#redis, this.#keys.log, this.#group);
          grouped = true;
        }
        if (Date.now() - this.#lastClaim >= this.#claimIdleMs / 2) {
          await this.#claim();
          this.#lastClaim = Date.now();
        }
        const got = (await this.#redis.xreadgroup(
          'GROUP',
          this.#group,
          this.#consumer,
          'COUNT',
          this.#batchSize,
          'BLOCK',
          this.#blockMs,
          'STREAMS',
          this.#keys.log,
          '>',
        )) as [string, StreamEntry[]][] | null;
        const entries = got?.[0]?.[1] ?? [];
        if (entries.length > 0) await this.#apply(entries);
        backoff = 50;
        if (this.#lingerMs > 0 && entries.length < this.#batchSize && !this.#stopping)
          await new Promise((r) => setTimeout(r, this.#lingerMs));
      } catch (err) {
        this.#stats.failures++;
        this.#logger.warn(
          { err: errorMessage(err), consumer: this.#consumer },
          'stock writer: a batch failed; its records stay pending and are retried',
        );
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 2000);
      }
    }
  }

  /** Takes over entries idle longer than `claimIdleMs`, a bounded number of pages per sweep. */
  async #claim(): Promise<void> {
    let cursor = '0-0';
    for (let page = 0; page < 100 && !this.#stopping; page++) {
      const [next, entries] = (await this.#redis.xautoclaim(
        this.#keys.log,
        this.#group,
        this.#consumer,
        this.#claimIdleMs,
        cursor,
        'COUNT',
        this.#batchSize,
      )) as [string, (StreamEntry | null)[]];
      const live = entries.filter((e): e is StreamEntry => e !== null);
      if (live.length > 0) {
        this.#stats.claimed += live.length;
        await this.#apply(live);
      }
      if (next === '0-0') return;
      cursor = next;
    }
  }

  /** Applies a batch in one transaction, then acknowledges it. */
  async #apply(entries: StreamEntry[]): Promise<void> {
    const records: StockRecord[] = [];
    const junk: string[] = [];
    for (const e of entries) {
      const r = parseEntry(e);
      if (r === undefined) junk.push(e[0]);
      else records.push(r);
    }
    if (junk.length > 0)
      this.#logger.error({ ids: junk }, 'stock writer: malformed stream entries, dropped');
    const s = this.#schema;
    const done: string[] = [...junk];
    let dropped = 0;
    let applied = 0;
    if (records.length > 0) {
      const client = await this.#pool.connect();
      try {
        await client.query('BEGIN');
        const skus = [...new Set(records.map((r) => r.sku))].sort();
        const { rows } = await client.query<{ sku: string; epoch: string }>(
          `SELECT sku, epoch FROM ${s}.stock WHERE sku = ANY ($1::text[]) ORDER BY sku FOR UPDATE`,
          [skus],
        );
        const epochOf = new Map(rows.map((r) => [r.sku, Number(r.epoch)]));
        const deducts: StockRecord[] = [];
        const releases = new Map<string, StockRecord>();
        for (const r of records) {
          const current = epochOf.get(r.sku);
          if (current === undefined || r.epoch < current) {
            dropped++;
            done.push(r.id);
          } else if (r.epoch === current) {
            applied++;
            done.push(r.id);
            if (r.kind === 'd') deducts.push(r);
            else releases.set(`${r.sku}\u0000${r.orderId}`, r);
          }
          // r.epoch > current: PostgreSQL has not seen that load yet; stays pending.
        }
        const delta = new Map<string, number>();
        const move = (sku: string, by: number) => delta.set(sku, (delta.get(sku) ?? 0) + by);
        if (deducts.length > 0) {
          const ins = await client.query<{ sku: string; qty: number }>(
            `INSERT INTO ${s}.deductions (sku, order_id, qty, epoch)
             SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[])
             ON CONFLICT (sku, order_id) DO NOTHING RETURNING sku, qty`,
            [
              deducts.map((r) => r.sku),
              deducts.map((r) => r.orderId),
              deducts.map((r) => r.qty),
              deducts.map((r) => r.epoch),
            ],
          );
          for (const row of ins.rows) move(row.sku, -row.qty);
        }
        if (releases.size > 0) {
          const rel = [...releases.values()];
          // A release that arrives before its deduction (another writer holds that one)
          // is written as a released row; the deduction then finds it and changes nothing.
          const up = await client.query<{ sku: string; qty: number; inserted: boolean }>(
            `INSERT INTO ${s}.deductions AS d (sku, order_id, qty, epoch, released)
             SELECT t.s, t.o, t.q, t.e, true FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[]) AS t(s, o, q, e)
             ON CONFLICT (sku, order_id) DO UPDATE SET released = true WHERE d.released = false
             RETURNING d.sku, d.qty, (d.xmax::text = '0') AS inserted`,
            [
              rel.map((r) => r.sku),
              rel.map((r) => r.orderId),
              rel.map((r) => r.qty),
              rel.map((r) => r.epoch),
            ],
          );
          for (const row of up.rows) if (!row.inserted) move(row.sku, row.qty);
        }
        const moved = [...delta].filter(([, by]) => by !== 0);
        if (moved.length > 0)
          await client.query(
            `UPDATE ${s}.stock st SET stock = st.stock + m.delta
               FROM unnest($1::text[], $2::int[]) AS m(sku, delta) WHERE st.sku = m.sku`,
            [moved.map(([sku]) => sku), moved.map(([, by]) => by)],
          );
        await client.query('COMMIT');
        this.#stats.batches++;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    }
    if (done.length > 0) {
      await this.#redis
        .multi()
        .xack(this.#keys.log, this.#group, ...done)
        .xdel(this.#keys.log, ...done)
        .exec();
    }
    this.#stats.applied += applied;
    this.#stats.dropped += dropped;
  }
}

function positive(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1)
    throw new UsageError(`${name} must be a positive integer, got ${value}`, {
      details: { input: name },
    });
  return value;
}
