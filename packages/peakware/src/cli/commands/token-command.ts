/**
 * `peak token`: the admin token (`rotate`) and operator tokens of a role (`create`, `list`,
 * `revoke`): `admin`, `operator` (config, rules and plans; no credential management) and
 * `viewer` (reads only).
 */
import { UsageError } from '../../core/errors.js';
import type { Command } from '../command.js';
import { ADMIN_OPTIONS, adminClient } from '../control-client.js';

const ROLES = ['admin', 'operator', 'viewer'] as const;

function nameOf(positionals: string[], usage: string): string {
  const name = positionals[0];
  if (name === undefined) throw new UsageError(`give the token's name: ${usage}`);
  return name;
}

const rotate: Command = {
  name: 'rotate',
  summary: 'replace the admin token (prints the new one once)',
  options: ADMIN_OPTIONS,
  examples: [
    'peak token rotate',
    'peak token rotate --server http://10.0.0.5:7420 --token peak_...',
  ],
  async run({ values, out }) {
    const result = await (await adminClient(values, { admin: true })).system.rotateToken();
    out.json(result);
    out.line('admin token rotated; the old token no longer works.');
    out.line(`new token (also written to ${result.file} on the server, mode 0600):`);
    out.line(`  ${result.token}`);
    return 0;
  },
};

const create: Command = {
  name: 'create',
  summary: 'issue an operator token of a role (printed once)',
  args: '<name>',
  options: {
    ...ADMIN_OPTIONS,
    role: {
      type: 'string',
      valueName: 'ROLE',
      description: 'admin, operator (config, rules, plans) or viewer (reads only)',
      default: 'viewer',
    },
  },
  examples: ['peak token create ci --role operator', 'peak token create dashboards --role viewer'],
  async run({ values, positionals, out }) {
    const usage = 'peak token create <name> --role admin|operator|viewer';
    const name = nameOf(positionals, usage);
    const role = String(values.role);
    if (!(ROLES as readonly string[]).includes(role)) {
      throw new UsageError(`--role must be admin, operator or viewer, got '${role}'`);
    }
    const created = await (await adminClient(values, { admin: true })).system.createToken(
      name,
      role as (typeof ROLES)[number],
    );
    out.json(created);
    out.line(`token ${created.name} (role ${created.role}), shown once:`);
    out.line(`  ${created.token}`);
    return 0;
  },
};

const list: Command = {
  name: 'list',
  summary: 'the working operator tokens: names and roles, never secrets',
  options: ADMIN_OPTIONS,
  examples: ['peak token list', 'peak token list --json'],
  async run({ values, out }) {
    const tokens = await (await adminClient(values, { admin: true })).system.tokens();
    out.json({ tokens });
    for (const t of tokens) {
      out.line(`${t.name.padEnd(24)} ${t.role.padEnd(9)} ${t.createdAt}  by ${t.createdBy}`);
    }
    return 0;
  },
};

const revoke: Command = {
  name: 'revoke',
  summary: 'revoke an operator token by name (it stops working at once)',
  args: '<name>',
  options: ADMIN_OPTIONS,
  examples: ['peak token revoke ci'],
  async run({ values, positionals, out }) {
    const name = nameOf(positionals, 'peak token revoke <name>');
    const result = await (await adminClient(values, { admin: true })).system.revokeToken(name);
    out.json(result);
    out.line(`token ${result.revoked} revoked`);
    return 0;
  },
};

export const tokenCommand: Command = {
  name: 'token',
  summary: 'the admin token and operator tokens of a role',
  subcommands: [rotate, create, list, revoke],
};
