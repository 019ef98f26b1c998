/**
 * `peak data route` shows where a statement goes and how it is rewritten (no database
 * needed); `peak data shadow create` builds the shadow table of every physical table;
 * `peak data xa ls` lists the XA transactions a crash left prepared (age, coordinator
 * decision) and `peak data xa recover` settles them in one recovery pass. All read a layout
 * file: the layout options as JSON, plus (except for `route`) `connections` by data source
 * name.
 */
import { readFile } from 'node:fs/promises';
import { UsageError } from '../../core/errors.js';
import {
  createRouter,
  type DataSourceConnection,
  ShardedDatabase,
  type ShardingLayoutOptions,
} from '../../data/index.js';
import { listInDoubt } from '../../data/xa-in-doubt.js';
import type { Command } from '../command.js';
import { numberOption } from '../parse.js';

type LayoutFile = ShardingLayoutOptions & { connections?: Record<string, DataSourceConnection> };

async function readLayout(file: string | boolean | undefined): Promise<LayoutFile> {
  if (typeof file !== 'string' || file === '') {
    throw new UsageError(
      'give the layout file with --layout <file.json> (the layout options as JSON)',
    );
  }
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read the layout file ${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  try {
    return JSON.parse(text) as LayoutFile;
  } catch (err) {
    throw new UsageError(`the layout file ${file} is not valid JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

const LAYOUT_OPTION = {
  layout: {
    type: 'string',
    valueName: 'FILE',
    description: 'the layout file (JSON)',
    env: 'PEAK_DATA_LAYOUT',
  },
} as const;

const route: Command = {
  name: 'route',
  summary: 'show which shards a statement goes to and the rewritten SQL',
  args: '<sql>',
  options: {
    ...LAYOUT_OPTION,
    params: {
      type: 'string',
      valueName: 'JSON',
      description: 'the parameters as a JSON array',
      default: '[]',
    },
    stress: { type: 'boolean', description: 'route as stress traffic (shadow tables)' },
  },
  examples: [
    `peak data route "SELECT * FROM t_order WHERE buyer_id = $1" --params '[42]' --layout layout.json`,
    `peak data route "SELECT status, count(*) FROM t_order GROUP BY status" --layout layout.json --json`,
  ],
  async run({ values, positionals, out }) {
    const sql = positionals[0];
    if (sql === undefined || positionals.length > 1) {
      throw new UsageError(
        'give exactly one SQL statement, quoted: peak data route "<sql>" --layout <file>',
      );
    }
    let params: unknown;
    try {
      params = JSON.parse(String(values.params ?? '[]'));
    } catch (err) {
      throw new UsageError(`--params must be a JSON array: ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (!Array.isArray(params))
      throw new UsageError('--params must be a JSON array, e.g. \'[42, "paid"]\'');
    const layout = await readLayout(values.layout);
    const router = await createRouter(layout);
    const plan = router.route(sql, params, values.stress === true);
    out.json({
      sql: plan.sql,
      kind: plan.kind,
      write: plan.write,
      reason: plan.reason,
      tables: plan.tables,
      shadow: plan.shadow,
      units: plan.units,
      merge: plan.merge ?? null,
    });
    out.line(
      `${plan.kind} → ${plan.units.length} unit${plan.units.length === 1 ? '' : 's'} (${plan.reason})`,
    );
    for (const u of plan.units) {
      const where =
        u.shard !== undefined
          ? ` shard ${u.shard}`
          : u.shards !== undefined
            ? ` shards ${u.shards.join(', ')} (one UNION ALL)`
            : '';
      out.line(`  ${u.dataSource}${where}: ${u.sql}`);
      if (u.params.length > 0) out.line(`    params ${JSON.stringify(u.params)}`);
    }
    if (plan.merge !== undefined) {
      const m = plan.merge;
      const how = [
        m.aggregated
          ? `merge ${m.groupBy.length > 0 ? 'groups' : 'aggregates'}`
          : m.orderBy.length > 0
            ? 'k-way merge by ORDER BY'
            : 'concatenate',
        m.limit === undefined ? undefined : `LIMIT ${m.limit}`,
        m.offset > 0 ? `OFFSET ${m.offset}` : undefined,
        m.hiddenCount > 0 ? `drop ${m.hiddenCount} helper column(s)` : undefined,
      ].filter((x) => x !== undefined);
      out.line(`  merge: ${how.join(', ')}`);
    }
    return 0;
  },
};

/**
 * Connects to every data source of the layout file (it must name `connections`), runs `fn`
 * on the database and closes it. No background XA recovery: `xa recover` runs it by hand.
 */
async function withDatabase<T>(
  values: Record<string, unknown>,
  fn: (db: ShardedDatabase) => Promise<T>,
): Promise<T> {
  const layout = await readLayout(values.layout as string | undefined);
  if (layout.connections === undefined) {
    throw new UsageError(
      'the layout file needs "connections": { "<data source>": { "primary": "postgres://..." } }',
    );
  }
  const { connections, ...options } = layout;
  const db = await ShardedDatabase.connect({
    layout: options,
    connections,
    poolSize: 2,
    xaRecoveryIntervalMs: 0,
  });
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

function age(ms: number): string {
  return ms < 120_000 ? `${Math.round(ms / 1000)}s` : `${Math.round(ms / 60_000)}m`;
}

const xaLs: Command = {
  name: 'ls',
  aliases: ['list'],
  watch: true,
  summary:
    "prepared XA transactions in doubt on every database of the layout: age and the coordinator's decision",
  options: LAYOUT_OPTION,
  examples: ['peak data xa ls --layout layout.json', 'peak data xa ls --layout layout.json --json'],
  async run({ values, out }) {
    const inDoubt = await withDatabase(values, (db) => listInDoubt(db, db.layout.dataSources));
    out.json({ inDoubt });
    for (const x of inDoubt) {
      out.line(
        `${x.dataSource.padEnd(10)} ${x.gid}  age ${age(x.ageMs).padEnd(5)} coordinator ${x.coordinator}: ${x.decision}${x.error === undefined ? '' : ` (${x.error})`}`,
      );
    }
    if (inDoubt.length === 0) out.line('no prepared transactions in doubt');
    return 0;
  },
};

const xaRecover: Command = {
  name: 'recover',
  summary:
    'run one XA recovery pass: commit what the coordinator committed, roll back the rest (prepared at least --older-than ms ago)',
  options: {
    ...LAYOUT_OPTION,
    'older-than': {
      type: 'string',
      valueName: 'MS',
      description: 'leave transactions prepared less than MS ago alone (they may be running)',
      default: '0',
    },
  },
  examples: ['peak data xa recover --layout layout.json'],
  async run({ values, out }) {
    const olderThan = numberOption(values, 'older-than', { min: 0, integer: true }) ?? 0;
    const settled = await withDatabase(values, (db) => db.recoverXa(olderThan));
    out.json({ settled });
    for (const r of settled) {
      out.line(
        `${r.dataSource.padEnd(10)} ${r.gid}  ${r.outcome}${r.error === undefined ? '' : ` (${r.error})`}`,
      );
    }
    if (settled.length === 0) out.line('nothing to recover');
    return 0;
  },
};

const xa: Command = {
  name: 'xa',
  summary: 'XA transactions a crash left in doubt: list and recover',
  subcommands: [xaLs, xaRecover],
};

const shadowCreate: Command = {
  name: 'create',
  summary: 'create <table>_shadow (LIKE <table> INCLUDING ALL) for every physical table',
  options: LAYOUT_OPTION,
  examples: ['peak data shadow create --layout layout.json'],
  async run({ values, out }) {
    const made = await withDatabase(values, (db) => db.createShadowTables());
    out.json({ tables: made });
    for (const t of made) {
      out.line(`${t.dataSource}: ${t.shadow} ${t.created ? 'created' : 'already exists'}`);
    }
    if (made.length === 0) out.line('no physical tables found; create the real tables first');
    return 0;
  },
};

const shadow: Command = {
  name: 'shadow',
  summary: 'manage shadow (stress-test) tables',
  subcommands: [shadowCreate],
};

export const dataCommand: Command = {
  name: 'data',
  summary: 'sharded data: route previews, shadow tables, XA transactions in doubt',
  subcommands: [route, shadow, xa],
};
