/**
 * `peak config`: the config center from the command line.
 *
 *   peak config get <app>[/<group>/<key>]        items of an app, or one item's value
 *   peak config set <item> <value|@file>          publish a new version
 *   peak config history <item>                    released versions, newest first
 *   peak config diff <item> [--from N] [--to N]   what changed between two versions
 *   peak config rollback <item> <version>         publish an earlier version's exact value
 *   peak config gray <item> <value> --tags a,b    release to matching instances first
 *   peak config gray <item> --abort               end a gray release, nothing released
 *   peak config promote <item>                    release the gray value to everyone
 *   peak config rm <item>                         remove an item (its history stays)
 *   peak config audit [<app>[/<group>/<key>]]     who changed what, when, from where
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import type { ItemRef, PublishRequest } from '../../admin/config-admin.js';
import { UsageError } from '../../core/errors.js';
import type { Command, OptionSpec } from '../command.js';
import { ADMIN_OPTIONS, adminClient, SERVER_OPTIONS } from '../control-client.js';
import { numberOption, parseNumber } from '../parse.js';

function parseItem(arg: string | undefined): ItemRef {
  const parts = arg?.split('/') ?? [];
  if (parts.length !== 3 || parts.some((p) => p.length === 0)) {
    throw new UsageError(
      `name the item as <app>/<group>/<key>, e.g. shop/db/pool; got ${arg ?? 'nothing'}`,
    );
  }
  const [app, group, key] = parts as [string, string, string];
  return { app, group, key };
}

async function readValue(arg: string | undefined): Promise<string> {
  if (arg === undefined) throw new UsageError('give the value (or @file to read it from a file)');
  if (!arg.startsWith('@')) return arg;
  try {
    return await readFile(arg.slice(1), 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${arg.slice(1)}: ${(err as Error).message}`);
  }
}

const WRITE_OPTIONS: Record<string, OptionSpec> = {
  ...ADMIN_OPTIONS,
  message: {
    type: 'string',
    short: 'm',
    valueName: 'TEXT',
    description: 'a comment for the version',
  },
  author: {
    type: 'string',
    valueName: 'NAME',
    description: 'who makes the change (default: user@host)',
    env: 'PEAK_AUTHOR',
  },
};

function author(values: Record<string, unknown>): string {
  return typeof values.author === 'string'
    ? values.author
    : `${os.userInfo().username}@${os.hostname()}`;
}

/** Who makes a change and why (`--author`, `-m`), as every write sends them. */
function change(values: Record<string, unknown>): { author: string; comment: string } {
  return {
    author: author(values),
    comment: typeof values.message === 'string' ? values.message : '',
  };
}

/** `--expect N` as a write's `expectedVersion` (nothing when not given). */
function expectation(values: Record<string, unknown>, min: number): { expectedVersion?: number } {
  const expected = numberOption(values, 'expect', { min, integer: true });
  return expected === undefined ? {} : { expectedVersion: expected };
}

function show(value: string, format: string): string {
  if (format !== 'json') return value;
  try {
    return JSON.stringify(JSON.parse(value), null, 2);
  } catch {
    return value;
  }
}

const get: Command = {
  name: 'get',
  summary: "list an app's items, or print one item's value",
  args: '<app>[/<group>/<key>]',
  options: {
    ...SERVER_OPTIONS,
    version: { type: 'string', valueName: 'N', description: 'print this released version instead' },
  },
  examples: [
    'peak config get shop',
    'peak config get shop/db/pool',
    'peak config get shop/db/pool --version 3',
  ],
  async run({ values, positionals, out }) {
    const arg = positionals[0];
    if (arg === undefined) throw new UsageError('name an app, or an item as <app>/<group>/<key>');
    const admin = await adminClient(values);
    if (!arg.includes('/')) {
      const items = await admin.config.items(arg);
      out.json({ items });
      for (const i of items) {
        const preview = i.value.length > 60 ? `${i.value.slice(0, 57)}...` : i.value;
        out.line(
          `${`${i.group}/${i.key}`.padEnd(32)} v${String(i.version).padEnd(4)} ${i.format.padEnd(4)} ${i.gray ? 'GRAY ' : ''}${preview.replace(/\n/g, ' ')}`,
        );
      }
      return 0;
    }
    const item = parseItem(arg);
    const version = numberOption(values, 'version', { min: 0, integer: true });
    const r =
      version === undefined
        ? await admin.config.get(item)
        : await admin.config.version(item, version);
    out.json(r);
    out.line(show(r.value, r.format));
    out.note(
      `${arg} version ${r.version}${'gray' in r && r.gray ? ' (a gray release is in progress)' : ''}`,
    );
    return 0;
  },
};

