/**
 * The declared layout: which logical tables are sharded (by which column, with which
 * algorithm, over how many databases × tables), which tables are bound together (their
 * rows for one key live on the same shard index, so joins between them stay local), and
 * which are broadcast (a full copy on every data source). Validated once, up front.
 *
 * Shard numbering (TSharding style): a table with `tablesPerDataSource: M` over data
 * sources `[d0..dN-1]` has N × M shards; shard `s` is the physical table `<name>_<s>` on
 * data source `d[floor(s / M)]`.
 */
import { ErrorCodes, PeakError } from '../core/errors.js';
import {
  type AlgorithmSpec,
  createAlgorithm,
  type ShardingAlgorithm,
} from './sharding-algorithm.js';

/** How one logical table is sharded. */
export interface ShardedTableOptions {
  /** The column whose value picks the shard (e.g. `buyer_id`). */
  shardingColumn: string;
  /** Columns holding gene ids made from the sharding column's value (e.g. `id` of an order). */
  geneColumns?: string[];
  /** The algorithm. */
  algorithm: AlgorithmSpec;
  /** Physical tables on each data source. Default 1. */
  tablesPerDataSource?: number;
  /** The data sources it spans, by name. Default: all, in declared order. */
  dataSources?: string[];
}

/** The layout options: one object, validated by {@link createLayout}. */
export interface ShardingLayoutOptions {
  /** The data source names, in order (connections are given separately). */
  dataSources: string[];
  /** Sharded logical tables by name. */
  tables?: Record<string, ShardedTableOptions>;
  /** Groups of sharded tables bound together (e.g. `[['t_order', 't_order_item']]`). */
  bindingGroups?: string[][];
  /** Tables copied in full on every data source (small dictionaries). */
  broadcastTables?: string[];
  /**
   * Tables that exist on every data source but hold that data source's own rows, such as a
   * transactional outbox (`peak_outbox.messages`): a statement may use one beside a sharded
   * table, and it goes, unrenamed, to whichever one shard the statement routes to (a
   * statement that would reach several shards is refused). Names may be schema-qualified.
   */
  localTables?: string[];
  /** Where statements touching only undeclared tables go. Default: the first data source. */
  defaultDataSource?: string;
  /** Appended to physical table names for stress traffic. Default `_shadow`. */
  shadowSuffix?: string;
  /** Bits of a gene id reserved for the gene (see `GeneIdGenerator`). Default 8. */
  geneBits?: number;
}

/** One physical table: where shard `index` of a logical table lives. */
export interface ShardNode {
  dataSource: string;
  table: string;
  index: number;
}

/** A sharded table after validation. */
export interface ShardedTable {
  readonly name: string;
  readonly shardingColumn: string;
  readonly geneColumns: readonly string[];
  readonly algorithm: ShardingAlgorithm;
  readonly algorithmSpec: AlgorithmSpec;
  readonly tablesPerDataSource: number;
  readonly dataSources: readonly string[];
  readonly shardCount: number;
  /** The binding group's name (its first table), or the table's own name. */
  readonly bindingGroup: string;
}

/** The validated layout the router and the database use. */
export interface ShardingLayout {
  readonly dataSources: readonly string[];
  readonly tables: ReadonlyMap<string, ShardedTable>;
  readonly broadcastTables: ReadonlySet<string>;
  /** Per-data-source tables, as declared (`schema.table` or `table`). */
  readonly localTables: ReadonlySet<string>;
  readonly defaultDataSource: string;
  readonly shadowSuffix: string;
  readonly geneBits: number;
  /** The physical location of shard `index` of `table`. */
  node(table: ShardedTable, index: number): ShardNode;
}

const IDENT = /^[a-z_][a-z0-9_]{0,62}$/;

function fail(input: string, message: string): never {
  throw new PeakError(ErrorCodes.DATA_LAYOUT, `data layout: ${input}: ${message}`, {
    details: { input },
  });
}

