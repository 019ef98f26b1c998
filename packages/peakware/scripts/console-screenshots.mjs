#!/usr/bin/env node
// Screenshots of every console page at 1440×900 into docs/console/ (`npm run
// console:screenshots`, after a build): starts the seeded stack of the browser tests
// (test/support/console-stack.ts: a real peak server on the embedded PostgreSQL), logs in
// in Debian's Chromium, and saves one PNG per page. Stops everything it started.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.resolve(pkg, '..', '..', 'docs', 'console');
const { startConsoleStack } = await import(path.join(pkg, 'dist/test/support/console-stack.js'));
const { launchChromium } = await import(path.join(pkg, 'dist/test/support/chromium.js'));
const { creditStep, debitStep, ensureDatabase, startBank } = await import(
  path.join(pkg, 'dist/test/support/txn-bank.js')
);
const { TxnClient } = await import(path.join(pkg, 'dist/src/txn/index.js'));
const { constantRate, defineScenario, httpStep, startRun } = await import(
  path.join(pkg, 'dist/src/stress/index.js')
);
const { ConfigClient } = await import(path.join(pkg, 'dist/src/config/index.js'));
const { DrillAgent } = await import(path.join(pkg, 'dist/src/drill/index.js'));
const { stopAtOnce } = await import(path.join(pkg, 'dist/src/server/index.js'));

/**
 * What the pages of the later subsystems show: sagas through a real bank service, gateway
 * routes, apps and subscriptions, a real 5-second stress run against the control plane's
 * /health, two capacity figures, a fault held by a live drill agent, a stored plan. Returns
 * what to stop afterwards.
 */
async function seedSubsystems(stack) {
  const admin = stack.admin;
  await ensureDatabase(stack.server.postgresUrl(), 'shots_bank');
  const branches = await startBank(stack.server.postgresUrl('shots_bank'), stack.url, {
    alice: 1000,
    bob: 500,
  });
  const txn = new TxnClient({ servers: stack.url });
  const steps = (from, to, amount) => [debitStep(from, amount), creditStep(to, amount)];
  for (let i = 0; i < 6; i++) await txn.saga({ steps: steps('alice', 'bob', 10 + i) });
  await txn.saga({ steps: steps('bob', 'alice', 100_000) }).catch(() => undefined);
  let release = () => undefined;
  const held = new Promise((r) => {
    release = r;
  });
  branches.hooks.set('credit', async (_m, gid) => {
    if (gid === 'order-20261206-held') await held;
  });
  await txn.saga({ gid: 'order-20261206-held', steps: steps('alice', 'bob', 7) }, { wait: false });

  for (const [name, p] of [
    ['orders.place', '/v1/orders'],
    ['orders.get', '/v1/orders/:id'],
    ['stock.get', '/v1/stock/:sku'],
  ])
    await admin.gateway.putRoute({
      name,
      api: name.split('.')[0],
      method: name.endsWith('place') ? 'POST' : 'GET',
      path: p,
      target: { kind: 'rpc', service: 'shop.order', method: name.split('.')[1] },
    });
  for (const app of ['partner-acme', 'partner-globex']) {
    await admin.gateway.putApp({ name: app, description: `${app.slice(8)} storefront` });
    await admin.gateway.createKey(app);
    await admin.gateway.requestSubscription(app, 'orders');
  }
  await admin.gateway.approve('partner-acme', 'orders', { quota: { perDay: 100_000 } });
  await admin.gateway.requestSubscription('partner-acme', 'stock');

  const run = startRun(
    defineScenario({
      name: 'health',
      target: stack.url,
      load: constantRate(50, 5),
      steps: [httpStep({ name: 'health', method: 'GET', path: '/health' })],
    }),
  );
  await admin.stress.createRun({ id: run.id, scenario: 'health', model: constantRate(50, 5) });
  await admin.stress.finish(run.id, await run.done);

  for (const [service, maxQps, p99] of [
    ['shop.order', 1840, 38],
    ['shop.inventory', 3120, 22],
  ])
    await admin.stress.putCapacity({
      service,
      instance: `${service.slice(5)}-1`,
      maxQps,
      p99Ms: p99,
      sla: { p99Ms: 50, errorRate: 0.001 },
      steps: [1, 2, 3, 4].map((k) => ({
        weight: 100 * k,
        qps: (maxQps / 3) * k,
        p99Ms: k < 4 ? (p99 / 3) * k : 140,
        errorRate: k < 4 ? 0 : 0.004,
        passed: k < 4,
      })),
    });

  const config = new ConfigClient({ servers: stack.url, app: 'shop' });
  await config.start();
  const agent = new DrillAgent({
    config,
    app: 'shop',
    instanceId: 'inventory-1',
    service: 'shop.inventory',
    servers: stack.url,
    reportEveryMs: 300,
  }).start();
  await new Promise((r) => setTimeout(r, 800));
  await admin.drill.inject(
    'shop',
    [
      {
        kind: 'delay',
        point: 'sql',
        delayMs: 250,
        durationMs: 600_000,
        drill: 'slow-db',
        match: { table: 'stock' },
      },
      {
        kind: 'error',
        point: 'rpc-server',
        code: 'PEAK_DRILL_INJECTED',
        durationMs: 600_000,
        drill: 'slow-db',
        scope: { percent: 5 },
      },
    ],
    'ops',
  );
  await admin.drill.putPlan({
    name: 'double-eleven',
    app: 'shop',
    description: 'promotion mode: recommendations off, order limits raised',
    changes: [
      { kind: 'flag', name: 'recommendations', value: false, baseline: true },
      { kind: 'flag', name: 'max-orders-per-user', value: 5, baseline: 20 },
    ],
  });
  return async () => {
    release();
    await agent.close();
    await config.close();
    await branches.stop();
  };
}

