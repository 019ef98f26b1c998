/** The refusal to SET a sharding or gene column (UPDATE, INSERT ... ON CONFLICT DO UPDATE): the row would belong to another shard. */
import { unsupported } from './route-errors.js';
import type { ShardingLayout } from './sharding-layout.js';
import type { SqlNode } from './sql-parser.js';
import type { TableRef } from './statement-tables.js';

/** Throws PEAK_DATA_UNSUPPORTED when a SET target is a sharding or gene column of a sharded table. */
export function checkShardingColumnUpdate(
  sql: string,
  targets: SqlNode[] | undefined,
  sharded: TableRef[],
  layout: ShardingLayout,
): void {
  for (const t of targets ?? []) {
    const name = (t.ResTarget as { name?: string } | undefined)?.name;
    for (const ref of sharded) {
      const def = layout.tables.get(ref.logical)!;
      if (name === def.shardingColumn || (name !== undefined && def.geneColumns.includes(name))) {
        throw unsupported(
          sql,
          `it updates the sharding column ${def.name}.${name}, which would move the row to another shard; delete and re-insert the row instead`,
        );
      }
    }
  }
}
