/**
 * The hot-stock engine on PostgreSQL alone, after AliSQL's "inventory hint": instead of
 * every buyer taking the SKU's row lock in turn (one statement, one commit, one lock
 * hand-over per order), same-SKU deductions that arrive together are queued in this process
 * and applied as ONE statement per batch, group-commit style: while a batch is in flight
 * the next requests accumulate, and they go as the next batch as soon as it returns. The
 * row is locked once per batch, for a few microseconds inside the server, and the commit
 * (the fsync) is paid once per batch.
 *
 * Each request gets its own answer, in arrival order, exactly as if they had run one after
 * the other: a request that fits takes its units, one that does not is refused with what was
 * left. A retry of an order id that already deducted answers `duplicate: true`.
 *
 * Never oversells: the stock column has `CHECK (stock >= 0)`, the batch function locks the
 * row before it reads anything, and a batch that fails (connection lost, constraint, a
 * statement timeout) fails each of its requests with that error and applies nothing.
 *
 * Tables, in a schema of their own (default `peak_stock`), created by {@link PgStockEngine.install}:
 * `stock` (sku, stock, initial, epoch) and `deductions` (sku, order_id, qty, epoch, released;
 * primary key (sku, order_id): the idempotency key and the books). The Redis engine's
 * {@link StockWriter} writes the same tables.
 */
import type pg from 'pg';
import { ErrorCodes, PeakError, UsageError } from '../core/errors.js';
import {
  checkCount,
  checkOrderId,
  checkSku,
  type DeductResult,
  type ReleaseResult,
  type StockBooks,
  type StockEngine,
} from './stock-shaver.js';

/** The schema the stock tables live in unless an engine's options name another. */
export const DEFAULT_STOCK_SCHEMA = 'peak_stock';

/** Options of {@link PgStockEngine}. */
export interface PgStockEngineOptions {
  /** The database holding the stock tables (yours: the engine never ends it). */
  pool: pg.Pool;
  /** Schema of the stock tables; default `peak_stock`. */
  schema?: string;
  /** Most requests one batch takes; the rest wait for the next. Default 1000. */
  maxBatch?: number;
}

interface Waiting {
  orderId: string;
  qty: number;
  resolve(result: DeductResult): void;
  reject(err: unknown): void;
}

interface SkuQueue {
  waiting: Waiting[];
  /** A batch is scheduled or in flight: new requests only queue. */
  busy: boolean;
}

/** Checks a schema name is a plain lower-case SQL identifier (it is put into DDL). */
export function checkSchema(schema: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema))
    throw new UsageError(
      `schema must be a lower-case SQL identifier (a-z, 0-9, _), got ${JSON.stringify(schema)}`,
      { details: { input: 'schema' } },
    );
  return schema;
}

/**
 * Creates the stock tables and the batch function in `schema` (idempotent; concurrent
 * installs from several processes wait for each other).
 */
export async function installStockTables(pool: pg.Pool, schema: string): Promise<void> {
  const s = checkSchema(schema);
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`peak-stock-install:${s}`]);
    await client.query(`
      CREATE SCHEMA IF NOT EXISTS ${s};
      CREATE TABLE IF NOT EXISTS ${s}.stock (
        sku       text PRIMARY KEY,
        stock     integer NOT NULL CHECK (stock >= 0),
        initial   integer NOT NULL CHECK (initial >= 0),
        epoch     bigint NOT NULL,
        loaded_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE IF NOT EXISTS ${s}.deductions (
        sku        text NOT NULL,
        order_id   text NOT NULL,
        qty        integer NOT NULL CHECK (qty > 0),
        epoch      bigint NOT NULL,
        released   boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (sku, order_id)
      );
      CREATE OR REPLACE FUNCTION ${s}.deduct_batch(p_sku text, p_orders text[], p_qtys integer[])
      RETURNS TABLE (ok boolean, duplicate boolean, left_after integer)
      LANGUAGE plpgsql AS $fn$
      DECLARE
        v_left integer;
        v_epoch bigint;
        v_prior jsonb;
        v_take_orders text[] := '{}';
        v_take_qtys integer[] := '{}';
      BEGIN
        SELECT s.stock, s.epoch INTO v_left, v_epoch FROM ${s}.stock s WHERE s.sku = p_sku FOR UPDATE;
        IF NOT FOUND THEN
          RAISE EXCEPTION 'sku % is not loaded', p_sku USING ERRCODE = 'P0002';
        END IF;
        SELECT coalesce(jsonb_object_agg(d.order_id, d.released), '{}') INTO v_prior
          FROM ${s}.deductions d WHERE d.sku = p_sku AND d.order_id = ANY (p_orders);
        FOR i IN 1 .. coalesce(array_length(p_orders, 1), 0) LOOP
          IF v_prior ? p_orders[i] THEN
            ok := NOT (v_prior ->> p_orders[i])::boolean;
            duplicate := true;
          ELSIF p_qtys[i] <= v_left THEN
            v_left := v_left - p_qtys[i];
            v_take_orders := v_take_orders || p_orders[i];
            v_take_qtys := v_take_qtys || p_qtys[i];
            ok := true;
            duplicate := false;
          ELSE
            ok := false;
            duplicate := false;
          END IF;
          left_after := v_left;
          RETURN NEXT;
        END LOOP;
        IF coalesce(array_length(v_take_orders, 1), 0) > 0 THEN
          INSERT INTO ${s}.deductions (sku, order_id, qty, epoch)
            SELECT p_sku, t.o, t.q, v_epoch FROM unnest(v_take_orders, v_take_qtys) AS t(o, q);
          UPDATE ${s}.stock SET stock = v_left WHERE sku = p_sku;
        END IF;
      END
      $fn$;`);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/**
 * Puts `units` of `sku` on sale in the stock table and deletes the SKU's earlier
 * deductions, in one transaction. The SKU's epoch goes up by one (at least to `minEpoch`):
 * a record of an earlier sale that reaches the tables later is recognised and dropped.
 * Returns the new epoch.
 */
