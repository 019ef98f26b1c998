/** `peak context add|use|ls|rm`: named server + token file pairs (see ../contexts.ts). */
import path from 'node:path';
import { UsageError } from '../../core/errors.js';
import type { Command } from '../command.js';
import { activeContext, contextsPath, readContexts, writeContexts } from '../contexts.js';

function nameArg(positionals: string[], command: string): string {
  const name = positionals[0];
  if (name === undefined || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(name)) {
    throw new UsageError(
      `'peak context ${command}' needs a context name (letters, digits, . _ -), got '${name ?? ''}'`,
    );
  }
  return name;
}

const add: Command = {
  name: 'add',
  summary: 'add or replace a context: a server (list) and the file its admin token is in',
  args: '<name>',
  options: {
    server: {
      type: 'string',
      valueName: 'URL[,URL]',
      description: 'the peak server(s) of this context (required)',
    },
    'token-file': {
      type: 'string',
      valueName: 'FILE',
      description: "the file holding this server's admin token (e.g. <data>/admin-token)",
    },
    use: { type: 'boolean', description: 'make it the current context too' },
  },
  examples: [
    'peak context add local --server http://127.0.0.1:7420 --token-file .peak/admin-token --use',
    'peak context add prod --server https://peak-1:7420,https://peak-2:7420 --token-file ~/.peak/prod-token',
  ],
  async run({ values, positionals, out }) {
    const name = nameArg(positionals, 'add');
    if (typeof values.server !== 'string' || values.server === '')
      throw new UsageError("'peak context add' needs --server URL");
    const file = await readContexts();
    const tokenFile =
      typeof values['token-file'] === 'string' ? path.resolve(values['token-file']) : undefined;
    file.contexts[name] = {
      server: values.server,
      ...(tokenFile === undefined ? {} : { tokenFile }),
    };
    if (values.use === true || file.current === undefined) file.current = name;
    await writeContexts(file);
    out.json({ context: name, ...file.contexts[name], current: file.current === name });
    out.line(
      `context '${name}' saved in ${contextsPath()}${file.current === name ? ' (current)' : ''}`,
    );
    return 0;
  },
};

const use: Command = {
  name: 'use',
  summary: 'make a context the current one',
  args: '<name>',
  async run({ positionals, out }) {
    const name = nameArg(positionals, 'use');
    const file = await readContexts();
    if (file.contexts[name] === undefined) {
      throw new UsageError(
        `no context '${name}'; known: ${Object.keys(file.contexts).join(', ') || 'none'}`,
      );
    }
    file.current = name;
    await writeContexts(file);
    out.json({ current: name });
    out.line(`current context: ${name}`);
    return 0;
  },
};

const ls: Command = {
  name: 'ls',
  summary: 'list contexts; * marks the one in use (PEAK_CONTEXT, else the current one)',
  async run({ out }) {
    const file = await readContexts();
    const inUse = await activeContext({}).catch(() => undefined);
    const rows = Object.entries(file.contexts).map(([name, c]) => ({
      name,
      server: c.server,
      tokenFile: c.tokenFile ?? null,
      inUse: inUse?.name === name,
    }));
    out.json({ file: contextsPath(), current: file.current ?? null, contexts: rows });
    if (rows.length === 0)
      out.line(`no contexts (in ${contextsPath()}); add one with peak context add`);
    const width = Math.max(4, ...rows.map((r) => r.name.length));
    if (rows.length > 0) out.line(`  ${'NAME'.padEnd(width)}  SERVER  TOKEN FILE`);
    for (const r of rows)
      out.line(
        `${r.inUse ? '*' : ' '} ${r.name.padEnd(width)}  ${r.server}  ${r.tokenFile ?? '-'}`,
      );
    return 0;
  },
};

const rm: Command = {
  name: 'rm',
  aliases: ['delete'],
  summary: 'delete a context',
  args: '<name>',
  async run({ positionals, out }) {
    const name = nameArg(positionals, 'rm');
    const file = await readContexts();
    if (file.contexts[name] === undefined) throw new UsageError(`no context '${name}'`);
    delete file.contexts[name];
    if (file.current === name) delete file.current;
    await writeContexts(file);
    out.json({ deleted: name });
    out.line(`context '${name}' deleted`);
    return 0;
  },
};

export const contextCommand: Command = {
  name: 'context',
  summary: 'which server and token file commands use: peak context add|use|ls|rm',
  description:
    'Contexts live in $PEAK_CONFIG_DIR/contexts.json (default ~/.config/peak/contexts.json). The one in use is --context NAME, else PEAK_CONTEXT, else the current one; --server/PEAK_SERVER and --token/PEAK_TOKEN still win over it.',
  subcommands: [add, use, ls, rm],
};
