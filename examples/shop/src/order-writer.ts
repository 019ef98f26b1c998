/**
 * Orders group-committed per shard. Each order and its "order placed" event used to be one
 * statement and one commit of its own: at a flash sale's rates a statement, a transaction
 * and a WAL flush per order (BENCHMARKS.md, "shop", session 41: the two PostgreSQLs spent
 * about 90 µs less an order at 2 100 orders/s once batched).
 *
 * Now the orders that arrive for one shard while its previous batch commits go together in
 * the next one (`GroupCommit`, as the broker does for half messages): one multi-row INSERT
 * with their events in the same statement (`Outbox.sendBatchWith`), so the orders and the
 * events still commit together or not at all. Nothing waits for company: the first order
 * of a quiet shard goes at the end of its turn.
 *
 * A batch that one of its orders makes fail (a repeated request id meeting the unique
 * (buyer, request id) index, a value PostgreSQL refuses: SQLSTATE classes 22 and 23) runs
 * again order by order, so only that order fails, as it would have alone. Any other failure
 * (the shard down, the connection lost) fails every order of the batch, as it would have
 * failed each one; each buy's path then does what it did before (the sweep releases a unit
 * whose order was never written).
 *
 * An order whose caller's deadline passes while it waits for its batch is not written (as
 * the order service never starts writing for a caller that has given up); a batch's
 * statement is bounded by the earliest deadline among its orders.
 */
import {
  type ContextInit,
  currentContext,
  DeadlineExceededError,
  GroupCommit,
  withContext,
} from 'peakware/core';
import type { ShardedDatabase } from 'peakware/data';
import type { Outbox, OutgoingMessage, PreparedOutboxMessage } from 'peakware/mq';
import { sqlStateOf } from './order-store.js';

/** The order row's columns, in the order {@link OrderRow.values} gives them. */
const COLUMNS = '(order_id, user_id, sku, qty, amount_cents, request_id)';
const WIDTH = 6;
/** Most orders in one statement. */
const MAX_BATCH = 64;

/** An order row's values: order_id, user_id, sku, qty, amount_cents, request_id. */
export type OrderValues = readonly [string, number, string, number, number, string | null];

/** One order to write, with its event made in the buy's own context. */
interface OrderRow {
  values: OrderValues;
  event: PreparedOutboxMessage;
  /** The buy's deadline (epoch ms), if its caller set one. */
  deadline: number | undefined;
}

/**
 * Whether a statement failed because of a row it wrote (SQLSTATE class 22, data exception;
 * 23, integrity constraint violation), not because of the database or the connection.
 */
function isRowError(err: unknown): boolean {
  const state = sqlStateOf(err);
  return state !== undefined && (state.startsWith('22') || state.startsWith('23'));
}

/** The INSERT of `n` orders: `VALUES ($1..$6), ($7..$12), …`. */
function insertOf(n: number): string {
  const rows: string[] = [];
  for (let r = 0; r < n; r++) {
    const p = Array.from({ length: WIDTH }, (_, c) => `$${r * WIDTH + c + 1}`);
    rows.push(`(${p.join(', ')})`);
  }
  return `INSERT INTO orders ${COLUMNS} VALUES ${rows.join(', ')}`;
}

/** Group-commits orders per shard (see the file's comment). */
export class OrderWriter {
  readonly #db: ShardedDatabase;
  readonly #outboxOf: (dataSource: string) => Outbox;
  readonly #batchers = new Map<string, GroupCommit<OrderRow, unknown>>();
  /** The INSERT of n orders at [n]. */
  readonly #sql: string[] = [];

  constructor(db: ShardedDatabase, outboxOf: (dataSource: string) => Outbox) {
    this.#db = db;
    this.#outboxOf = outboxOf;
  }

  #insert(n: number): string {
    this.#sql[n] ??= insertOf(n);
    return this.#sql[n];
  }

  /**
   * Writes the order and its event for `topic` (made now, in the caller's context: its
   * trace and stress flag travel in it); resolves once committed, throws as the statement
   * alone would.
   */
  async write(values: OrderValues, topic: string, event: OutgoingMessage): Promise<void> {
    const unit = this.#db.route(this.#insert(1), values).units[0]!;
    const outbox = this.#outboxOf(unit.dataSource);
    const row: OrderRow = {
      values,
      event: outbox.prepare(topic, event),
      deadline: currentContext()?.deadline,
    };
    // Stress traffic goes to the shadow tables: its orders are batched apart.
    const stress = row.event.stress;
    const key = `${unit.dataSource}/${unit.shard}/${stress}`;
    let batcher = this.#batchers.get(key);
    if (batcher === undefined) {
      batcher = new GroupCommit<OrderRow, unknown>(
        (rows) => this.#runInTime(outbox, rows, stress),
        MAX_BATCH,
      );
      this.#batchers.set(key, batcher);
    }
    const failure = await batcher.submit(row);
    if (failure !== undefined) throw failure;
  }

  /**
   * One batch, as its orders' callers would have run it: an order whose caller's deadline
   * has passed is not written (its caller has given up, and the sweep releases its unit
   * after 15 s, so writing it later would sell that unit twice); the others' statement is
   * bounded by the earliest deadline among them (the data layer cancels it then), and runs
   * as stress traffic for a stress batch.
   */
  #runInTime(outbox: Outbox, rows: OrderRow[], stress: boolean): Promise<unknown[]> {
    const now = Date.now();
    const live = rows.filter((r) => r.deadline === undefined || r.deadline > now);
    let deadline: number | undefined;
    for (const r of live)
      if (r.deadline !== undefined) deadline = Math.min(deadline ?? r.deadline, r.deadline);
    const init: ContextInit = {
      ...(stress ? { stress: true } : {}),
      ...(deadline === undefined ? {} : { deadline }),
    };
    const run = () => this.#run(outbox, live);
    // A batch runs outside every caller's context (GroupCommit); this one is its own.
    const written =
      live.length === 0
        ? Promise.resolve([])
        : Object.keys(init).length === 0
          ? run()
          : withContext(init, run);
    return written.then((results) => {
      let i = 0;
      return rows.map((r) =>
        r.deadline === undefined || r.deadline > now
          ? results[i++]
          : new DeadlineExceededError(
              `shop.order.place: the caller's deadline passed ${now - r.deadline} ms before its order's turn to be written; the order was not written`,
              { details: { overdueMs: now - r.deadline } },
            ),
      );
    });
  }

  /** One batch: each order's failure, or undefined once committed. */
  async #run(outbox: Outbox, rows: OrderRow[]): Promise<unknown[]> {
    if (rows.length > 1) {
      try {
        await outbox.sendBatchWith(
          this.#db,
          this.#insert(rows.length),
          rows.flatMap((r) => r.values),
          rows.map((r) => r.event),
        );
        return rows.map(() => undefined);
      } catch (err) {
        if (!isRowError(err)) throw err;
        // One of them is refused (a repeated request, a bad value): each alone, so only it is.
      }
    }
    return Promise.all(
      rows.map((r) =>
        outbox.sendBatchWith(this.#db, this.#insert(1), r.values, [r.event]).then(
          () => undefined,
          (err: unknown) => err,
        ),
      ),
    );
  }
}
