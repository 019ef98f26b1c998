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
];

mkdirSync(out, { recursive: true });
const stack = await startConsoleStack({ services: 12, tracedServices: 12 });
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
    const target = route.replace('{trace}', stack.traceId).replace('{dlqGroup}', stack.dlqGroup);
    await page.goto(`${stack.url}/console/${target}`);
    await page.locator(ready).first().waitFor({ timeout: 15_000 });
    await page.waitForTimeout(Math.max(settleMs, 400));
    await page.screenshot({ path: path.join(out, `${name}.png`) });
    process.stdout.write(`console-screenshots: docs/console/${name}.png\n`);
  }
} finally {
  await browser.close();
  await stack.stop();
}