const set: Command = {
  name: 'set',
  summary: 'publish a new version of an item (JSON unless --text)',
  args: '<app>/<group>/<key> <value|@file>',
  options: {
    ...WRITE_OPTIONS,
    text: { type: 'boolean', description: 'store the value as plain text, not JSON' },
    schema: {
      type: 'string',
      valueName: 'JSON|@file',
      description: 'set the JSON Schema checked on every publish',
    },
    expect: {
      type: 'string',
      valueName: 'N',
      description: 'refuse unless the item is at version N now (0: must not exist)',
    },
  },
  examples: [
    `peak config set shop/db/pool '{"max":20}' -m "more connections"`,
    'peak config set shop/app/banner "Big sale" --text',
    `peak config set shop/governance/rpc-routes @routes.json --schema '{"$peak":"rpc-routes"}'`,
  ],
  async run({ values, positionals, out }) {
    const item = parseItem(positionals[0]);
    const value = await readValue(positionals[1]);
    let schema: unknown;
    if (typeof values.schema === 'string') {
      const text = await readValue(values.schema);
      try {
        schema = JSON.parse(text);
      } catch (err) {
        throw new UsageError(`--schema is not JSON: ${(err as Error).message}`);
      }
    }
    const admin = await adminClient(values, { admin: true });
    const r = await admin.config.publish(item, {
      value,
      format: values.text === true ? 'text' : 'json',
      ...change(values),
      ...(schema === undefined ? {} : { schema: schema as PublishRequest['schema'] }),
      ...expectation(values, 0),
    });
    out.json(r);
    out.line(`${positionals[0]}: published version ${r.version}`);
    return 0;
  },
};

const history: Command = {
  name: 'history',
  summary: 'released versions of an item, newest first',
  args: '<app>/<group>/<key>',
  options: {
    ...SERVER_OPTIONS,
    limit: { type: 'string', valueName: 'N', description: 'how many', default: '20' },
  },
  examples: ['peak config history shop/db/pool'],
  async run({ values, positionals, out }) {
    const item = parseItem(positionals[0]);
    const limit = numberOption(values, 'limit', { min: 0, integer: true }) ?? 20;
    const versions = await (await adminClient(values)).config.history(item, {
      limit: Math.max(1, limit),
    });
    out.json({ versions });
    for (const v of versions) {
      out.line(
        `v${String(v.version).padEnd(5)} ${v.createdAt}  ${v.author.padEnd(20)} ${v.comment}`,
      );
    }
    return 0;
  },
};

const diff: Command = {
  name: 'diff',
  summary: 'what changed between two versions (default: the last two)',
  args: '<app>/<group>/<key>',
  options: {
    ...SERVER_OPTIONS,
    from: { type: 'string', valueName: 'N', description: 'the older version' },
    to: { type: 'string', valueName: 'N', description: 'the newer version (default: current)' },
  },
  examples: ['peak config diff shop/db/pool', 'peak config diff shop/db/pool --from 1 --to 4'],
  async run({ values, positionals, out }) {
    const item = parseItem(positionals[0]);
    const from = numberOption(values, 'from', { min: 0, integer: true });
    const to = numberOption(values, 'to', { min: 0, integer: true });
    const r = await (await adminClient(values)).config.diff(item, {
      ...(from === undefined ? {} : { from }),
      ...(to === undefined ? {} : { to }),
    });
    out.json(r);
    out.line(`--- v${r.from}`);
    out.line(`+++ v${r.to}`);
    for (const l of r.diff) out.line(`${l.op}${l.text}`);
    return 0;
  },
};

const rollback: Command = {
  name: 'rollback',
  summary: "publish an earlier version's exact value as a new version",
  args: '<app>/<group>/<key> <version>',
  options: {
    ...WRITE_OPTIONS,
    expect: {
      type: 'string',
      valueName: 'N',
      description: 'refuse unless the item is at version N now',
    },
  },
  examples: ['peak config rollback shop/db/pool 3 -m "v4 broke checkout"'],
  async run({ values, positionals, out }) {
    const item = parseItem(positionals[0]);
    const toVersion =
      positionals[1] === undefined
        ? undefined
        : parseNumber(positionals[1], 'the version', { min: 0, integer: true });
    if (toVersion === undefined || toVersion < 1)
      throw new UsageError('give the version to roll back to (see history)');
    const admin = await adminClient(values, { admin: true });
    const r = await admin.config.rollback(item, {
      toVersion,
      ...change(values),
      ...expectation(values, 0),
    });
    out.json(r);
    out.line(`${positionals[0]}: version ${r.restored} restored as version ${r.version}`);
    return 0;
  },
};