const SHOTS = [
  ['overview', 'overview', '[data-testid=live-chart] canvas', 4000],
  ['topology', 'topology', '[data-testid=topology-graph]', 0],
  ['traces', 'traces', '[data-testid=trace-hits] tbody tr', 0],
  ['trace', 'traces?trace={trace}', '[data-testid=waterfall] .wf-row', 0],
  ['slow-sql', 'traces?tab=sql', '[data-testid=slow-sql] tbody tr', 0],
  ['services', 'services?service=shop.order', '[data-testid=instances] tbody tr', 1500],
  ['config', 'config?app=shop&item=cache/products', '[data-testid=item] textarea', 0],
  [
    'guard',
    'guard?app=shop&resource=POST%20%2Fapi%2Fbuy',
    '[data-testid=guard-live] tbody tr',
    2000,
  ],
  ['mq', 'mq', '[data-testid=groups] tbody tr', 0],
  ['mq-dlq', 'mq?tab=dlq&group={dlqGroup}', '[data-testid=dlq] tbody tr', 0],
  ['data', 'data', '[data-testid=layout-tables] tbody tr', 0],
  ['alerts', 'alerts', '[data-testid=alert-rules] tbody tr', 0],
  ['audit', 'audit', '[data-testid=audit] tbody tr', 0],
  ['stress', 'stress?run={stressRun}', '[data-testid=stress-chart] canvas', 800],
  ['capacity', 'capacity?service=shop.order', '[data-testid=capacity-steps] tbody tr', 0],
  ['drills', 'drills?app=shop', '[data-testid=drill-fault-list] tbody tr', 1000],
  ['plans', 'plans?plan=double-eleven', '[data-testid=plan-diff] pre', 0],
  ['transactions', 'transactions?gid={refusedTxn}', '[data-testid=txn-timeline] tbody tr', 0],
  ['gateway', 'gateway', '[data-testid=gw-subs] tbody tr', 0],
];

mkdirSync(out, { recursive: true });
const stack = await startConsoleStack({ services: 12, tracedServices: 12 });
// Ctrl-C: the stack's embedded PostgreSQL is in its own process group (the terminal's signal
// does not reach it), so it is stopped here before the script ends.
process.once('SIGINT', () => {
  stopAtOnce(stack.server);
  process.exit(130);
});
const unseed = await seedSubsystems(stack);
const stressRun = (await stack.admin.stress.runs())[0]?.id ?? '';
const refusedTxn = (await stack.admin.txn.list({ status: 'failed' }))[0]?.gid ?? '';
const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  await page.goto(`${stack.url}/console`);
  await page.getByTestId('login-form').waitFor();
  await page.screenshot({ path: path.join(out, 'login.png') });
  await page.fill('input[name=token]', stack.token);
  await page.fill('input[name=name]', 'ops');
  await page.click('button[type=submit]');
  await page.getByTestId('who').waitFor();
  for (const [name, route, ready, settleMs] of SHOTS) {
    const target = route
      .replace('{trace}', stack.traceId)
      .replace('{dlqGroup}', stack.dlqGroup)
      .replace('{stressRun}', stressRun)
      .replace('{refusedTxn}', refusedTxn);
    await page.goto(`${stack.url}/console/${target}`);
    await page.locator(ready).first().waitFor({ timeout: 15_000 });
    await page.waitForTimeout(Math.max(settleMs, 400));
    await page.screenshot({ path: path.join(out, `${name}.png`) });
    process.stdout.write(`console-screenshots: docs/console/${name}.png\n`);
  }
} finally {
  await browser.close();
  await unseed();
  await stack.stop();
}
