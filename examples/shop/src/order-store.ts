/**
 * Orders, sharded (TSharding style): by buyer, over two PostgreSQL instances × two tables
 * each (`orders_0` … `orders_3`). Order ids are gene ids: they carry the buyer's shard bits,
 * so an order is found by its id on the same shard as by its buyer, without a lookup table.
 * The data layer routes, rewrites and merges; the tables are the application's, created
 * here.
 */
import {
  createLayout,
  ShardedDatabase,
  type ShardingLayoutOptions,
  type StatementCollector,
} from 'peakware/data';
import { Outbox } from 'peakware/mq';
import pg from 'pg';

/**
 * The declared layout: 2 data sources × 2 tables, hash-mod on the buyer id; each data
 * source's outbox table rides along with the order row written on it.
 */
export const ORDER_LAYOUT: ShardingLayoutOptions = {
  dataSources: ['ds0', 'ds1'],
  localTables: ['peak_outbox.messages'],
  tables: {
    orders: {
      shardingColumn: 'user_id',
      geneColumns: ['order_id'],
      algorithm: { type: 'hash-mod' },
      tablesPerDataSource: 2,
    },
  },
};

/**
 * The order a buyer's request id already placed (the idempotency key of a buy): routed by
 * the buyer, so it reads one table, through the unique index on (user_id, request_id).
 * Every order of a buyer lives on the buyer's shard, so the index makes a key unique per
 * buyer across the whole sharded table.
 */
export const ORDER_BY_REQUEST =
  'SELECT order_id FROM orders WHERE user_id = $1 AND request_id = $2';

/**
 * PostgreSQL's SQLSTATE of `err`, as pg throws it or the data layer wraps it (pg's error
 * kept as the cause); undefined for any other error.
 */
export function sqlStateOf(err: unknown): string | undefined {
  for (let e: unknown = err; e !== undefined && e !== null; e = (e as { cause?: unknown }).cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  return undefined;
}

/** Whether `err` is PostgreSQL's unique violation (23505), as pg or the data layer throws it. */
export function isUniqueViolation(err: unknown): boolean {
  return sqlStateOf(err) === '23505';
}

/** Where the two order shards live. */
export interface OrderShards {
  ds0: string;
  ds1: string;
}

/** Creates every physical order table on its data source (idempotent). */
export async function createOrderTables(shards: OrderShards): Promise<void> {
  const layout = createLayout(ORDER_LAYOUT);
  const table = layout.tables.get('orders')!;
  for (let s = 0; s < table.shardCount; s++) {
    const node = layout.node(table, s);
    const client = new pg.Client({
      connectionString: shards[node.dataSource as keyof OrderShards],
    });
    await client.connect();
    try {
      await client.query(`
        CREATE TABLE IF NOT EXISTS ${node.table} (
          order_id   bigint PRIMARY KEY,
          user_id    bigint NOT NULL,
          sku        text NOT NULL,
          qty        integer NOT NULL,
          amount_cents bigint NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now()
        );
        ALTER TABLE ${node.table} ADD COLUMN IF NOT EXISTS amount_cents bigint NOT NULL DEFAULT 0;
        ALTER TABLE ${node.table} ADD COLUMN IF NOT EXISTS request_id text;
        CREATE INDEX IF NOT EXISTS ${node.table}_sku ON ${node.table} (sku);
        CREATE UNIQUE INDEX IF NOT EXISTS ${node.table}_request
          ON ${node.table} (user_id, request_id) WHERE request_id IS NOT NULL;`);
      // The shard's outbox: "order placed" events commit in the order's own transaction.
      await Outbox.install(client);
    } finally {
      await client.end();
    }
  }
}

/** Opens the sharded order database. */
export function openOrders(
  shards: OrderShards,
  poolSize = 8,
  collector?: StatementCollector,
): Promise<ShardedDatabase> {
  return ShardedDatabase.connect({
    layout: ORDER_LAYOUT,
    connections: { ds0: { primary: shards.ds0 }, ds1: { primary: shards.ds1 } },
    poolSize,
    // Every connection opened here and kept: none is opened under a rate step.
    minIdle: poolSize,
    ...(collector === undefined ? {} : { collector }),
  });
}