const rm: Command = {
  name: 'rm',
  aliases: ['delete'],
  summary:
    'remove an item: watchers are told it is gone; its history and audit trail stay (set it again to continue its versions)',
  args: '<app>/<group>/<key> | <app> <group> <key>',
  options: {
    ...WRITE_OPTIONS,
    expect: {
      type: 'string',
      valueName: 'N',
      description: 'refuse unless the item is at version N now',
    },
  },
  examples: ['peak config rm shop/db/pool -m "pool settings moved to shop/db/main"'],
  async run({ values, positionals, out }) {
    const name = positionals.length === 3 ? positionals.join('/') : positionals[0];
    if (positionals.length !== 1 && positionals.length !== 3)
      throw new UsageError('name the item as <app>/<group>/<key> or <app> <group> <key>');
    const item = parseItem(name);
    const admin = await adminClient(values, { admin: true });
    const r = await admin.config.remove(item, {
      ...change(values),
      ...expectation(values, 1),
    });
    out.json({ ...item, ...r });
    out.line(
      `${name}: removed (it was at version ${r.version}; 'peak config history ${name}' still shows its versions)`,
    );
    return 0;
  },
};

function list(v: unknown): string[] {
  return typeof v === 'string' ? v.split(',').filter((s) => s.length > 0) : [];
}

const gray: Command = {
  name: 'gray',
  summary: 'release a value to instances matching tags or ids first (or --abort it)',
  args: '<app>/<group>/<key> [value|@file]',
  options: {
    ...WRITE_OPTIONS,
    tags: {
      type: 'string',
      valueName: 'A,B',
      description: 'instances with any of these tags get the value',
    },
    instances: {
      type: 'string',
      valueName: 'ID,ID',
      description: 'these instance ids get the value',
    },
    text: { type: 'boolean', description: 'the value is plain text, not JSON' },
    abort: {
      type: 'boolean',
      description: 'end the gray release; gray instances go back to the released value',
    },
  },
  examples: [
    'peak config gray shop/limits/qps 200 --tags canary -m "try 200"',
    'peak config gray shop/limits/qps --abort',
  ],
  async run({ values, positionals, out }) {
    const item = parseItem(positionals[0]);
    const admin = await adminClient(values, { admin: true });
    if (values.abort === true) {
      const r = await admin.config.abortGray(item, { author: author(values) });
      out.json(r);
      out.line(`${positionals[0]}: gray release aborted; every instance has the released value`);
      return 0;
    }
    const value = await readValue(positionals[1]);
    const tags = list(values.tags);
    const instanceIds = list(values.instances);
    if (tags.length === 0 && instanceIds.length === 0)
      throw new UsageError('a gray release needs --tags and/or --instances');
    const r = await admin.config.gray(item, {
      value,
      format: values.text === true ? 'text' : 'json',
      tags,
      instanceIds,
      ...change(values),
    });
    out.json(r);
    out.line(
      `${positionals[0]}: gray release over version ${r.baseVersion} to ${[...tags.map((t) => `tag ${t}`), ...instanceIds].join(', ')}; 'peak config promote' or 'peak config gray --abort' next`,
    );
    return 0;
  },
};

const promote: Command = {
  name: 'promote',
  summary: 'release the gray value to every instance as a new version',
  args: '<app>/<group>/<key>',
  options: WRITE_OPTIONS,
  examples: ['peak config promote shop/limits/qps -m "canary fine for 10 min"'],
  async run({ values, positionals, out }) {
    const item = parseItem(positionals[0]);
    const admin = await adminClient(values, { admin: true });
    const r = await admin.config.promote(item, {
      ...change(values),
    });
    out.json(r);
    out.line(`${positionals[0]}: promoted to everyone as version ${r.version}`);
    return 0;
  },
};

const audit: Command = {
  name: 'audit',
  summary: 'who changed what, when and from where (newest first)',
  args: '[<app>[/<group>/<key>]]',
  options: {
    ...SERVER_OPTIONS,
    limit: { type: 'string', valueName: 'N', description: 'how many', default: '50' },
  },
  examples: ['peak config audit shop', 'peak config audit shop/db/pool --json'],
  async run({ values, positionals, out }) {
    const arg = positionals[0];
    const filter = arg === undefined ? {} : arg.includes('/') ? parseItem(arg) : { app: arg };
    const rows = await (await adminClient(values)).config.audit(filter, {
      limit: Math.max(1, numberOption(values, 'limit', { min: 0, integer: true }) ?? 50),
    });
    out.json({ audit: rows });
    for (const a of rows) {
      out.line(
        `${a.at}  ${a.action.padEnd(8)} ${`${a.app}/${a.group}/${a.key}`.padEnd(32)} v${String(a.version ?? '-').padEnd(4)} ${a.actor} from ${a.source}`,
      );
    }
    return 0;
  },
};

/** `peak config`: items, versions, gray releases and audit of the config center. */
export const configCommand: Command = {
  name: 'config',
  summary: 'config center: get, set, history, diff, rollback, gray, promote, audit',
  subcommands: [get, set, history, diff, rollback, gray, promote, rm, audit],
};
