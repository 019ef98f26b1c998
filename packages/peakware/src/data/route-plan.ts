/** What the router hands the executor: the physical statements and how to merge their answers. */
import type { MergePlan } from './result-merger.js';

/** One physical statement to run. */
export interface RouteUnit {
  /** The data source (database) it runs on. */
  dataSource: string;
  /** The shard index, or undefined for broadcast / unsharded tables and combined units. */
  shard: number | undefined;
  /** For a unit combining several shards of one data source (UNION ALL): their indexes. */
  shards?: number[];
  /** The rewritten SQL. */
  sql: string;
  /** Its parameters. */
  params: unknown[];
}

/** Where a statement goes and how its answers are combined. */
export interface RoutePlan {
  /** The statement as given. */
  sql: string;
  /** The statement kind. */
  kind: 'select' | 'insert' | 'update' | 'delete';
  /** True when the statement must run on a primary (writes, SELECT ... FOR UPDATE). */
  write: boolean;
  /** The physical statements. */
  units: RouteUnit[];
  /** How to merge several SELECT answers; undefined for one unit or for writes. */
  merge: MergePlan | undefined;
  /** The sharded logical tables involved. */
  tables: string[];
  /** One line: why these shards (for `peak data route` and logs). */
  reason: string;
  /** True when the route was computed for stress (shadow) traffic. */
  shadow: boolean;
}
