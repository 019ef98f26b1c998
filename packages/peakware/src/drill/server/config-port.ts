/**
 * What the drill module needs of the config center's store, declared here and passed in by
 * `modules.ts` (`drillModule({ config: ... })`): a subsystem's server half does not import
 * another's. Faults and plans are config items, so every change they make is a config
 * version: pushed, audited, and restorable.
 */
import type pg from 'pg';
import type { Actor, ItemRef } from '../../config/config-item-ref.js';
import type { ConfigSchema } from '../../config/config-schema.js';

export type { Actor, ItemRef };

/** An item's released state. */
export interface ItemState {
  version: number;
  format: 'json' | 'text';
  value: string;
  schema: ConfigSchema | null;
}

/** One change of an atomic batch. */
export interface BatchChange {
  ref: ItemRef;
  format: 'json' | 'text';
  value: string;
  schema?: ConfigSchema | null;
  expectedVersion?: number;
  /** Publish the exact value of this earlier version instead. */
  restore?: number;
}

/** What a batch did to one item. */
export interface BatchResult {
  ref: ItemRef;
  previous: number | null;
  version: number;
}

/** The config center's store, as the drill module uses it. */
export interface ConfigPort {
  /** The released state of an item, or undefined. */
  get(pool: pg.Pool, ref: ItemRef): Promise<ItemState | undefined>;
  /** Publishes one item with the version read (PEAK_CONFIG_CONFLICT when it moved). */
  publish(
    pool: pg.Pool,
    ref: ItemRef,
    input: { format: 'json' | 'text'; value: string; expectedVersion?: number; comment: string },
    actor: Actor,
  ): Promise<{ version: number }>;
  /** Publishes several changes in one transaction: all, or none. */
  publishBatch(
    pool: pg.Pool,
    changes: readonly BatchChange[],
    actor: Actor,
    comment: string,
    action: 'publish' | 'rollback',
  ): Promise<BatchResult[]>;
}
