/**
 * `peak txn`: where global transactions stand and what an operator can do about them, through
 * the typed admin client: `ls` (newest first, by status or kind), `show` (status, reason,
 * lease and the branch timeline), `retry` (resume an unfinished or parked one now), `stop`
 * (force-stop a running saga or TCC: its compensations or cancels run), and `barrier install`
 * (the barrier table in a branch's database).
 */
import pg from 'pg';
import { UsageError } from '../../core/errors.js';
import { installBarrier } from '../../txn/barrier.js';
import type { TxnStatus, TxnSummary, TxnView } from '../../txn/txn-types.js';
import type { Command } from '../command.js';
import { ADMIN_OPTIONS, adminClient, SERVER_OPTIONS } from '../control-client.js';

const STATUSES = ['active', 'prepared', 'running', 'committing', 'aborting', 'succeeded', 'failed'];

function gidOf(positionals: string[], usage: string): string {
  const gid = positionals[0];
  if (gid === undefined || gid === '') throw new UsageError(`give the global id: ${usage}`);
  return gid;
}

function line(t: TxnSummary): string {
  const parked = t.parked ? ' PARKED' : '';
  const reason = t.reason === undefined ? '' : `  ${t.reason}`;
  return `${t.gid}  ${t.kind}  ${t.status}${parked}  ${t.createdAt}  recoveries=${t.recoveries}${reason}`;
}

/** The `show` text: the header, then one line per branch operation, oldest first. */
export function timeline(t: TxnView): string[] {
  const out = [
    `${t.gid}  ${t.kind}  ${t.status}${t.parked ? '  PARKED (peak txn retry resumes it)' : ''}`,
    ...(t.reason === undefined ? [] : [`reason:   ${t.reason}`]),
    `created:  ${t.createdAt}${t.finishedAt === undefined ? '' : `   finished: ${t.finishedAt}`}`,
    `deadline: ${t.deadline}   recoveries: ${t.recoveries}`,
    ...(t.owner === undefined
      ? []
      : [
          `owner:    ${t.owner}${t.leaseUntil === undefined ? '' : ` (lease until ${t.leaseUntil})`}`,
        ]),
    ...(t.traceId === undefined ? [] : [`trace:    ${t.traceId}`]),
    'branches:',
  ];
  if (t.branches.length === 0) out.push('  (none recorded)');
  for (const b of t.branches) {
    const took =
      b.finishedAt === undefined
        ? 'still running'
        : `${Date.parse(b.finishedAt) - Date.parse(b.startedAt)} ms`;
    out.push(
      `  ${b.startedAt}  ${b.branch}.${b.op}  ${b.status}  attempts=${b.attempts}  ${took}${b.error === undefined ? '' : `  ${b.error}`}`,
    );
  }
  return out;
}

/** `peak txn ...` */
export const txnCommand: Command = {
  name: 'txn',
  summary: 'global transactions (saga, TCC, two-phase messages): list, show, retry, stop',
  subcommands: [
    {
      name: 'ls',
      watch: true,
      summary: 'the newest global transactions',
      options: {
        ...SERVER_OPTIONS,
        status: {
          type: 'string',
          valueName: 'STATUS',
          description: `only this status: ${STATUSES.join(', ')}`,
        },
        kind: { type: 'string', valueName: 'KIND', description: 'only saga, tcc or msg' },
        limit: {
          type: 'string',
          valueName: 'N',
          description: 'most rows (1-1000)',
          default: '50',
          integer: { min: 1, max: 1000 },
        },
      },
      examples: ['peak txn ls --status active', 'peak txn ls --kind saga --status failed'],
      async run({ values, out }) {
        const status = values.status as string | undefined;
        if (status !== undefined && !STATUSES.includes(status))
          throw new UsageError(`--status takes one of ${STATUSES.join(', ')}, got '${status}'`);
        const kind = values.kind as string | undefined;
        if (kind !== undefined && !['saga', 'tcc', 'msg'].includes(kind))
          throw new UsageError(`--kind takes saga, tcc or msg, got '${kind}'`);
        const limit = Number(values.limit ?? 50);
        if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
          throw new UsageError(`--limit takes an integer from 1 to 1000, got '${values.limit}'`);
        const rows = await (await adminClient(values)).txn.list({
          ...(status === undefined ? {} : { status: status as TxnStatus | 'active' }),
          ...(kind === undefined ? {} : { kind: kind as 'saga' | 'tcc' | 'msg' }),
          limit,
        });
        out.json({ globals: rows });
        if (rows.length === 0) out.line('no global transactions');
        for (const r of rows) out.line(line(r));
        return 0;
      },
    },
    {
      name: 'show',
      summary: 'one global transaction: status, reason, owner and the branch timeline',
      args: '<gid>',
      options: SERVER_OPTIONS,
      async run({ values, positionals, out }) {
        const t = await (await adminClient(values)).txn.show(
          gidOf(positionals, 'peak txn show <gid>'),
        );
        out.json(t);
        for (const l of timeline(t)) out.line(l);
        return 0;
      },
    },
    {
      name: 'retry',
      summary: 'resume an unfinished (or parked) global transaction at the next recovery round',
      args: '<gid>',
      options: ADMIN_OPTIONS,
      async run({ values, positionals, out }) {
        const t = await (await adminClient(values)).txn.retry(
          gidOf(positionals, 'peak txn retry <gid>'),
        );
        out.json(t);
        out.line(`${t.gid}: ${t.status}, resumed at the next recovery round`);
        return 0;
      },
    },
    {
      name: 'stop',
      summary: 'force-stop a running saga or TCC: its compensations or cancels run',
      args: '<gid>',
      options: ADMIN_OPTIONS,
      async run({ values, positionals, out }) {
        const t = await (await adminClient(values)).txn.stop(
          gidOf(positionals, 'peak txn stop <gid>'),
        );
        out.json(t);
        out.line(
          `${t.gid}: ${t.status} (${t.reason ?? 'stopped'}); it rolls back at the next recovery round`,
        );
        return 0;
      },
    },
    {
      name: 'barrier',
      summary: "the barrier table in a branch's database",
      subcommands: [
        {
          name: 'install',
          summary: 'create peak_txn.barrier in a branch database',
          options: {
            db: {
              type: 'string',
              valueName: 'URL',
              description: "the branch's database (postgres://...)",
              env: 'PEAK_TXN_BARRIER_DB',
            },
          },
          examples: ['peak txn barrier install --db postgres://app@localhost:5432/inventory'],
          async run({ values, out }) {
            if (typeof values.db !== 'string' || values.db === '')
              throw new UsageError(
                "'peak txn barrier install' needs --db <url> (or PEAK_TXN_BARRIER_DB): the database the branch writes its rows in",
              );
            const pool = new pg.Pool({ connectionString: values.db, max: 1 });
            try {
              await installBarrier(pool);
            } finally {
              await pool.end();
            }
            out.json({ installed: true });
            out.line('barrier table ready: peak_txn.barrier');
            return 0;
          },
        },
      ],
    },
  ],
};
