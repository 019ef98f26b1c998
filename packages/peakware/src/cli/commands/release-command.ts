/**
 * `peak release`: gray releases of a supervised service. `start <service> --version V
 * --command CMD` starts the new version in a gray group and lets the analysis shift
 * traffic by weight steps, or by a rule (`--match header:NAME=VALUE`, `--user-hash KEY`),
 * and promote or roll back (`--watch` follows it to the end);
 * `show <service>` prints where it stands and every step it took; `ls` lists an app's;
 * `pause|resume|abort <service>` by hand.
 */
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AdminClient } from '../../admin/admin-client.js';
import { UsageError } from '../../core/errors.js';
import {
  parseReleaseFile,
  type ReleaseRequest,
  type ReleaseRule,
  releasePlanLabel,
  releaseStepLabel,
} from '../../scale/release-spec.js';
import type { ReleaseView } from '../../scale/server/index.js';
import type { Command, CommandContext } from '../command.js';
import { ADMIN_OPTIONS, adminClient, SERVER_OPTIONS } from '../control-client.js';
import { numberOption } from '../parse.js';
import { APP, needApp } from './scale-command.js';

function needService(positionals: string[], usage: string): string {
  const s = positionals[0];
  if (s === undefined || s === '') throw new UsageError(`give the service: ${usage}`);
  return s;
}

/** The rule of `--match header:NAME=VALUE` or `--user-hash KEY` (neither: undefined). */
export function ruleOption(match: unknown, userHash: unknown): ReleaseRule | undefined {
  if (match !== undefined && userHash !== undefined)
    throw new UsageError('give --match or --user-hash, not both');
  if (typeof userHash === 'string') return { userHash };
  if (typeof match !== 'string') return undefined;
  const m = /^header:([^=]+)=(.+)$/.exec(match);
  if (m === null)
    throw new UsageError(
      `--match must be header:NAME=VALUE (e.g. header:x-gray=1), not '${match}'`,
    );
  return { header: m[1]!.trim(), value: m[2]!.trim() };
}

/** The `show` text: where the release stands, its steps' rules, then its log, oldest first. */
export function releaseLines(r: ReleaseView): string[] {
  const s = r.settings;
  const now =
    s.rule === undefined || r.phase !== 'step' || !['running', 'paused'].includes(r.state)
      ? `${r.weight}% of calls to ${r.version}`
      : `step ${r.step + 1}: ${releaseStepLabel(s, r.step)} to ${r.version}`;
  return [
    `release #${r.id} of ${r.service} (${r.app}): ${r.fromVersion} -> ${r.version}  ${r.state.toUpperCase()}  ${now}`,
    `${releasePlanLabel(s)}, hold ${s.stepHoldMs} ms, min ${s.minSamples} calls, ${s.grayInstances} gray instance(s); by ${r.author} at ${r.createdAt}`,
    ...s.steps.map(
      (_, i) =>
        `  step ${i + 1}: ${releaseStepLabel(s, i)}${s.rule === undefined ? '' : ` (rule tag release-${r.id})`}`,
    ),
    ...(r.outcome === null ? [] : [`outcome: ${r.outcome}`]),
    ...r.events.map((e) => `  ${e.at}  ${e.kind.padEnd(8)} ${e.message}`),
  ];
}

async function watch(
  admin: AdminClient,
  app: string,
  service: string,
  ctx: CommandContext,
): Promise<ReleaseView> {
  let printed = 0;
  for (;;) {
    const r = await admin.scale.release(app, service);
    for (const e of r.events.slice(printed))
      ctx.out.line(`  ${e.at}  ${e.kind.padEnd(8)} ${e.message}`);
    printed = r.events.length;
    if (r.state !== 'running') return r;
    await sleep(1000);
  }
}

