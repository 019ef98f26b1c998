/**
 * The console in real Chromium (playwright-core driving Debian's chromium) against a running
 * stack (test/support/console-stack.ts): login is required, a change without the session's
 * CSRF token is refused, every page loads and shows what the API holds, the overview's
 * chart moves every second, and each change made in the console (publish a config, change
 * a guard rule, take an instance offline, resend a dead letter) changes what the API
 * answers; an operator token's session may change, a viewer token's only look. One server,
 * one browser.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { ConfigClient } from '../src/config/index.js';
import { DrillAgent } from '../src/drill/index.js';
import { TxnClient } from '../src/txn/index.js';
import { launchChromium } from './support/chromium.js';
import { type ConsoleStack, startConsoleStack } from './support/console-stack.js';
import { killGroup, spawnPeak } from './support/peak-process.js';
import { creditStep, debitStep, ensureDatabase, startBank } from './support/txn-bank.js';
import { waitFor } from './support/wait.js';

describe('console in Chromium', { timeout: 240_000 }, () => {
  let stack: ConsoleStack;
  let browser: Browser;
  let page: Page;

  const open = async (path: string, ready: string) => {
    await page.goto(`${stack.url}/console/${path}`);
    await page.locator(ready).first().waitFor({ timeout: 10_000 });
  };
  const texts = (selector: string) => page.locator(selector).allInnerTexts();

  before(async () => {
    [stack, browser] = await Promise.all([startConsoleStack(), launchChromium()]);
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  });

  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it('requires a login: no session, no pages', async () => {
    await page.goto(`${stack.url}/console/services`);
    await page.getByTestId('login-form').waitFor();
    assert.equal(await page.locator('aside nav').count(), 0);
    const refused = await page.evaluate(async () => {
      const r = await fetch('/api/v1/config/items/shop/db/pool', {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ value: '{"max":1}' }),
      });
      return r.status;
    });
    assert.equal(refused, 401);
    await page.fill('input[name=token]', 'wrong-token');
    await page.click('button[type=submit]');
    await page.getByRole('alert').waitFor();
    assert.match(await page.getByRole('alert').innerText(), /PEAK_FORBIDDEN/);
  });

  it('logs in with the admin token; a change without the CSRF token is refused', async () => {
    await page.fill('input[name=token]', stack.token);
    await page.fill('input[name=name]', 'tester');
    await page.click('button[type=submit]');
    await page.getByTestId('who').waitFor();
    assert.match(await page.getByTestId('who').innerText(), /console:tester/);
    const statuses = await page.evaluate(async () => {
      const put = (headers: Record<string, string>) =>
        fetch('/api/v1/config/items/shop/db/pool', {
          method: 'PUT',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify({ value: '{"max":1}' }),
        }).then((r) => r.status);
      return [await put({}), await put({ 'x-peak-csrf': 'forged' })];
    });
    assert.deepEqual(statuses, [403, 403]);
    assert.equal(
      (await stack.admin.config.get({ app: 'shop', group: 'db', key: 'pool' })).version,
      2,
    );
  });

  it('overview: services, instances and alerts as the API has them; the chart moves every second', async () => {
    await open('overview', '[data-testid=stat-services]');
    const services = await stack.admin.registry.services();
    const names = new Set(services.map((s) => s.service)).size;
    const up = services.reduce((n, s) => n + s.up, 0);
    await waitFor('the figures', async () => {
      const [s, i] = await Promise.all([
        page.getByTestId('stat-services').locator('.value').innerText(),
        page.getByTestId('stat-instances').locator('.value').innerText(),
      ]);
      return s === String(names) && i === String(up);
    });
    const firing = (await stack.admin.alerts.rules()).filter((r) => r.firing).length;
    assert.ok(firing >= 1);
    await waitFor(
      'alerts firing',
      async () =>
        (await page.getByTestId('stat-alerts').locator('.value').innerText()) === String(firing),
    );
    const updates = async () =>
      Number(await page.getByTestId('chart-updates').getAttribute('data-updates'));
    const first = await updates();
    await waitFor('three more chart updates', async () => (await updates()) >= first + 3, 10_000);
    assert.ok(Number(await page.getByTestId('live-chart').getAttribute('data-points')) >= 100);
    assert.ok((await page.getByTestId('stress').innerText()).includes('stress run in progress'));
    const resources = await texts('[data-testid=resources] tbody tr');
    assert.ok(resources.some((r) => r.includes('POST /api/buy')));
  });

  it('topology: every service of the call graph, real and stress', async () => {
    await open('topology', '[data-testid=topology-graph]');
    const topo = await stack.admin.telemetry.topology({ sinceMinutes: 15 });
    const nodes = new Set(topo.edges.flatMap((e) => [e.caller, e.callee]));
    assert.equal(
      Number(await page.getByTestId('topology-graph').getAttribute('data-nodes')),
      nodes.size,
    );
    const rows = await texts('[data-testid=edges] tbody tr');
    assert.equal(rows.length, topo.edges.length);
    assert.ok(rows.some((r) => r.includes('stress')));
  });

  it('traces: search, the waterfall with its critical path, slow SQL', async () => {
    await open('traces', '[data-testid=trace-hits] tbody tr');
    await page.fill('form[data-testid=trace-search] input[name=service]', 'shop.gateway');
    await page.selectOption('form[data-testid=trace-search] select[name=status]', 'error');
    await page.click('form[data-testid=trace-search] button[type=submit]');
    const errors = await stack.admin.telemetry.traces({
      service: 'shop.gateway',
      error: true,
      sinceMinutes: 60,
      limit: 100,
    });
    await waitFor(
      'the error traces',
      async () => (await texts('[data-testid=trace-hits] tbody tr')).length === errors.length,
    );
    const tree = await stack.admin.telemetry.trace(stack.traceId);
    await open(`traces?trace=${stack.traceId}`, '[data-testid=waterfall] .wf-row');
    assert.equal(await page.locator('[data-testid=waterfall] .wf-row').count(), tree.spanCount);
    assert.equal(
      await page.locator('[data-testid=waterfall] .wf-row.critical').count(),
      tree.criticalPath.length,
    );
    await open('traces?tab=sql', '[data-testid=slow-sql] tbody tr');
    const slow = await stack.admin.telemetry.slowSql({ sinceMinutes: 60, limit: 50 });
    assert.equal((await texts('[data-testid=slow-sql] tbody tr')).length, slow.length);
    await page.locator('[data-testid=slow-sql] tbody tr').first().click();
    await page.locator('[data-testid=waterfall]').waitFor();
  });

  it('services: takes an instance offline (the registry answers offline) and back', async () => {
    const key = (await stack.admin.registry.services()).find(
      (s) => s.service === 'shop.order',
    )!.key;
    await open(`services?key=${encodeURIComponent(key)}`, '[data-testid=instances] tbody tr');
    const row = page.locator('[data-testid=instances] tbody tr', { hasText: stack.orderInstance });
    await row.getByRole('button', { name: 'Offline' }).click();
    await waitFor(
      'the instance offline',
      async () =>
        (await stack.admin.registry.instances({ key })).find(
          (i) => i.instanceId === stack.orderInstance,
        )?.status === 'offline',
    );
    await row.getByRole('button', { name: 'Online' }).waitFor();
    await row.getByRole('button', { name: 'Online' }).click();
    await waitFor(
      'the instance up',
      async () =>
        (await stack.admin.registry.instances({ key })).find(
          (i) => i.instanceId === stack.orderInstance,
        )?.status === 'up',
    );
  });

  it('config: publishes a new version, and shows versions, diff and audit', async () => {
    const ref = { app: 'shop', group: 'db', key: 'pool' };
    await open('config?app=shop&item=db/pool', '[data-testid=item] textarea');
    // The textarea takes the item's value whenever a load brings a different one: typing
    // before the page showed the current version was overwritten by it, and the old value
    // was published (once in CI). Type once it shows what the API holds now.
    const before = await stack.admin.config.get(ref);
    const textarea = page.locator('[data-testid=item] textarea');
    await waitFor(
      'the current version shown',
      async () => (await textarea.inputValue()) === before.value,
    );
    await page.fill('[data-testid=item] textarea', '{\n  "max": 64,\n  "idleMs": 10000\n}');
    await page.locator('[data-testid=item] .btn.primary', { hasText: 'Publish' }).click();
    await page.getByRole('status').waitFor();
    const item = await stack.admin.config.get(ref);
    assert.equal(item.version, 3);
    assert.equal(item.value, '{\n  "max": 64,\n  "idleMs": 10000\n}');
    assert.equal(item.updatedBy, 'console:tester');
    await page.getByRole('button', { name: 'Diff' }).click();
    await page.locator('[data-testid=diff] .add').first().waitFor();
    assert.match(await page.locator('[data-testid=diff] .add').first().innerText(), /"max": 64/);
    await page.getByRole('button', { name: 'Audit' }).click();
    // The audit tab may show the list loaded before the publish for a moment; the reload
    // the publish asked for must arrive (a lost reload left it stale for good, once in CI).
    const newest = page.locator('[data-testid=config-audit] tbody tr').first();
    await newest.filter({ hasText: 'console:tester' }).waitFor({ timeout: 10_000 });
    assert.match(await newest.innerText(), /console:tester\t[^\t]+\tpublish\t3/);
  });

  it('guard: a bad rule is refused with the error on its field; a good one reaches the config center', async () => {
    const ref = { app: 'shop', group: 'governance', key: 'guard-rules' };
    await open('guard?app=shop', 'input[name="flow.0.count"]');
    await page.fill('input[name="flow.0.count"]', '-5');
    await page.getByRole('button', { name: 'Publish rules' }).click();
    const fieldError = page.locator('label.field.invalid', {
      has: page.locator('input[name="flow.0.count"]'),
    });
    await fieldError.locator('.field-error').waitFor();
    assert.equal((await stack.admin.config.get(ref)).version, 1);
    await page.fill('input[name="flow.0.count"]', '500');
    await page.getByRole('button', { name: 'Publish rules' }).click();
    await page.getByRole('status').waitFor();
    const item = await stack.admin.config.get(ref);
    assert.equal(item.version, 2);
    assert.equal((JSON.parse(item.value) as { flow: { count: number }[] }).flow[0]!.count, 500);
    const live = await texts('[data-testid=guard-live] tbody tr');
    assert.ok(live.some((r) => r.includes('POST /api/buy')));
  });

  it('mq: topics, backlog per group, search with paging, a trace, and a dead letter resent', async () => {
    await open('mq', '[data-testid=topics] tbody tr');
    const stats = await stack.admin.mq.stats();
    const reports = stats.groups.find((g) => g.group === 'shop-reports')!;
    assert.ok(reports.backlog > 0);
    await waitFor('the backlog', async () =>
      (await texts('[data-testid=groups] tbody tr')).some(
        (r) => r.includes('shop-reports') && r.includes(String(reports.backlog)),
      ),
    );
    await open('mq?tab=search', 'form[data-testid=message-search]');
    await page.fill('form[data-testid=message-search] input[name=key]', 'buyer-3');
    await page.click('form[data-testid=message-search] button[type=submit]');
    const byKey = await stack.admin.mq.query({ key: 'buyer-3' });
    await waitFor(
      'the messages',
      async () => (await texts('[data-testid=messages] tbody tr')).length === byKey.length,
    );
    await page.locator('[data-testid=messages] tbody tr').first().click();
    await page.locator('[data-testid=message-trace] tbody tr').first().waitFor();

    await open(`mq?tab=dlq&group=${stack.dlqGroup}`, '[data-testid=dlq] tbody tr');
    assert.ok(
      (await texts('[data-testid=dlq] tbody tr')).some((r) => r.includes(stack.dlqMessageId)),
    );
    await page
      .locator('[data-testid=dlq] tbody tr', { hasText: stack.dlqMessageId })
      .getByRole('button', { name: 'Resend' })
      .click();
    await page.getByRole('status').waitFor();
    const d = await stack.admin.mq.message(stack.dlqMessageId);
    assert.ok(
      d.trace.some((e) => e.event === 'resent' && e.group === stack.dlqGroup),
      JSON.stringify(d.trace),
    );
  });

  it('data, alerts and audit show what the API holds', async () => {
    await open('data', '[data-testid=layout-tables] tbody tr');
    const tables = await texts('[data-testid=layout-tables] tbody tr');
    assert.ok(
      tables.some((r) => r.includes('t_order') && r.includes('buyer_id') && /\b8\b/.test(r)),
    );
    await page.locator('[data-testid=shards] tbody tr').first().waitFor();

    await open('alerts', '[data-testid=alert-rules] tbody tr');
    const firing = page.locator('[data-testid=alert-rules] tbody tr', { hasText: 'order-p99' });
    assert.match(await firing.innerText(), /firing/);
    await page.locator('[data-testid=alert-events] tbody tr').first().waitFor();

    await open('audit', '[data-testid=audit] tbody tr');
    const audit = await texts('[data-testid=audit] tbody tr');
    assert.ok(
      audit.some(
        (r) =>
          r.includes('console:tester') && r.includes('/api/v1/registry/instances/order-1/admin'),
      ),
    );
  });

  it('transactions: sagas as the coordinator has them, a step timeline, a running one stopped', async () => {
    const pgUrl = stack.server.postgresUrl();
    await ensureDatabase(pgUrl, 'console_bank');
    const branches = await startBank(stack.server.postgresUrl('console_bank'), stack.url, {
      alice: 100,
      bob: 0,
    });
    // The held saga's credit waits until the test lets it go (after the stop).
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => {
      release = r;
    });
    const heldGid = `console-held-${Date.now()}`;
    branches.hooks.set('credit', async (_m, gid) => {
      if (gid === heldGid) await held;
    });
    try {
      const txn = new TxnClient({ servers: stack.url });
      // The held call is waited for however long the test takes (not retried at 3 s).
      const steps = (from: string, to: string, amount: number) => [
        debitStep(from, amount),
        creditStep(to, amount, { timeoutMs: 120_000 }),
      ];
      const ok = await txn.saga({ steps: steps('alice', 'bob', 10) });
      const refused = (await txn.saga({ steps: steps('bob', 'alice', 1000) }).then(
        () => assert.fail('bob cannot give 1000'),
        (err: { details: { gid: string } }) => err,
      )) as { details: { gid: string } };
      await txn.saga({ gid: heldGid, steps: steps('alice', 'bob', 5) }, { wait: false });
      await waitFor('the held saga past its debit', async () =>
        (await branches.effects(heldGid)).includes('debit:action'),
      );

      // The list: every one, with the API's status.
      await open('transactions', '[data-testid=txns] tbody tr');
      const rowOf = (gid: string) => page.locator('[data-testid=txns] tbody tr', { hasText: gid });
      await waitFor('the three sagas listed', async () => {
        const texts = await Promise.all(
          [ok.gid, refused.details.gid, heldGid].map((g) =>
            rowOf(g)
              .innerText()
              .catch(() => ''),
          ),
        );
        return (
          texts[0]!.includes('succeeded') &&
          texts[1]!.includes('failed') &&
          texts[2]!.includes('running')
        );
      });
      const listed = await stack.admin.txn.list({ limit: 200 });
      assert.equal(await page.locator('[data-testid=txns] tbody tr').count(), listed.length);

      // Filtered to the failed ones; one opened: its reason and its steps as the API has them.
      await page.selectOption('[data-testid=txn-list] select[name=status]', 'failed');
      await waitFor('only failed ones', async () => {
        const rows = await texts('[data-testid=txns] tbody tr');
        return rows.length > 0 && rows.every((r) => r.includes('failed'));
      });
      await rowOf(refused.details.gid).click();
      await page.getByTestId('txn-facts').waitFor();
      const shown = await stack.admin.txn.show(refused.details.gid);
      assert.ok(shown.reason !== undefined);
      assert.equal(await page.getByTestId('txn-reason').innerText(), shown.reason);
      await waitFor('its timeline', async () => {
        const rows = await texts('[data-testid=txn-timeline] tbody tr');
        return (
          rows.length === shown.branches.length &&
          rows.some((r) => r.includes('debit') && r.includes('failed'))
        );
      });
      assert.match(await page.getByTestId('txn-spec').innerText(), /"account": "bob"/);
      assert.ok(
        await page.locator('[data-testid=txn-detail] .btn', { hasText: 'Stop' }).isDisabled(),
      );

      // The overview counts what is unfinished (the held one) and links to it.
      await open('overview', '[data-testid=stat-txn-unfinished]');
      const unfinished = (await stack.admin.txn.list({ status: 'active' })).length;
      assert.ok(unfinished >= 1);
      await waitFor(
        'the unfinished count',
        async () =>
          (await page.getByTestId('stat-txn-unfinished').locator('.value').innerText()) ===
          String(unfinished),
      );
      await page.getByTestId('under-way').getByText('unfinished transactions').click();
      await waitFor('the unfinished ones listed', async () =>
        (await texts('[data-testid=txns] tbody tr')).some((r) => r.includes(heldGid)),
      );

      // The held one, stopped from the console: compensated by recovery, alice whole again.
      await open(`transactions?status=active&gid=${heldGid}`, '[data-testid=txn-facts]');
      await page.locator('[data-testid=txn-detail] .btn', { hasText: 'Stop' }).click();
      await page.getByRole('status').waitFor();
      assert.match(await page.getByRole('status').innerText(), /compensations run/);
      await waitFor('the stopped saga compensated', async () => {
        const t = await stack.admin.txn.show(heldGid);
        return t.status === 'failed';
      });
      const stopped = await stack.admin.txn.show(heldGid);
      assert.match(stopped.reason ?? '', /stopped by console:tester/);
      await waitFor('the page shows it failed', async () =>
        (await page.getByTestId('txn-status').innerText()).includes('failed'),
      );
      // The credit let go now is late: its barrier filters it (the compensation took its
      // row), so it changes nothing; the driver's record of it lands in the timeline.
      release();
      await waitFor('the late credit answered', async () =>
        (await stack.admin.txn.show(heldGid)).branches.some(
          (b) => b.branch === 'credit' && b.op === 'action' && b.status === 'succeeded',
        ),
      );
      assert.ok(!(await branches.effects(heldGid)).includes('credit:action'));
      assert.deepEqual(await branches.balance('alice'), { balance: 90, frozen: 0, incoming: 0 });
      assert.deepEqual(await branches.balance('bob'), { balance: 10, frozen: 0, incoming: 0 });
    } finally {
      release();
      await branches.stop();
    }
  });

  it('gateway apps: a pending subscription approved with a quota, an app with its keys, the routes', async () => {
    const gw = stack.admin.gateway;
    await gw.putRoute({
      name: 'console-echo',
      method: 'POST',
      path: '/console/echo/:id',
      target: { kind: 'rpc', service: 'shop.order', method: 'place' },
    });
    await gw.putApp({ name: 'console-partner', description: 'a partner of the console test' });
    const key = await gw.createKey('console-partner');
    await gw.requestSubscription('console-partner', 'console-echo', 'for the test');

    await open('gateway?status=pending', '[data-testid=gw-subs] tbody tr');
    const row = page.locator('[data-testid=gw-subs] tbody tr', { hasText: 'console-partner' });
    assert.match(await row.innerText(), /console-echo\s+pending\s+0 \(no quota\)/);
    // A quota that is no number: said, and nothing changes.
    await page.fill('[data-testid=gw-subscriptions] input[name=perDay]', 'lots');
    await row.locator('.btn', { hasText: 'Approve' }).click();
    await page.getByRole('alert').waitFor();
    assert.match(await page.getByRole('alert').innerText(), /quota 'lots' is not a whole number/);
    assert.equal((await gw.subscriptions({ app: 'console-partner' }))[0]!.status, 'pending');
    await page.fill('[data-testid=gw-subscriptions] input[name=perDay]', '1000');
    await row.locator('.btn', { hasText: 'Approve' }).click();
    await page.getByRole('status').waitFor();
    const [sub] = await gw.subscriptions({ app: 'console-partner' });
    assert.equal(sub!.status, 'approved');
    assert.deepEqual(sub!.quota, { perDay: 1000 });
    await open('gateway?status=approved', '[data-testid=gw-subs] tbody tr');
    let subRows: string[] = [];
    await waitFor(
      () => `the approved subscription with its quota; rows: ${subRows.join(' | ')}`,
      async () => {
        subRows = await texts('[data-testid=gw-subs] tbody tr');
        return subRows.some(
          (r) => r.includes('console-partner') && r.includes('approved') && r.includes('0 / 1,000'),
        );
      },
    );

    await open('gateway?tab=apps&app=console-partner', '[data-testid=gw-keys] tbody tr');
    const apps = await texts('[data-testid=gw-app-list] tbody tr');
    assert.equal(apps.length, (await gw.apps()).length);
    assert.ok(apps.some((r) => r.includes('a partner of the console test')));
    const keys = await texts('[data-testid=gw-keys] tbody tr');
    assert.ok(keys.some((r) => r.includes(key.id) && r.includes('valid')));
    assert.ok(!(await page.getByTestId('gw-keys').innerText()).includes(key.secret));

    await open('gateway?tab=routes', '[data-testid=gw-route-list] tbody tr');
    assert.equal(
      await page.locator('[data-testid=gw-route-list] tbody tr').count(),
      (await gw.routes()).length,
    );
    await page.fill('[data-testid=gw-routes] input[name=filter]', 'console-echo');
    await waitFor('the route alone', async () => {
      const rows = await texts('[data-testid=gw-route-list] tbody tr');
      return (
        rows.length === 1 &&
        rows[0]!.includes('/console/echo/:id') &&
        rows[0]!.includes('RPC shop.order.place')
      );
    });
    // A large table: the control plane filters, and only the page shown travels.
    const bulk = Array.from({ length: 600 }, (_, i) => ({
      name: `bulk-${i}`,
      method: 'GET' as const,
      path: `/bulk/${i}`,
      target: { kind: 'rpc' as const, service: 'shop.order', method: 'get' },
    }));
    await gw.putRoutes(bulk);
    try {
      await page.fill('[data-testid=gw-routes] input[name=filter]', 'bulk-');
      await waitFor('the first 500 of the 600 bulk routes', async () => {
        const title = await page.getByTestId('gw-routes').locator('h2').first().innerText();
        const rows = await page.locator('[data-testid=gw-route-list] tbody tr').count();
        return title.includes('Routes (600, the first 500 shown)') && rows === 500;
      });
      await page.fill('[data-testid=gw-routes] input[name=filter]', 'no-such-route');
      await waitFor('no route matching', async () =>
        (await page.getByTestId('gw-routes').innerText()).includes(
          "No route matches 'no-such-route'.",
        ),
      );
      const answer = await gw.routePage({ match: 'BULK-5', limit: 10 });
      // bulk-5, bulk-50 to 59, bulk-500 to 599
      assert.equal(answer.matching, 111);
      assert.equal(answer.routes.length, 10);
      assert.equal(answer.total, (await gw.routes()).length);
    } finally {
      await gw.putRoutes(
        [],
        bulk.map((r) => r.name),
      );
    }
  });

  it('stress runs: a live run from `peak stress run` shown, stopped from the page, its report drawn; capacity figures', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'peak-console-stress-'));
    const sdk = path.resolve(
      path.dirname(fileURLToPath(import.meta.url)),
      '../src/stress/index.js',
    );
    const file = path.join(dir, 'console-run.mjs');
    // 20 calls a second to the control plane's /health for up to 5 minutes: stopped long before.
    await writeFile(
      file,
      `import { constantRate, defineScenario, httpStep } from ${JSON.stringify(sdk)};
export default () => defineScenario({
  name: 'console-run', target: ${JSON.stringify(stack.url)}, load: constantRate(20, 300),
  steps: [httpStep({ name: 'health', method: 'GET', path: '/health' })],
});
`,
    );
    const cli = spawnPeak([
      'stress',
      'run',
      file,
      '--server',
      stack.url,
      '--token',
      stack.token,
      '--out',
      dir,
      '--json',
    ]);
    try {
      let runId: string | undefined;
      await waitFor('the run registered', async () => {
        runId = (await stack.admin.stress.runs()).find((r) => r.scenario === 'console-run')?.id;
        return runId !== undefined;
      });
      await open('stress', '[data-testid=stress-run-list] tbody tr');
      const row = page.locator('[data-testid=stress-run-list] tbody tr', { hasText: runId! });
      await waitFor('the run listed as running', async () =>
        (await row.innerText()).includes('running'),
      );
      await row.click();
      await page.getByTestId('stress-run-state').waitFor();
      assert.match(await page.getByTestId('stress-run-state').innerText(), /20\/s for 300 s/);
      // A target that is no rate is refused on the page; then the run is stopped from it.
      await page.fill('[data-testid=stress-run] input[name=target]', 'fast');
      await page.locator('[data-testid=stress-run] .btn', { hasText: 'Set target' }).click();
      await page.getByRole('alert').waitFor();
      assert.match(await page.getByRole('alert').innerText(), /target 'fast' is not a rate/);
      await page.locator('[data-testid=stress-run] .btn', { hasText: 'Stop' }).click();
      await page.getByRole('status').waitFor();
      const { code } = await cli.exited;
      assert.equal(code, 0, cli.stderr());
      const kept = await stack.admin.stress.run(runId!);
      assert.equal(kept.status, 'finished');
      assert.equal(kept.report?.stopReason, 'stopped');
      assert.ok((kept.report?.totals.ok ?? 0) > 0);
      await waitFor('the report on the page', async () =>
        (await page.getByTestId('stress-run-state').innerText()).includes('stopped'),
      );
      assert.equal(
        await page.getByTestId('stress-ok').locator('.value').innerText(),
        String(kept.report!.totals.ok),
      );
      assert.equal(
        Number(await page.getByTestId('stress-chart').getAttribute('data-points')),
        kept.report!.seconds.length,
      );
      assert.ok(
        (await texts('[data-testid=stress-steps] tbody tr')).some((r) => r.startsWith('health')),
      );
    } finally {
      if (cli.child.exitCode === null) killGroup(cli.child);
      await rm(dir, { recursive: true, force: true });
    }

    // Capacity: what the control plane holds per service, and the steps of one.
    await stack.admin.stress.putCapacity({
      service: 'shop.inventory',
      instance: 'inventory-1',
      maxQps: 840,
      p99Ms: 41,
      sla: { p99Ms: 50, errorRate: 0.001 },
      steps: [
        { weight: 100, qps: 420, p99Ms: 12, errorRate: 0, passed: true },
        { weight: 200, qps: 840, p99Ms: 41, errorRate: 0, passed: true },
        { weight: 300, qps: 905, p99Ms: 180, errorRate: 0.002, passed: false },
      ],
    });
    await open('capacity', '[data-testid=capacity-figures] tbody tr');
    const figures = await stack.admin.stress.capacity();
    assert.equal(
      await page.locator('[data-testid=capacity-figures] tbody tr').count(),
      figures.length,
    );
    await page
      .locator('[data-testid=capacity-figures] tbody tr', { hasText: 'shop.inventory' })
      .click();
    const steps = await texts('[data-testid=capacity-steps] tbody tr');
    assert.equal(steps.length, 3);
    assert.match(steps[2]!, /905[\s\S]*no/);
  });

  it('drills: a fault injected from the page reaches a live instance and is stopped from it; a plan applied and rolled back', async () => {
    // A real instance of app console-drill: its agent follows drill/faults and reports.
    const config = new ConfigClient({ servers: stack.url, app: 'console-drill' });
    await config.start();
    const agent = new DrillAgent({
      config,
      app: 'console-drill',
      instanceId: 'web-1',
      service: 'console.web',
      servers: stack.url,
      reportEveryMs: 200,
    });
    agent.start();
    try {
      await open('drills?app=console-drill', '[data-testid=drill-instance-list] tbody tr');
      assert.match(
        await page.locator('[data-testid=drill-instance-list] tbody tr').first().innerText(),
        /web-1\s+console\.web[\s\S]*live[\s\S]*nothing/,
      );
      // A duration out of bounds is said on the page; nothing is injected.
      const form = page.getByTestId('drill-inject');
      await form.locator('input[name=durationS]').fill('7200');
      await form.locator('button[type=submit]').click();
      await form.getByRole('alert').waitFor();
      assert.match(await form.getByRole('alert').innerText(), /duration \(s\) '7200'/);
      assert.equal((await stack.admin.drill.status('console-drill')).faults.length, 0);
      await form.locator('input[name=durationS]').fill('120');
      await form.locator('input[name=delayMs]').fill('300');
      await form.locator('input[name=service]').fill('console.web');
      await form.locator('input[name=drill]').fill('console');
      await form.locator('button[type=submit]').click();
      await form.getByRole('status').waitFor();
      const [fault] = (await stack.admin.drill.status('console-drill')).faults;
      assert.deepEqual(
        [fault?.kind, fault?.point, fault?.delayMs, fault?.durationMs, fault?.drill, fault?.match],
        ['delay', 'rpc-server', 300, 120_000, 'console', { service: 'console.web' }],
      );
      await waitFor('the instance holds it', () => agent.active().length === 1);
      await waitFor('the page shows the instance holding it', async () =>
        (await texts('[data-testid=drill-instance-list] tbody tr')).some((r) =>
          r.includes(`${fault!.id} (delay at rpc-server`),
        ),
      );
      await page
        .getByTestId('drill-faults')
        .locator('.btn', { hasText: 'Stop drill console' })
        .click();
      await page.getByTestId('drill-faults').getByRole('status').waitFor();
      assert.equal((await stack.admin.drill.status('console-drill')).faults.length, 0);
      await waitFor('the instance let it go', () => agent.active().length === 0);
    } finally {
      await agent.close();
      await config.close();
    }

    // A plan: its preview, applied from the page (the flag in force), rolled back.
    await stack.admin.drill.putPlan({
      name: 'console-promo',
      app: 'shop',
      description: 'promotion mode for the console test',
      changes: [{ kind: 'flag', name: 'console-promo', value: true, baseline: false }],
    });
    await open('plans?plan=console-promo', '[data-testid=plan-diff] pre');
    assert.match(await page.getByTestId('plan-diff').innerText(), /\+ true/);
    await page.getByTestId('plan-detail').locator('.btn', { hasText: 'Apply' }).click();
    await page.getByTestId('plan-detail').getByRole('status').waitFor();
    assert.ok((await stack.admin.drill.plans()).find((p) => p.name === 'console-promo')?.applied);
    await open('overview', '[data-testid=under-way-detail]');
    await waitFor('the overview names the applied plan', async () =>
      (await page.getByTestId('under-way-detail').innerText()).includes('Applied: console-promo'),
    );
    await open('plans?plan=console-promo', '[data-testid=plan-runs] tbody tr');
    await waitFor('the run listed', async () =>
      (await texts('[data-testid=plan-runs] tbody tr')).some((r) => r.includes('apply')),
    );
    await page.getByTestId('plan-detail').locator('.btn', { hasText: 'Roll back' }).click();
    await waitFor('rolled back', async () =>
      (await stack.admin.drill.plans()).some((p) => p.name === 'console-promo' && !p.applied),
    );
    const { runs } = await stack.admin.drill.plan('console-promo');
    assert.deepEqual(
      runs.map((r) => [r.action, r.actor]),
      [
        ['rollback', 'console:tester'],
        ['apply', 'console:tester'],
      ],
    );
    // A run scheduled ahead is listed on the plan's page and cancelled from it.
    const [scheduled] = await stack.admin.drill.schedule('console-promo', {
      at: Date.now() + 3_600_000,
    });
    await open('plans?plan=console-promo', '[data-testid=plan-schedules] tbody tr');
    assert.match(
      (await texts('[data-testid=plan-schedules] tbody tr'))[0] ?? '',
      /apply.*once.*pending/,
    );
    await page.getByTestId('plan-schedules').locator('.btn', { hasText: 'Cancel' }).click();
    await waitFor('the schedule cancelled', async () =>
      (await stack.admin.drill.schedules({ all: true })).some(
        (sc) => sc.id === scheduled!.id && sc.state === 'cancelled',
      ),
    );
  });

  it("an operator token's session changes config; a viewer token's session only looks", async () => {
    const ref = { app: 'shop', group: 'db', key: 'pool' };
    const login = async (token: string, name: string) => {
      await page.getByRole('button', { name: 'Log out' }).click();
      await page.getByTestId('login-form').waitFor();
      await page.fill('input[name=token]', token);
      await page.fill('input[name=name]', name);
      await page.click('button[type=submit]');
      await page.getByTestId('who').waitFor();
    };
    const publish = () => page.locator('[data-testid=item] .btn.primary', { hasText: 'Publish' });
    await login((await stack.admin.system.createToken('console-op', 'operator')).token, 'op');
    assert.match(await page.getByTestId('who').innerText(), /console:op\s+operator/);
    await open('config?app=shop&item=db/pool', '[data-testid=item] textarea');
    const before = (await stack.admin.config.get(ref)).version;
    await page.fill('[data-testid=item] textarea', '{\n  "max": 32\n}');
    await publish().click();
    await page.getByRole('status').waitFor();
    const item = await stack.admin.config.get(ref);
    assert.equal(item.version, before + 1);
    assert.equal(item.updatedBy, 'console:op');

    await login((await stack.admin.system.createToken('console-viewer', 'viewer')).token, 'look');
    assert.match(await page.getByTestId('who').innerText(), /console:look\s+read-only/);
    await open('config?app=shop&item=db/pool', '[data-testid=item] textarea');
    assert.ok(await publish().isDisabled());
  });

  it('a read-only session cannot change anything', async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByTestId('login-form').waitFor();
    await page.fill('input[name=token]', stack.token);
    await page.fill('input[name=name]', 'viewer');
    await page.check('input[name=readOnly]');
    await page.click('button[type=submit]');
    await page.getByTestId('who').waitFor();
    await open('config?app=shop&item=db/pool', '[data-testid=item] textarea');
    assert.ok(
      await page.locator('[data-testid=item] .btn.primary', { hasText: 'Publish' }).isDisabled(),
    );
    const status = await page.evaluate(async () => {
      const me = (await (await fetch('/api/v1/console/session')).json()) as { csrfToken: string };
      const r = await fetch('/api/v1/config/items/shop/db/pool', {
        method: 'PUT',
        headers: { 'content-type': 'application/json', 'x-peak-csrf': me.csrfToken },
        body: JSON.stringify({ value: '{"max":2}' }),
      });
      return r.status;
    });
    assert.equal(status, 403);
  });
});