export async function loadStockRow(
  pool: pg.Pool,
  schema: string,
  sku: string,
  units: number,
  minEpoch = 1,
): Promise<number> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const { rows } = await client.query<{ epoch: string }>(
      `INSERT INTO ${schema}.stock (sku, stock, initial, epoch) VALUES ($1, $2, $2, $3)
       ON CONFLICT (sku) DO UPDATE SET stock = $2, initial = $2,
         epoch = greatest(${schema}.stock.epoch + 1, $3), loaded_at = now()
       RETURNING epoch`,
      [sku, units, minEpoch],
    );
    const epoch = Number(rows[0]!.epoch);
    await client.query(`DELETE FROM ${schema}.deductions WHERE sku = $1 AND epoch < $2`, [
      sku,
      epoch,
    ]);
    await client.query('COMMIT');
    return epoch;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw explainPgError(err, schema, sku);
  } finally {
    client.release();
  }
}

/** Reads a SKU's books from the tables: `sold` is summed from the deduction log. */
export async function readStockBooks(
  pool: pg.Pool,
  schema: string,
  sku: string,
): Promise<StockBooks> {
  const { rows } = await pool
    .query<{ initial: number; stock: number; sold: string }>(
      `SELECT s.initial, s.stock,
              (SELECT coalesce(sum(d.qty), 0) FROM ${schema}.deductions d
                WHERE d.sku = s.sku AND d.epoch = s.epoch AND NOT d.released) AS sold
         FROM ${schema}.stock s WHERE s.sku = $1`,
      [sku],
    )
    .catch((err: unknown) => {
      throw explainPgError(err, schema, sku);
    });
  const row = rows[0];
  if (row === undefined) throw unknownSku(sku);
  return { sku, initial: row.initial, left: row.stock, sold: Number(row.sold) };
}

/** `PEAK_STOCK_UNKNOWN_SKU` for `sku`. */
export function unknownSku(sku: string): PeakError {
  return new PeakError(
    ErrorCodes.STOCK_UNKNOWN_SKU,
    `sku ${JSON.stringify(sku)} is not loaded into the stock engine: call load(sku, units) first`,
    { details: { sku } },
  );
}

/** Turns PostgreSQL's "no such table/function" and "not loaded" into errors that say what to do. */
export function explainPgError(err: unknown, schema: string, sku: string): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'P0002') return unknownSku(sku);
  if (code === '42P01' || code === '42883' || code === '3F000')
    return new UsageError(
      `the stock tables are missing in schema ${schema}: call install() on the stock engine first`,
      { cause: err, details: { schema } },
    );
  return err;
}

/** The PostgreSQL-only hot-stock engine: same-SKU deductions group-committed per batch. */
export class PgStockEngine implements StockEngine {
  readonly #pool: pg.Pool;
  readonly #schema: string;
  readonly #maxBatch: number;
  readonly #queues = new Map<string, SkuQueue>();
  readonly #idle = new Set<() => void>();
  #closed = false;