const start: Command = {
  name: 'start',
  summary:
    'start a release: gray instances of the new version, weight or rule steps, analysis, promote or roll back',
  args: '[service]',
  options: {
    ...ADMIN_OPTIONS,
    ...APP,
    file: {
      type: 'string',
      valueName: 'FILE',
      description:
        'a release file (YAML or JSON) with the request fields (service, version, command, steps, rule: { header, value } or { userHash }, stepHoldMs, ...); flags override it',
    },
    version: { type: 'string', valueName: 'V', description: 'the new version label' },
    command: { type: 'string', valueName: 'CMD', description: "the new version's command line" },
    gray: { type: 'string', valueName: 'N', description: 'gray instances (default 1)' },
    steps: {
      type: 'string',
      valueName: 'LIST',
      description:
        'weight steps in percent (default 10,25,50,100); with --user-hash, percent of users',
    },
    match: {
      type: 'string',
      valueName: 'header:NAME=VALUE',
      description:
        'by rule: send the calls whose context tag or baggage NAME equals VALUE to the new version (one step), instead of weights',
    },
    'user-hash': {
      type: 'string',
      valueName: 'KEY',
      description:
        "by rule: send the users with hash(KEY) % 100 below each step's percent (KEY: the call's field, e.g. buyerId), instead of weights",
    },
    hold: {
      type: 'string',
      valueName: 'MS',
      description: 'how long each step runs before it may pass (default 30000)',
    },
    'min-samples': {
      type: 'string',
      valueName: 'N',
      description: 'calls to the new version before a step is judged (default 100)',
    },
    'max-error-increase': {
      type: 'string',
      valueName: 'F',
      description: 'allowed error-rate increase (default 0.01)',
    },
    'p99-tolerance': {
      type: 'string',
      valueName: 'F',
      description: 'allowed p99 increase as a fraction (default 0.25)',
    },
    watch: { type: 'boolean', description: 'follow the release to its end (exit 0 when promoted)' },
  },
  examples: [
    'peak release start shop.inventory --app shop --version v2 --command "node dist/inventory-v2.js" --watch',
    'peak release start shop.inventory --app shop --version v2 --command "node dist/inventory-v2.js" --match header:x-gray=1',
    'peak release start shop.inventory --app shop --version v2 --command "node dist/inventory-v2.js" --user-hash buyerId --steps 5,20,50,100',
    'peak release start --app shop --file release.yaml',
  ],
  async run(ctx) {
    const { values, positionals, out } = ctx;
    const file =
      typeof values.file === 'string' ? parseReleaseFile(await readFile(values.file, 'utf8')) : {};
    const service =
      positionals[0] ??
      file.service ??
      needService(positionals, 'peak release start <service> --version V --command CMD');
    const version = typeof values.version === 'string' ? values.version : file.version;
    const command = typeof values.command === 'string' ? values.command : file.command;
    if (version === undefined || command === undefined)
      throw new UsageError(
        'give the new version and its command: --version V --command CMD (or in --file)',
      );
    const steps =
      typeof values.steps === 'string'
        ? values.steps.split(',').map((s) => Number(s.trim()))
        : undefined;
    const opt = (k: string, name: string) => {
      const v = numberOption(values, name);
      return v === undefined ? {} : { [k]: v };
    };
    const rule = ruleOption(values.match, values['user-hash']);
    const request: ReleaseRequest = {
      ...file,
      app: typeof values.app === 'string' || file.app === undefined ? needApp(values) : file.app,
      service,
      version,
      command,
      author: 'peak release start',
      ...(steps === undefined ? {} : { steps }),
      ...(rule === undefined ? {} : { rule }),
      ...opt('grayInstances', 'gray'),
      ...opt('stepHoldMs', 'hold'),
      ...opt('minSamples', 'min-samples'),
      ...opt('maxErrorRateIncrease', 'max-error-increase'),
      ...opt('p99Tolerance', 'p99-tolerance'),
    };
    const admin = await adminClient(values, { admin: true });
    const r = await admin.scale.startRelease(request);
    out.json({ event: 'started', release: r });
    out.line(`release #${r.id}: ${r.fromVersion} -> ${r.version} started`);
    if (values.watch !== true) return 0;
    const end = await watch(admin, request.app, service, ctx);
    out.json({ event: 'ended', release: end });
    out.line(`release #${end.id}: ${end.state}${end.outcome === null ? '' : ` (${end.outcome})`}`);
    return end.state === 'promoted' ? 0 : 1;
  },
};

const show: Command = {
  name: 'show',
  summary: "a service's newest release and every step it took",
  args: '<service>',
  options: { ...SERVER_OPTIONS, ...APP },
  examples: ['peak release show shop.inventory --app shop'],
  async run({ values, positionals, out }) {
    const r = await (await adminClient(values)).scale.release(
      needApp(values),
      needService(positionals, 'peak release show <service> --app APP'),
    );
    out.json(r);
    for (const l of releaseLines(r)) out.line(l);
    return 0;
  },
};

const ls: Command = {
  name: 'ls',
  summary: "an app's releases, newest first",
  options: { ...SERVER_OPTIONS, ...APP },
  examples: ['peak release ls --app shop'],
  async run({ values, out }) {
    const list = await (await adminClient(values)).scale.releases(needApp(values));
    out.json({ releases: list });
    if (list.length === 0) out.line('no releases');
    for (const r of list)
      out.line(
        `#${r.id}  ${r.service}  ${r.fromVersion} -> ${r.version}  ${r.state}  ${r.createdAt}${r.outcome === null ? '' : `  ${r.outcome}`}`,
      );
    return 0;
  },
};

function byHand(action: 'pause' | 'resume' | 'abort', summary: string): Command {
  return {
    name: action,
    summary,
    args: '<service>',
    options: {
      ...ADMIN_OPTIONS,
      ...APP,
      reason: { type: 'string', valueName: 'TEXT', description: 'why, for the release log' },
    },
    examples: [`peak release ${action} shop.inventory --app shop`],
    async run({ values, positionals, out }) {
      const admin = await adminClient(values, { admin: true });
      const r = await admin.scale.releaseAction(
        needApp(values),
        needService(positionals, `peak release ${action} <service> --app APP`),
        action,
        {
          author: `peak release ${action}`,
          ...(typeof values.reason === 'string' ? { reason: values.reason } : {}),
        },
      );
      out.json(r);
      for (const l of releaseLines(r)) out.line(l);
      return 0;
    },
  };
}

/** `peak release ...` */
export const releaseCommand: Command = {
  name: 'release',
  summary:
    'gray releases: start (weight or rule steps, analysis, promote or roll back), show, ls, pause, resume, abort',
  subcommands: [
    start,
    show,
    ls,
    byHand('pause', 'pause the release in progress (the weights stay)'),
    byHand('resume', "resume a paused release (the step's window starts again)"),
    byHand('abort', 'abort the release in progress: all traffic back, the gray group stops'),
  ],
};
