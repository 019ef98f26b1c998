/**
 * `peak app`: apps and their scoped credentials.
 *
 *   peak app create <name> --can <grant> ...   an app and its first credential (shown once)
 *   peak app list                              apps, grants, credentials (ids and hints)
 *   peak app scopes <name> --can <grant> ...   replace an app's grants
 *   peak app rotate <name> [--overlap S]       a new credential; the old ones work S more seconds
 *   peak app revoke <name> [--credential ID]   end one credential, or all of the app's, now
 *   peak app rotate-signing-key                sign apps' identities with a new key
 */
import { UsageError } from '../../core/errors.js';
import type { Command, OptionSpec } from '../command.js';
import { ADMIN_OPTIONS, adminClient, SERVER_OPTIONS } from '../control-client.js';

const CAN: Record<string, OptionSpec> = {
  can: {
    type: 'string',
    valueName: 'GRANT',
    multiple: true,
    description:
      'a grant (repeat, or separate with commas): register:<service>, produce:<topic>, consume:<topic>/<group>, read-config:<app>/<item>, telemetry[:<service>], guard-token[:<namespace>], drill, stress, txn, scale[:<service>]; * matches any run of characters',
  },
};

function nameOf(positionals: string[], usage: string): string {
  const name = positionals[0];
  if (name === undefined) throw new UsageError(`give the app's name: ${usage}`);
  return name;
}

function grants(values: Record<string, unknown>, usage: string): string[] {
  const list = String(values.can ?? '')
    .split(',')
    .map((g) => g.trim())
    .filter((g) => g.length > 0);
  if (list.length === 0) throw new UsageError(`give at least one --can <grant>: ${usage}`);
  return list;
}

const create: Command = {
  name: 'create',
  summary: 'create an app with its grants and print its first credential (shown once)',
  args: '<name>',
  options: { ...ADMIN_OPTIONS, ...CAN },
  examples: [
    'peak app create shop.order --can register:shop.order --can produce:shop.order-placed --can read-config:shop/*',
    'peak app create shop.points --can consume:shop.order-placed/points,telemetry',
  ],
  async run({ values, positionals, out }) {
    const usage = "peak app create <name> --can <grant> (see 'peak app create --help')";
    const name = nameOf(positionals, usage);
    const created = await (await adminClient(values, { admin: true })).apps.create(
      name,
      grants(values, usage),
    );
    out.json(created);
    out.line(`app ${created.app} created with grants ${created.can.join(', ')}`);
    out.line(
      `credential ${created.credentialId} (shown once; give it to the app as PEAK_CREDENTIAL):`,
    );
    out.line(`  ${created.credential}`);
    return 0;
  },
};

const list: Command = {
  name: 'list',
  watch: true,
  summary: 'apps with their grants and credentials (ids and hints, never secrets)',
  options: SERVER_OPTIONS,
  examples: ['peak app list', 'peak app list --json'],
  async run({ values, out }) {
    const apps = await (await adminClient(values)).apps.list();
    out.json({ apps });
    if (apps.length === 0) out.line("no apps; create one with 'peak app create'");
    for (const a of apps) {
      out.line(`${a.name}  ${a.can.join(' ')}`);
      for (const c of a.credentials) {
        const state = c.revokedAt !== null ? 'revoked' : c.active ? 'active' : 'expired';
        const until = c.expiresAt === null || c.revokedAt !== null ? '' : ` until ${c.expiresAt}`;
        out.line(`  credential ${c.id} ...${c.hint} ${state}${until} (created ${c.createdAt})`);
      }
    }
    return 0;
  },
};

const scopes: Command = {
  name: 'scopes',
  summary: "replace an app's grants (every node applies them within 5 s)",
  args: '<name>',
  options: { ...ADMIN_OPTIONS, ...CAN },
  examples: ['peak app scopes shop.order --can register:shop.order,produce:shop.*'],
  async run({ values, positionals, out }) {
    const usage = 'peak app scopes <name> --can <grant>';
    const name = nameOf(positionals, usage);
    const r = await (await adminClient(values, { admin: true })).apps.setScopes(
      name,
      grants(values, usage),
    );
    out.json(r);
    out.line(`app ${r.app} now holds ${r.can.join(', ')}`);
    return 0;
  },
};

const rotate: Command = {
  name: 'rotate',
  summary: 'issue a new credential (shown once); the old ones keep working for --overlap seconds',
  args: '<name>',
  options: {
    ...ADMIN_OPTIONS,
    overlap: {
      type: 'string',
      valueName: 'SECONDS',
      description: 'how long the old credentials keep working (0: not at all)',
      default: '3600',
    },
  },
  examples: ['peak app rotate shop.order', 'peak app rotate shop.order --overlap 0'],
  async run({ values, positionals, out }) {
    const name = nameOf(positionals, 'peak app rotate <name>');
    const overlapSeconds = Number(values.overlap);
    if (!Number.isInteger(overlapSeconds) || overlapSeconds < 0 || overlapSeconds > 30 * 86_400) {
      throw new UsageError(
        `--overlap must be whole seconds 0-2592000, got ${String(values.overlap)}`,
      );
    }
    const r = await (await adminClient(values, { admin: true })).apps.rotate(name, {
      overlapSeconds,
    });
    out.json(r);
    out.line(`new credential ${r.credentialId} for ${r.app} (shown once):`);
    out.line(`  ${r.credential}`);
    out.line(`the earlier credentials work until ${r.previousExpireAt}`);
    return 0;
  },
};

const revoke: Command = {
  name: 'revoke',
  summary: "end one credential (--credential ID) or all of an app's, at once",
  args: '<name>',
  options: {
    ...ADMIN_OPTIONS,
    credential: {
      type: 'string',
      valueName: 'ID',
      description: "the credential's id (peak app list)",
    },
  },
  examples: ['peak app revoke shop.order --credential 7', 'peak app revoke shop.order'],
  async run({ values, positionals, out }) {
    const name = nameOf(positionals, 'peak app revoke <name> [--credential ID]');
    const r = await (await adminClient(values, { admin: true })).apps.revoke(
      name,
      values.credential === undefined ? undefined : String(values.credential),
    );
    out.json(r);
    out.line(`${r.revoked} credential(s) of ${r.app} revoked`);
    return 0;
  },
};

const rotateSigningKey: Command = {
  name: 'rotate-signing-key',
  summary:
    "sign apps' identities with a new key; the old one stays published until what it signed expired",
  options: ADMIN_OPTIONS,
  examples: ['peak app rotate-signing-key'],
  async run({ values, out }) {
    const r = await (await adminClient(values, { admin: true })).apps.rotateSigningKey();
    out.json(r);
    out.line(`identities are signed with key ${r.kid} from now on`);
    return 0;
  },
};

export const appCommand: Command = {
  name: 'app',
  summary: 'apps, their scoped credentials and signed identities',
  subcommands: [create, list, scopes, rotate, revoke, rotateSigningKey],
};