function sameSpec(a: AlgorithmSpec, b: AlgorithmSpec): boolean {
  if (a.type === 'custom' || b.type === 'custom')
    return a === b || (a.type === b.type && 'shard' in a && 'shard' in b && a.shard === b.shard);
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Validates layout options and returns the layout; throws PEAK_DATA_LAYOUT naming the input. */
export function createLayout(options: ShardingLayoutOptions): ShardingLayout {
  if (options === null || typeof options !== 'object') fail('layout', 'expected an object');
  const dataSources = options.dataSources;
  if (!Array.isArray(dataSources) || dataSources.length === 0) {
    fail('dataSources', 'list at least one data source name');
  }
  const dsSet = new Set<string>();
  for (const d of dataSources) {
    if (typeof d !== 'string' || d === '') fail('dataSources', 'names must be non-empty strings');
    if (dsSet.has(d)) fail('dataSources', `duplicate name ${JSON.stringify(d)}`);
    dsSet.add(d);
  }
  const geneBits = options.geneBits ?? 8;
  if (!Number.isInteger(geneBits) || geneBits < 1 || geneBits > 16) {
    fail('geneBits', `must be an integer from 1 to 16, got ${geneBits}`);
  }
  const shadowSuffix = options.shadowSuffix ?? '_shadow';
  if (!/^_[a-z0-9_]{1,20}$/.test(shadowSuffix)) {
    fail(
      'shadowSuffix',
      `must look like _shadow (lower case, starts with _), got ${JSON.stringify(shadowSuffix)}`,
    );
  }
  const defaultDataSource = options.defaultDataSource ?? dataSources[0]!;
  if (!dsSet.has(defaultDataSource)) {
    fail('defaultDataSource', `${JSON.stringify(defaultDataSource)} is not a declared data source`);
  }

  const groupOf = new Map<string, string>();
  for (const [i, group] of (options.bindingGroups ?? []).entries()) {
    if (!Array.isArray(group) || group.length < 2) {
      fail(`bindingGroups[${i}]`, 'a binding group lists at least two sharded tables');
    }
    for (const t of group) {
      if (groupOf.has(t)) fail(`bindingGroups[${i}]`, `table ${t} is in two binding groups`);
      groupOf.set(t, group[0]!);
    }
  }

  const tables = new Map<string, ShardedTable>();
  for (const [name, t] of Object.entries(options.tables ?? {})) {
    const where = `tables.${name}`;
    if (!IDENT.test(name)) fail(where, 'table names must be lower-case SQL identifiers');
    if (t === null || typeof t !== 'object') fail(where, 'expected an object');
    if (typeof t.shardingColumn !== 'string' || !IDENT.test(t.shardingColumn)) {
      fail(`${where}.shardingColumn`, 'name the sharding column (a lower-case identifier)');
    }
    const geneColumns = t.geneColumns ?? [];
    for (const g of geneColumns) {
      if (typeof g !== 'string' || !IDENT.test(g) || g === t.shardingColumn) {
        fail(`${where}.geneColumns`, `bad gene column ${JSON.stringify(g)}`);
      }
    }
    const tablesPerDataSource = t.tablesPerDataSource ?? 1;
    if (!Number.isInteger(tablesPerDataSource) || tablesPerDataSource < 1) {
      fail(`${where}.tablesPerDataSource`, 'must be a positive integer');
    }
    const ds = t.dataSources ?? dataSources;
    for (const d of ds) {
      if (!dsSet.has(d))
        fail(`${where}.dataSources`, `${JSON.stringify(d)} is not a declared data source`);
    }
    const shardCount = ds.length * tablesPerDataSource;
    const algorithm = createAlgorithm(t.algorithm, shardCount, `${where}.algorithm`);
    if (geneColumns.length > 0) {
      if (algorithm.gene === undefined || algorithm.shardOfGene === undefined) {
        fail(
          `${where}.geneColumns`,
          `the ${algorithm.type} algorithm cannot carry genes; use mod, hash-mod or consistent-hash`,
        );
      }
      if (t.algorithm.type !== 'consistent-hash' && 2 ** geneBits % shardCount !== 0) {
        fail(
          `${where}.geneColumns`,
          `${shardCount} shards do not divide 2^${geneBits} gene values; use a power-of-two shard count or change geneBits`,
        );
      }
      if (
        t.algorithm.type === 'consistent-hash' &&
        (t.algorithm.buckets ?? 1024) !== 2 ** geneBits
      ) {
        fail(
          `${where}.geneColumns`,
          `consistent-hash buckets must equal 2^geneBits (${2 ** geneBits}) to carry genes`,
        );
      }
    }
    tables.set(name, {
      name,
      shardingColumn: t.shardingColumn,
      geneColumns,
      algorithm,
      algorithmSpec: t.algorithm,
      tablesPerDataSource,
      dataSources: [...ds],
      shardCount,
      bindingGroup: groupOf.get(name) ?? name,
    });
  }
  for (const [t, g] of groupOf) {
    const table = tables.get(t);
    if (table === undefined) fail('bindingGroups', `${t} is not a declared sharded table`);
    const head = tables.get(g)!;
    if (
      table.shardCount !== head.shardCount ||
      table.tablesPerDataSource !== head.tablesPerDataSource ||
      table.dataSources.join() !== head.dataSources.join() ||
      !sameSpec(table.algorithmSpec, head.algorithmSpec)
    ) {
      fail(
        'bindingGroups',
        `${t} and ${g} are bound but differ in shard count, data sources or algorithm; bound tables must be sharded identically`,
      );
    }
  }
  const broadcastTables = new Set<string>();
  for (const b of options.broadcastTables ?? []) {
    if (!IDENT.test(b)) fail('broadcastTables', `bad table name ${JSON.stringify(b)}`);
    if (tables.has(b)) fail('broadcastTables', `${b} is declared both sharded and broadcast`);
    broadcastTables.add(b);
  }
  const localTables = new Set<string>();
  for (const l of options.localTables ?? []) {
    const parts = l.split('.');
    if (parts.length > 2 || !parts.every((x) => IDENT.test(x)))
      fail('localTables', `bad table name ${JSON.stringify(l)} (table or schema.table)`);
    const bare = parts.at(-1)!;
    if (parts.length === 1 && (tables.has(bare) || broadcastTables.has(bare)))
      fail(
        'localTables',
        `${l} is declared both local and ${tables.has(bare) ? 'sharded' : 'broadcast'}`,
      );
    localTables.add(l);
  }

  return {
    dataSources: [...dataSources],
    tables,
    broadcastTables,
    localTables,
    defaultDataSource,
    shadowSuffix,
    geneBits,
    node(table, index) {
      return {
        dataSource: table.dataSources[Math.floor(index / table.tablesPerDataSource)]!,
        table: `${table.name}_${index}`,
        index,
      };
    },
  };
}