  constructor(options: PgStockEngineOptions) {
    this.#pool = options.pool;
    this.#schema = checkSchema(options.schema ?? DEFAULT_STOCK_SCHEMA);
    const maxBatch = options.maxBatch ?? 1000;
    if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > 100_000)
      throw new UsageError(`maxBatch must be an integer from 1 to 100000, got ${maxBatch}`);
    this.#maxBatch = maxBatch;
  }

  /** Creates the stock tables and the batch function (idempotent). */
  install(): Promise<void> {
    return installStockTables(this.#pool, this.#schema);
  }

  async load(sku: string, units: number): Promise<void> {
    checkSku(sku);
    checkCount('units', units, 0);
    await loadStockRow(this.#pool, this.#schema, sku, units);
  }

  deduct(sku: string, orderId: string, qty: number): Promise<DeductResult> {
    try {
      checkSku(sku);
      checkOrderId(orderId);
      checkCount('qty', qty, 1);
      if (this.#closed) throw new UsageError('the stock engine is closed');
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<DeductResult>((resolve, reject) => {
      let queue = this.#queues.get(sku);
      if (queue === undefined) {
        queue = { waiting: [], busy: false };
        this.#queues.set(sku, queue);
      }
      queue.waiting.push({ orderId, qty, resolve, reject });
      if (!queue.busy) {
        queue.busy = true;
        // The first request of a quiet SKU waits one turn of the event loop, so requests
        // arriving in the same turn share its batch.
        setImmediate(() => void this.#flush(sku, queue));
      }
    });
  }

  async #flush(sku: string, queue: SkuQueue): Promise<void> {
    while (queue.waiting.length > 0) {
      const batch = queue.waiting.splice(0, this.#maxBatch);
      await this.#apply(sku, batch);
    }
    queue.busy = false;
    this.#queues.delete(sku);
    if (this.#queues.size === 0) for (const done of this.#idle) done();
  }

  /** One batch: one statement; each request answered from its own row of the result. */
  async #apply(sku: string, batch: Waiting[]): Promise<void> {
    // An order id twice in one batch goes to the database once; the repeat is its duplicate.
    const first = new Map<string, number>();
    const orders: string[] = [];
    const qtys: number[] = [];
    const slot = batch.map((w) => {
      const seen = first.get(w.orderId);
      if (seen !== undefined) return -1 - seen;
      first.set(w.orderId, orders.length);
      orders.push(w.orderId);
      qtys.push(w.qty);
      return orders.length - 1;
    });
    let rows: { ok: boolean; duplicate: boolean; left_after: number }[];
    try {
      ({ rows } = await this.#pool.query<{ ok: boolean; duplicate: boolean; left_after: number }>(
        `SELECT ok, duplicate, left_after FROM ${this.#schema}.deduct_batch($1, $2, $3)`,
        [sku, orders, qtys],
      ));
      if (rows.length !== orders.length)
        throw new PeakError(
          ErrorCodes.INTERNAL,
          `deduct_batch answered ${rows.length} rows for ${orders.length} requests`,
        );
    } catch (err) {
      const e = explainPgError(err, this.#schema, sku);
      for (const w of batch) w.reject(e);
      return;
    }
    batch.forEach((w, i) => {
      const at = slot[i]!;
      const row = rows[at < 0 ? -1 - at : at]!;
      const result: DeductResult = { ok: row.ok, left: row.left_after };
      if (row.duplicate || at < 0) result.duplicate = true;
      w.resolve(result);
    });
  }

  async release(sku: string, orderId: string): Promise<ReleaseResult> {
    checkSku(sku);
    checkOrderId(orderId);
    const s = this.#schema;
    const { rows } = await this.#pool
      .query<{ released: boolean; left: number | null }>(
        `WITH r AS (UPDATE ${s}.deductions d SET released = true
                     FROM ${s}.stock st
                     WHERE d.sku = $1 AND d.order_id = $2 AND NOT d.released
                       AND st.sku = d.sku AND d.epoch = st.epoch
                     RETURNING d.qty),
              u AS (UPDATE ${s}.stock SET stock = stock + (SELECT qty FROM r)
                     WHERE sku = $1 AND EXISTS (SELECT 1 FROM r) RETURNING stock)
         SELECT EXISTS (SELECT 1 FROM u) AS released,
                coalesce((SELECT stock FROM u), (SELECT stock FROM ${s}.stock WHERE sku = $1)) AS left`,
        [sku, orderId],
      )
      .catch((err: unknown) => {
        throw explainPgError(err, s, sku);
      });
    const row = rows[0]!;
    if (row.left === null) throw unknownSku(sku);
    return { released: row.released, left: row.left };
  }

  async stock(sku: string): Promise<number> {
    checkSku(sku);
    const { rows } = await this.#pool
      .query<{ stock: number }>(`SELECT stock FROM ${this.#schema}.stock WHERE sku = $1`, [sku])
      .catch((err: unknown) => {
        throw explainPgError(err, this.#schema, sku);
      });
    if (rows[0] === undefined) throw unknownSku(sku);
    return rows[0].stock;
  }

  books(sku: string): Promise<StockBooks> {
    checkSku(sku);
    return readStockBooks(this.#pool, this.#schema, sku);
  }

  /** Refuses new deductions and waits for the queued ones to be answered; the pool stays open. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#queues.size === 0) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.#idle.delete(done);
        resolve();
      };
      this.#idle.add(done);
    });
  }
}
