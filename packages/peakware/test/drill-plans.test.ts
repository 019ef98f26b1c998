/**
 * Plans against a real control plane: a planted invalid change refuses the whole plan
 * (when stored, and at apply time when an item's own schema refuses one change in the
 * middle of the batch: nothing changed); diff previews; apply publishes every item at once
 * (a real ConfigClient sees the switches: flag, closed entry, paused consumer, guard
 * rules); rollback restores the exact earlier versions (the baseline for items the apply
 * created) and is refused when an item moved since, unless forced; every run is audited;
 * `peak plan` drives it from the command line.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { AdminClient } from '../src/admin/index.js';
import { ConfigClient } from '../src/config/index.js';
import { configStorePort } from '../src/config/server/index.js';
import { silentLogger } from '../src/core/logger.js';
import { consumerPaused, entryOpen, type PlanSpec, readFlag } from '../src/drill/index.js';
import { runDueSchedules } from '../src/drill/server/plan-schedules.js';
import { PeakServer } from '../src/server/index.js';
import { useLocalCredential } from './support/credentials.js';
import { runPeak } from './support/peak-process.js';
import { waitFor } from './support/wait.js';

const APP = 'planshop';

describe('plans', { timeout: 180_000 }, () => {
  let dataDir: string;
  let server: PeakServer;
  let admin: AdminClient;
  let config: ConfigClient;

  const rules = (count: number) => ({ flow: [{ resource: 'buy', count }] });
  const plan = (over: Partial<PlanSpec> = {}): PlanSpec => ({
    name: 'flash-sale',
    app: APP,
    description: 'promotion mode',
    changes: [
      { kind: 'guard-rules', rules: rules(50) },
      { kind: 'flag', name: 'recommendations', value: false, baseline: true },
      { kind: 'cache', cache: 'products', settings: { l1Enabled: true, l1TtlMs: 2000 } },
      { kind: 'mq-pause', group: 'points', paused: true },
      { kind: 'entry', entry: 'refunds', open: false },
    ],
    ...over,
  });
  const version = async (group: string, key: string) =>
    (await admin.config.get({ app: APP, group, key })).version;
  const value = async (group: string, key: string) =>
    (await admin.config.get({ app: APP, group, key })).value;

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-plans-'));
    server = await PeakServer.start({ dataDir, port: 0 });
    useLocalCredential(server);
    const token = (await readFile(server.info.adminTokenFile, 'utf8')).trim();
    admin = new AdminClient({ servers: server.info.url, token });
    // The state before the promotion: guard rules (v1, v2) and a limit with its own schema.
    await admin.config.publish(
      { app: APP, group: 'governance', key: 'guard-rules' },
      { value: JSON.stringify(rules(500)), schema: { $peak: 'guard-rules' } },
    );
    await admin.config.publish(
      { app: APP, group: 'governance', key: 'guard-rules' },
      { value: JSON.stringify(rules(400)) },
    );
    await admin.config.publish(
      { app: APP, group: 'limits', key: 'batch' },
      { value: '10', schema: { type: 'integer', minimum: 1 } },
    );
    config = new ConfigClient({ servers: server.info.url, app: APP });
    await config.start();
  });

  after(async () => {
    await config?.close();
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('refuses a plan with a planted invalid change as a whole, naming the change', async () => {
    const bad = plan({
      changes: [
        ...plan().changes,
        { kind: 'guard-rules', item: 'governance/extra', rules: rules(-1) },
      ],
    });
    await assert.rejects(admin.drill.putPlan(bad), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'PEAK_PLAN_INVALID');
      assert.match(err.message, /changes\[5\]/);
      return true;
    });
    await assert.rejects(
      admin.drill.putPlan(plan({ changes: [plan().changes[1]!, plan().changes[1]!] })),
      /one change per item/,
    );
    assert.deepEqual(await admin.drill.plans(), []);
  });

  it('applies all changes or none: a change refused by its item mid-batch changes nothing', async () => {
    await admin.drill.putPlan(
      plan({
        name: 'half',
        changes: [
          ...plan().changes,
          { kind: 'config', item: 'limits/batch', value: '0' }, // the item's schema wants >= 1
        ],
      }),
    );
    await assert.rejects(admin.drill.apply('half'), { code: 'PEAK_PLAN_INVALID' });
    assert.equal(await version('governance', 'guard-rules'), 2);
    assert.equal(await version('limits', 'batch'), 1);
    await assert.rejects(admin.config.get({ app: APP, group: 'entries', key: 'refunds' }), {
      code: 'PEAK_CONFIG_NOT_FOUND',
    });
    assert.equal((await admin.drill.plan('half')).runs.length, 0);
    await admin.drill.deletePlan('half');
  });

  it('previews, applies through the config center, and rolls back to the exact versions', async () => {
    await admin.drill.putPlan(plan());
    const diff = await admin.drill.diff('flash-sale');
    const guard = diff.find((d) => d.kind === 'guard-rules')!;
    assert.equal(guard.version, 2);
    assert.ok(guard.diff.some((l) => l.op === '-' && l.text.includes('400')));
    assert.ok(guard.diff.some((l) => l.op === '+' && l.text.includes('50')));
    assert.equal(diff.find((d) => d.kind === 'entry')?.version, null);

    const applied = await admin.drill.apply('flash-sale', {
      author: 'ops',
      comment: 'sale at 20:00',
    });
    assert.equal(applied.items.length, 5);
    await waitFor('the instance sees the plan', () => !entryOpen(config, 'refunds'));
    assert.equal(consumerPaused(config, 'points'), true);
    assert.equal(readFlag(config, 'recommendations', true), false);
    assert.deepEqual(JSON.parse(config.entry('governance/guard-rules')!.value), rules(50));
    assert.deepEqual(JSON.parse(config.entry('cache/products')!.value), {
      l1Enabled: true,
      l1TtlMs: 2000,
    });
    await assert.rejects(admin.drill.apply('flash-sale'), { code: 'PEAK_PLAN_CONFLICT' });

    const rolled = await admin.drill.rollback('flash-sale', { author: 'ops' });
    assert.equal(rolled.action, 'rollback');
    await waitFor('the instance sees the rollback', () => entryOpen(config, 'refunds'));
    assert.equal(consumerPaused(config, 'points'), false);
    assert.equal(readFlag(config, 'recommendations', false), true);
    assert.equal(await value('governance', 'guard-rules'), JSON.stringify(rules(400)));
    const guardItem = rolled.items.find((i) => i.key === 'guard-rules')!;
    assert.equal(guardItem.before, 2);
    const history = await admin.config.history({
      app: APP,
      group: 'governance',
      key: 'guard-rules',
    });
    assert.equal(history[0]?.value, history.find((h) => h.version === 2)?.value);
    const audit = await admin.config.audit({ app: APP });
    assert.ok(
      audit.some(
        (a) => a.actor === 'ops' && JSON.stringify(a.detail).includes('plan flash-sale apply'),
      ),
    );
    assert.ok(
      audit.some(
        (a) =>
          a.action === 'rollback' && JSON.stringify(a.detail).includes('plan flash-sale rollback'),
      ),
    );
  });

  it('refuses a rollback over an item changed since the apply, unless forced', async () => {
    await admin.drill.apply('flash-sale');
    await admin.config.publish(
      { app: APP, group: 'entries', key: 'refunds' },
      { value: '{"open":false,"note":"by hand"}' },
    );
    await assert.rejects(admin.drill.rollback('flash-sale'), { code: 'PEAK_PLAN_CONFLICT' });
    assert.deepEqual(
      JSON.parse(await value('governance', 'guard-rules')),
      rules(50),
      'nothing rolled back',
    );
    await admin.drill.rollback('flash-sale', { force: true });
    assert.equal(await value('entries', 'refunds'), '{"open":true}');
    assert.equal(await value('governance', 'guard-rules'), JSON.stringify(rules(400)));
  });

  it('runs a scheduled apply and its rollback on time, once, and records what it did', async () => {
    await admin.drill.putPlan(
      plan({ name: 'promo-window', changes: [{ kind: 'flag', name: 'promo', value: 'on' }] }),
    );
    const t0 = Date.now();
    const scheduled = await admin.drill.schedule('promo-window', {
      at: t0 + 1500,
      rollbackAt: t0 + 3500,
      comment: 'double twelve',
    });
    assert.deepEqual(
      scheduled.map((sc) => [sc.action, sc.state]),
      [
        ['apply', 'pending'],
        ['rollback', 'pending'],
      ],
    );
    assert.equal((await admin.drill.plan('promo-window')).schedules.length, 2);
    assert.equal(await value('flags', 'promo').catch(() => 'absent'), 'absent');
    const promo = () => value('flags', 'promo').catch(() => 'absent');
    await waitFor('the scheduled apply', async () => (await promo()) === '"on"');
    assert.ok(Date.now() >= t0 + 1500, 'not before its time');
    await waitFor('the scheduled rollback', async () => (await value('flags', 'promo')) === 'null');
    const done = await admin.drill.schedules({ plan: 'promo-window', all: true });
    assert.deepEqual(
      done.map((sc) => [sc.action, sc.state]),
      [
        ['apply', 'done'],
        ['rollback', 'done'],
      ],
    );
    const { runs } = await admin.drill.plan('promo-window');
    assert.deepEqual(
      runs.map((r) => [r.id, r.action, r.comment]),
      [
        [done[1]!.runId, 'rollback', 'double twelve'],
        [done[0]!.runId, 'apply', 'double twelve'],
      ],
    );
    assert.match(runs[1]!.actor, /\(scheduled\)$/);
    assert.equal(done[0]!.ranBy, server.info.nodeId);
    // Nothing pending is left.
    assert.deepEqual(await admin.drill.schedules({ plan: 'promo-window' }), []);
  });

  it('refuses a time past, out of order or for an unknown plan; cancels a pending run; records a refused one', async () => {
    const code = (p: Promise<unknown>, want: string, pattern: RegExp) =>
      assert.rejects(p, (err: Error & { code?: string }) => {
        assert.equal(err.code, want, err.message);
        assert.match(err.message, pattern);
        return true;
      });
    await code(
      admin.drill.schedule('promo-window', { at: Date.now() - 1000 }),
      'PEAK_PLAN_INVALID',
      /at .* is not in the future/,
    );
    await code(
      admin.drill.schedule('promo-window', {
        at: Date.now() + 60_000,
        rollbackAt: Date.now() + 1000,
      }),
      'PEAK_PLAN_INVALID',
      /rollbackAt .* is not after the apply/,
    );
    await code(
      admin.drill.schedule('promo-window', { at: 'next tuesday' }),
      'PEAK_PLAN_INVALID',
      /at is not a time/,
    );
    await code(
      admin.drill.schedule('no-such-plan', { at: Date.now() + 60_000 }),
      'PEAK_PLAN_NOT_FOUND',
      /no-such-plan/,
    );
    const [later] = await admin.drill.schedule('promo-window', { at: Date.now() + 60_000 });
    const cancelled = await admin.drill.cancelSchedule(later!.id);
    assert.equal(cancelled.state, 'cancelled');
    await code(
      admin.drill.cancelSchedule(later!.id),
      'PEAK_PLAN_CONFLICT',
      /is cancelled, not pending/,
    );
    await code(
      admin.drill.cancelSchedule(999_999),
      'PEAK_PLAN_NOT_FOUND',
      /no plan schedule 999999/,
    );
    // A rollback of a plan that is not applied is refused when it comes due, and says why.
    const [refused] = await admin.drill.schedule('promo-window', {
      action: 'rollback',
      at: Date.now() + 800,
    });
    await waitFor('the refused run', async () =>
      (await admin.drill.schedules({ all: true })).some(
        (sc) => sc.id === refused!.id && sc.state === 'failed',
      ),
    );
    const failed = (await admin.drill.schedules({ all: true })).find((sc) => sc.id === refused!.id);
    assert.match(failed!.error ?? '', /plan promo-window is not applied/);
    await admin.drill.deletePlan('promo-window'); // the command-line test lists the others
  });

  it('repeats a schedule: the next occurrence made at the claim, missed ones skipped, ended by a cancel', async () => {
    await admin.drill.putPlan(
      plan({ name: 'daily', changes: [{ kind: 'flag', name: 'daily', value: 'on' }] }),
    );
    const db = new pg.Pool({ connectionString: server.postgresUrl(), max: 1 });
    try {
      const t0 = Date.now();
      const pair = await admin.drill.schedule('daily', {
        at: t0 + 1000,
        rollbackAt: t0 + 31_000,
        everyMs: 60_000,
      });
      assert.deepEqual(
        pair.map((sc) => [sc.action, sc.everyMs, sc.series === sc.id]),
        [
          ['apply', 60_000, true],
          ['rollback', 60_000, true],
        ],
      );
      const series = (id: number) =>
        admin.drill
          .schedules({ plan: 'daily', all: true })
          .then((all) => all.filter((sc) => sc.series === id));
      // The apply runs; its claim made the next apply a minute after the first.
      await waitFor(
        'the first apply, and its next occurrence',
        async () => (await series(pair[0]!.id)).length === 2,
      );
      const [first, next] = await series(pair[0]!.id);
      await waitFor('the first apply done', async () =>
        (await series(pair[0]!.id)).some((sc) => sc.id === first!.id && sc.state === 'done'),
      );
      assert.equal(next!.state, 'pending');
      assert.equal(Date.parse(next!.at) - Date.parse(first!.at), 60_000);
      assert.equal(next!.everyMs, 60_000);
      assert.equal(await value('flags', 'daily'), '"on"');
      // A control plane that was away skips what it missed: the pending apply, due 3.5
      // intervals ago, runs once and makes the next one the first due time after now.
      await db.query(
        `UPDATE peak.drill_plan_schedules SET due_at = now() - interval '210 seconds' WHERE id = $1`,
        [next!.id],
      );
      await waitFor(
        'the late occurrence ran and the next one is set',
        async () => (await series(pair[0]!.id)).length === 3,
      );
      const third = (await series(pair[0]!.id))[2]!;
      const ahead = Date.parse(third.at) - Date.now();
      assert.ok(ahead > 0 && ahead <= 30_000 + 2000, `next due ${ahead} ms from now`);
      // A run claimed again after its node died makes no second next occurrence.
      await db.query(
        `UPDATE peak.drill_plan_schedules SET state = 'running', claimed_at = now() - interval '2 minutes'
          WHERE id = $1`,
        [first!.id],
      );
      await waitFor('the reclaimed run finished', async () =>
        (await series(pair[0]!.id)).every((sc) => sc.state !== 'running'),
      );
      assert.equal((await series(pair[0]!.id)).length, 3);
      // Cancelling the pending occurrences ends both series.
      for (const sc of await admin.drill.schedules({ plan: 'daily' }))
        await admin.drill.cancelSchedule(sc.id);
      assert.deepEqual(await admin.drill.schedules({ plan: 'daily' }), []);
      // A rollback not before the next apply, or an interval under a minute, is refused.
      await assert.rejects(
        admin.drill.schedule('daily', {
          at: Date.now() + 60_000,
          rollbackAt: Date.now() + 60_000 + 3_600_000,
          everyMs: 3_600_000,
        }),
        /not before the next apply/,
      );
      await assert.rejects(
        admin.drill.schedule('daily', { at: Date.now() + 60_000, everyMs: 1000 }),
        /everyMs|60000/,
      );
      await admin.drill.rollback('daily', { force: true }).catch(() => undefined);
      await admin.drill.deletePlan('daily');
    } finally {
      await db.end();
    }
  });

  it('runs a due schedule exactly once while several nodes look for it at the same time', async () => {
    await admin.drill.putPlan(
      plan({ name: 'race', changes: [{ kind: 'flag', name: 'race', value: 1 }] }),
    );
    const pools = Array.from(
      { length: 3 },
      () => new pg.Pool({ connectionString: server.postgresUrl(), max: 2 }),
    );
    try {
      const [sc] = await admin.drill.schedule('race', { at: Date.now() + 1000 });
      // Three more "nodes" (this process, over their own connections) race the server's own.
      const cfg = configStorePort;
      const deadline = Date.now() + 15_000;
      let ran = 0;
      while (Date.now() < deadline) {
        const counts = await Promise.all(
          pools.map((p, i) => runDueSchedules(cfg, p, `racer-${i}`, silentLogger())),
        );
        ran += counts.reduce((a, b) => a + b, 0);
        const state = (await admin.drill.schedules({ plan: 'race', all: true }))[0]?.state;
        if (state === 'done' || state === 'failed') break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const [after] = await admin.drill.schedules({ plan: 'race', all: true });
      assert.equal(after?.id, sc!.id);
      assert.equal(after?.state, 'done', after?.error ?? '');
      const { runs } = await admin.drill.plan('race');
      assert.equal(runs.length, 1, 'one apply, whoever claimed it');
      assert.ok(ran <= 1, `racers ran ${ran}`);
      await admin.drill.deletePlan('race');
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
  });

  it('peak plan apply <file>, ls, diff, show, rollback', async () => {
    const file = path.join(dataDir, 'calm.json');
    await writeFile(
      file,
      JSON.stringify(
        plan({ name: 'calm', changes: [{ kind: 'flag', name: 'banner', value: 'sale' }] }),
      ),
    );
    const peak = async (...args: string[]) => {
      const admin = ['apply', 'diff', 'rollback'].includes(args[1] ?? '');
      const r = await runPeak([
        ...args,
        '--server',
        server.info.url,
        ...(admin ? ['--data', dataDir] : []),
        '--json',
      ]);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as Record<string, unknown>;
    };
    const applied = await peak('plan', 'apply', file);
    assert.equal(applied.action, 'apply');
    const ls = (await peak('plan', 'ls')).plans as { name: string; applied: boolean }[];
    assert.deepEqual(
      ls.map((p) => [p.name, p.applied]),
      [
        ['calm', true],
        ['flash-sale', false],
      ],
    );
    const diff = (await peak('plan', 'diff', 'calm')).changes as { same: boolean }[];
    assert.equal(diff[0]?.same, true);
    await peak('plan', 'rollback', 'calm');
    assert.equal(await value('flags', 'banner'), 'null');
    const show = (await peak('plan', 'show', 'calm')) as { runs: { action: string }[] };
    assert.deepEqual(
      show.runs.map((r) => r.action),
      ['rollback', 'apply'],
    );
    // A run for later: scheduled, listed, cancelled.
    const sched = async (...args: string[]) => {
      const r = await runPeak([
        ...args,
        ...['--server', server.info.url, '--data', dataDir, '--json'],
      ]);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as Record<string, unknown>;
    };
    const set = (await sched('plan', 'schedule', 'calm', '--at', '+1h', '--rollback-at', '+2h'))
      .schedules as { id: number; action: string; at: string }[];
    assert.deepEqual(
      set.map((sc) => sc.action),
      ['apply', 'rollback'],
    );
    assert.ok(Math.abs(Date.parse(set[0]!.at) - (Date.now() + 3_600_000)) < 60_000, set[0]!.at);
    const listed = (await sched('plan', 'schedules', 'calm')).schedules as { id: number }[];
    assert.deepEqual(
      listed.map((sc) => sc.id),
      set.map((sc) => sc.id),
    );
    for (const sc of set) await sched('plan', 'unschedule', String(sc.id));
    assert.deepEqual((await sched('plan', 'schedules', 'calm')).schedules, []);
    // A daily window: both runs repeat, and the list says so.
    const daily = (
      await sched(
        'plan',
        'schedule',
        'calm',
        '--at',
        '+1h',
        '--rollback-at',
        '+3h',
        '--every',
        '1d',
      )
    ).schedules as { id: number; everyMs: number }[];
    assert.deepEqual(
      daily.map((sc) => sc.everyMs),
      [86_400_000, 86_400_000],
    );
    const table = await runPeak(['plan', 'schedules', 'calm', '--server', server.info.url]);
    assert.equal(table.code, 0, table.stderr);
    assert.equal(table.stdout.match(/ every 1d /g)?.length, 2, table.stdout);
    for (const sc of daily) await sched('plan', 'unschedule', String(sc.id));
    const tooOften = await runPeak([
      ...['plan', 'schedule', 'calm', '--at', '+1h', '--every', '30s', '--server', server.info.url],
    ]);
    assert.equal(tooOften.code, 2, tooOften.stderr);
    assert.match(tooOften.stderr, /--every must be N\[s\|m\|h\|d\] of at least 1m/);
    const badTime = await runPeak([
      ...['plan', 'schedule', 'calm', '--at', 'tomorrow', '--server', server.info.url],
    ]);
    assert.equal(badTime.code, 2, badTime.stderr);
    assert.match(badTime.stderr, /--at must be \+N\[s\|m\|h\|d\] from now, an ISO time/);
    // Deleting asks for --yes (exit 2, nothing deleted); `rm` is the same command.
    const unconfirmed = await runPeak(['plan', 'rm', 'calm', '--server', server.info.url]);
    assert.equal(unconfirmed.code, 2, unconfirmed.stderr);
    assert.match(
      unconfirmed.stderr,
      /deleting plan calm cannot be undone; run 'peak plan delete calm --yes'/,
    );
    const deleted = await runPeak([
      ...['plan', 'delete', 'calm', '--yes', '--server', server.info.url],
      ...['--data', dataDir, '--json'],
    ]);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.deepEqual(JSON.parse(deleted.stdout), { deleted: 'calm' });
    const left = (await peak('plan', 'ls')).plans as { name: string }[];
    assert.deepEqual(
      left.map((p) => p.name),
      ['flash-sale'],
    );
  });
});
